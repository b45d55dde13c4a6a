"""The pool's check of a connection before each use: one round trip (``;``) straight to
PostgreSQL, where SQLAlchemy's asyncpg ping sends three (BEGIN, ``;``, ROLLBACK, which only
PgBouncer's transaction mode needs); and a connection the server closed is still replaced before
it is used, so nothing fails."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.devservers import LocalPostgres
from lucy.db.session import create_engine
from lucy.settings import load_settings


async def _engine(postgres: LocalPostgres, **settings: object) -> AsyncEngine:
    return create_engine(load_settings(database_url=postgres.app_url, **settings).database)


@pytest.fixture
async def one_connection(postgres: LocalPostgres) -> AsyncIterator[AsyncEngine]:
    engine = await _engine(postgres, database_pool_size=1, database_max_overflow=0)
    yield engine
    await engine.dispose()


async def _backend_and_queries(engine: AsyncEngine) -> tuple[int, list[str]]:
    """Check a connection out (pinged, as it was used before), and return its backend pid and
    every statement asyncpg sent on it for that checkout, the ping's included."""
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    sent: list[str] = []

    def log(record: object) -> None:
        sent.append(record.query)  # type: ignore[attr-defined]

    raw.add_query_logger(log)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))  # a prepared statement: not logged
    finally:
        raw.remove_query_logger(log)
    return pid, sent


async def test_a_checkout_pings_in_one_round_trip(one_connection: AsyncEngine):
    _, sent = await _backend_and_queries(one_connection)
    # The ping, then the checkout's own transaction and its reset on return.
    assert [q.strip().upper() for q in sent] == [";", "BEGIN;", "ROLLBACK;"], sent


async def test_behind_pgbouncer_the_ping_stays_in_a_transaction(postgres: LocalPostgres):
    engine = await _engine(postgres, database_pool_size=1, database_max_overflow=0, database_pgbouncer=True)
    try:
        _, sent = await _backend_and_queries(engine)
    finally:
        await engine.dispose()
    assert [q.strip().upper() for q in sent] == ["BEGIN;", ";", "ROLLBACK;", "BEGIN;", "ROLLBACK;"], sent


async def test_a_connection_the_server_closed_is_replaced_before_use(
    one_connection: AsyncEngine, admin_engine: AsyncEngine
):
    async with one_connection.connect() as conn:
        before = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    async with admin_engine.connect() as admin:
        assert (await admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": before})).scalar_one()
    async with one_connection.connect() as conn:  # the ping finds it closed: a new one, no error
        after = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    assert after != before
