"""The store through PgBouncer in transaction pooling mode (``LUCY_DATABASE_PGBOUNCER=true``).

Representative store tests are collected here a second time with the application's ``engine``
pointed at PgBouncer (tests/fixtures/pgbouncer.py; a database of its own, migrated through PgBouncer): scoping a transaction to its tenant, the
row-level security property, idempotent ledgers, the exactly-once approval decision, racing
budget reservations and the skill versions (a transaction-level advisory lock). Each
transaction may run on another server connection than the one before, so any session state
Lucy kept (a ``SET``, a session advisory lock, a prepared statement reused across transactions)
would show here. Without the setting the same store fails through the same PgBouncer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.devservers import LocalPostgres
from lucy.db.session import create_engine, engine_options
from lucy.settings import load_settings
from tests.budgets.test_budgets_db import (  # noqa: F401 (collected again, through PgBouncer)
    test_a_retried_reserve_or_settle_counts_once,
    test_one_tenant_never_sees_or_spends_anothers_budget,
    test_twenty_racing_calls_against_room_for_five_never_overspend,
)
from tests.fixtures.pgbouncer import PgBouncer, needs_pgbouncer
from tests.kernel.db.test_store import (  # noqa: F401
    frozen_month_partitions,
    test_approval_is_decided_exactly_once,
    test_cost_entries_are_idempotent_and_the_monthly_rollup_exact,
    test_feature_flags_steps_and_history,
    test_task_finished_activity_is_idempotent_across_retries,
    test_the_token_bucket_is_atomic,
    test_without_a_tenant_the_application_sees_nothing,
)
from tests.kernel.db.test_tenant_isolation import CASES, check_isolation
from tests.kernel.db.test_tenant_transaction import (  # noqa: F401
    test_a_block_that_raises_leaves_nothing_behind,
    test_it_sees_and_writes_only_its_workspace_and_commits,
)
from tests.skills.test_skills_store import test_versions_are_numbered_per_workspace_and_kept  # noqa: F401

pytestmark = needs_pgbouncer


def bouncer_settings(bouncer: PgBouncer, *, pgbouncer: bool = True) -> Any:
    return load_settings(database_url=bouncer.app_url, database_pgbouncer=pgbouncer).database


@pytest.fixture(scope="module")
async def engine(pgbouncer: PgBouncer) -> AsyncIterator[AsyncEngine]:
    """The application's engine, through PgBouncer (this module's tests use it instead)."""
    eng = create_engine(bouncer_settings(pgbouncer))
    yield eng
    await eng.dispose()


@pytest.fixture(scope="module")
async def admin_engine(pgbouncer: PgBouncer) -> AsyncIterator[AsyncEngine]:
    """The superuser, straight to PgBouncer's database, for the tests' assertions."""
    eng = create_async_engine(pgbouncer.superuser_url)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="module", autouse=True)
async def _frozen_month_partitions(pgbouncer: PgBouncer) -> None:
    await frozen_month_partitions(pgbouncer.superuser_url)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**CASES)
def test_no_row_of_another_workspace_is_visible_through_pgbouncer(
    pgbouncer: PgBouncer, shape: list[tuple[int, int]], observer: int, table: str
):
    options = engine_options(bouncer_settings(pgbouncer))
    asyncio.run(
        check_isolation(pgbouncer.app_url, shape, observer, table, connect_args=options["connect_args"])
    )


async def _scope_twice_while_another_client_holds_a_server(eng: AsyncEngine, workspace_id: str) -> None:
    """Client A scopes a transaction to a tenant; client B then holds that server connection in
    an open transaction, so A's next transaction runs on the other one."""
    scope = select(func.set_config("lucy.workspace_id", workspace_id, True))
    async with eng.connect() as a:
        await a.execute(scope)
        await a.commit()
        async with eng.connect() as b:
            await b.execute(scope)  # B's transaction stays open: it keeps the first server
            await a.execute(scope)
            await a.commit()
            await b.commit()


@pytest.fixture
def two_servers(postgres: LocalPostgres, tmp_path: Path) -> Iterator[PgBouncer]:
    """A PgBouncer of its own with two server connections, so a client's next transaction can
    run on the other one."""
    bouncer = PgBouncer(postgres, tmp_path / "pgbouncer", server_pool=2)
    bouncer.start()
    yield bouncer
    bouncer.stop()


async def test_without_the_setting_the_same_store_fails_through_pgbouncer(two_servers: PgBouncer):
    """The proof that the setting is needed: SQLAlchemy's asyncpg dialect prepares every
    statement and caches it on the client connection, but behind transaction pooling the next
    transaction may run on a server connection that never saw it."""
    for configured in (False, True):
        eng = create_engine(bouncer_settings(two_servers, pgbouncer=configured))
        try:
            scoped = _scope_twice_while_another_client_holds_a_server(eng, str(uuid.uuid4()))
            if configured:
                await scoped
            else:
                with pytest.raises(DBAPIError, match=r"prepared statement .* does not exist"):
                    await scoped
        finally:
            await eng.dispose()


async def test_no_prepared_statement_is_left_on_the_server_connections(two_servers: PgBouncer):
    """Statements are PostgreSQL's unnamed one, so none piles up on a server connection however
    the transactions of several clients interleave (named ones did: a statement whose close
    reached the other server connection stayed behind)."""
    eng = create_engine(bouncer_settings(two_servers))

    async def client(n: int) -> None:
        for i in range(25):
            async with eng.begin() as conn:
                await conn.execute(select(func.set_config("lucy.workspace_id", str(uuid.uuid4()), True)))
                await conn.execute(select(func.length(str(n * i))))

    async def left_on_a_server() -> int:
        async with eng.begin() as conn:
            await asyncio.sleep(0.2)  # both server connections are busy with one peek each
            return int(
                (
                    await conn.execute(select(func.count()).select_from(text("pg_prepared_statements")))
                ).scalar_one()
            )

    try:
        await asyncio.gather(*(client(n) for n in range(4)))
        assert await asyncio.gather(left_on_a_server(), left_on_a_server()) == [0, 0]
    finally:
        await eng.dispose()
