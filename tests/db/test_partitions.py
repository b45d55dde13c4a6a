"""Monthly partitions: a write never fails for a missing month, maintenance puts rows in their
month, creates months ahead and drops months past retention, and is safe to run repeatedly.

No test here depends on today's date: months are either derived from the clock (and checked
so that a run straddling midnight at the end of a month still holds) or far from it on purpose.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.cli import main
from app.devservers import LocalPostgres
from lucy import migrate
from lucy.db import partitions
from lucy.db.models import PARTITIONED_TABLES
from lucy.db.repositories.ledger import monthly_cost, record_audit, record_cost
from lucy.db.repositories.tenants import set_tenant, upsert_workspace
from lucy.db.session import create_sessionmaker
from tests.clock import month_start, this_month


async def _partitions(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return {p for t in PARTITIONED_TABLES for p in await partitions.existing_partitions(conn, t)}
    finally:
        await engine.dispose()


async def test_upgrade_creates_this_and_next_month_and_a_default(fresh_db: str):
    before = this_month()
    await asyncio.to_thread(migrate.upgrade, fresh_db)
    after = this_month()  # the migration's clock was between the two
    names = await _partitions(fresh_db)
    for table in PARTITIONED_TABLES:
        assert f"{table}_{after:%Y_%m}" in names
        assert f"{table}_{partitions.add_months(before, 1):%Y_%m}" in names
        assert f"{table}_default" in names


async def test_maintain_creates_ahead_drops_expired_and_is_idempotent(fresh_db: str):
    await asyncio.to_thread(migrate.upgrade, fresh_db)
    today = partitions.add_months(this_month(), 60).replace(day=21)  # years from now, on purpose
    old = partitions.add_months(today.replace(day=1), -46)
    engine = create_async_engine(fresh_db)
    try:
        async with engine.begin() as conn:
            # Old months exist (as if Lucy had run for years) and hold data.
            await partitions.ensure_partitions(conn, today=old, months_ahead=2)
            ws = (await conn.execute(text("SELECT lucy_resolve_workspace('TOLDDATA')"))).scalar_one()
            await conn.execute(text("SELECT set_config('lucy.workspace_id', :w, true)"), {"w": str(ws)})
            await conn.execute(
                text(
                    "INSERT INTO cost_log (created_at, workspace_id, idempotency_key) "
                    "VALUES (:at, lucy_current_workspace(), 'old')"
                ),
                {"at": month_start(old) + timedelta(days=40)},
            )
        async with engine.begin() as conn:
            report = await partitions.maintain(conn, today=today, retention_months=24, months_ahead=3)
        ahead = partitions.add_months(today, 3)
        assert f"cost_log_{ahead:%Y_%m}" in report.created and f"audit_log_{ahead:%Y_%m}" in report.created
        expired = {f"cost_log_{old:%Y_%m}", f"cost_log_{partitions.add_months(old, 1):%Y_%m}"}
        assert expired | {f"audit_log_{partitions.add_months(old, 2):%Y_%m}"} <= set(report.dropped)
        assert not any(name.endswith("_default") for name in report.dropped)
        async with engine.begin() as conn:
            again = await partitions.maintain(conn, today=today, retention_months=24, months_ahead=3)
        assert again.created == [] and again.dropped == [] and again.drained == {}
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM cost_log"))).scalar_one() == 0
    finally:
        await engine.dispose()


async def test_cli_partitions(
    fresh_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("LUCY_DATABASE_MIGRATION_URL", fresh_db)
    await asyncio.to_thread(main, ["db", "upgrade"])
    # Both runs must see the same "today", even at midnight at the end of a month.
    with time_machine.travel(datetime.now(UTC), tick=False):
        await asyncio.to_thread(main, ["db", "partitions", "--months-ahead", "6"])
        assert "partitions created:" in capsys.readouterr().out
        await asyncio.to_thread(main, ["db", "partitions", "--months-ahead", "6"])
    assert "created: none; dropped: none" in capsys.readouterr().out


# --------------------------------------------------------------------------- the default partition


@pytest.fixture
async def store(fresh_db: str, postgres: LocalPostgres) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """A migrated fresh database: (the application role's engine, a superuser's engine)."""
    await asyncio.to_thread(migrate.upgrade, fresh_db)
    name = fresh_db.rsplit("/", 1)[1]
    app = create_async_engine(postgres.app_url_for(name))
    superuser = create_async_engine(postgres.superuser_url_for(name))
    yield app, superuser
    await app.dispose()
    await superuser.dispose()


async def _write_everywhere(app: AsyncEngine, ws: uuid.UUID, at: datetime, key: str) -> list[bool]:
    """One cost row, one audit row and one webhook delivery at ``at``, as the application
    writes them; returns whether the cost and audit rows were new."""
    async with create_sessionmaker(app).begin() as s:
        await set_tenant(session=s, workspace_id=ws)
        cost = await record_cost(
            session=s,
            workspace_id=ws,
            idempotency_key=key,
            occurred_at=at,
            cost_usd=Decimal("0.25"),
            prompt_tokens=100,
            completion_tokens=10,
            model="m",
        )
        audit = await record_audit(
            session=s, workspace_id=ws, idempotency_key=key, occurred_at=at, actor_type="lucy", action="x"
        )
        await s.execute(
            text(
                "INSERT INTO webhook_deliveries (created_at, workspace_id, source) VALUES (:at, :w, 'test')"
            ),
            {"at": at, "w": ws},
        )
    return [cost, audit]


async def _counts(superuser: AsyncEngine, relation: str) -> int:
    async with superuser.connect() as conn:
        return (await conn.execute(text(f'SELECT count(*) FROM "{relation}"'))).scalar_one()


async def test_a_missing_month_never_fails_a_write_and_maintenance_moves_its_rows(
    store: tuple[AsyncEngine, AsyncEngine],
    fresh_db: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    app, superuser = store
    # A worker that was down across month boundaries, a row stamped last quarter, a clock ahead.
    late = partitions.add_months(this_month(), 4)
    past = partitions.add_months(this_month(), -3)
    at_late = month_start(late) + timedelta(days=9, hours=7)
    at_past = month_start(past) + timedelta(days=27)
    at_edge = month_start(partitions.add_months(late, 1)) - timedelta(
        microseconds=1
    )  # the last instant of the late month
    async with create_sessionmaker(app).begin() as s:
        ws = await upsert_workspace(session=s, slack_team_id=f"T{uuid.uuid4().hex[:10].upper()}")

    assert await _write_everywhere(app, ws, at_late, "late") == [True, True]
    assert await _write_everywhere(app, ws, at_past, "past") == [True, True]
    assert await _write_everywhere(app, ws, at_edge, "edge") == [True, True]
    # A retried activity writes the same keys at the same instants: nothing twice.
    assert await _write_everywhere(app, ws, at_late, "late") == [False, False]

    for table in PARTITIONED_TABLES:
        expected = 4 if table == "webhook_deliveries" else 3  # deliveries have no idempotency key
        assert await _counts(superuser, f"{table}_default") == expected
    owner = create_async_engine(fresh_db)
    try:
        async with owner.connect() as conn:
            assert await partitions.waiting_in_default(conn) == {
                "cost_log": 3,
                "audit_log": 3,
                "webhook_deliveries": 4,
            }
    finally:
        await owner.dispose()

    async def rollup() -> dict[date, tuple[int, Decimal]]:
        async with create_sessionmaker(app).begin() as s:
            await set_tenant(session=s, workspace_id=ws)
            return {
                m: ((r := await monthly_cost(session=s, workspace_id=ws, month=m)).calls, r.cost_usd)
                for m in (late, past)
            }

    assert await rollup() == {late: (2, Decimal("0.5")), past: (1, Decimal("0.25"))}

    # `lucy db check` notices rows waiting for their month.
    monkeypatch.setenv("LUCY_DATABASE_MIGRATION_URL", fresh_db)
    with pytest.raises(SystemExit) as failed:
        await asyncio.to_thread(main, ["db", "check"])
    assert failed.value.code == 1
    assert "3 in cost_log_default" in capsys.readouterr().err

    # Maintenance runs (as `lucy db partitions` and the schedule do): rows go to their months.
    await asyncio.to_thread(main, ["db", "partitions"])
    out = capsys.readouterr().out
    assert (
        "rows moved: 3 from cost_log_default, 3 from audit_log_default, 4 from webhook_deliveries_default"
        in out
    )
    for table in PARTITIONED_TABLES:
        assert await _counts(superuser, f"{table}_default") == 0
        assert await _counts(superuser, f"{table}_{late:%Y_%m}") == (
            3 if table == "webhook_deliveries" else 2
        )
        assert await _counts(superuser, f"{table}_{past:%Y_%m}") == 1
    assert await rollup() == {late: (2, Decimal("0.5")), past: (1, Decimal("0.25"))}, "nothing counted twice"
    async with superuser.connect() as conn:
        moved = (
            await conn.execute(
                text("SELECT created_at FROM cost_log WHERE idempotency_key = 'edge' AND workspace_id = :w"),
                {"w": ws},
            )
        ).scalar_one()
    assert moved == at_edge, "timestamps unchanged"

    # After the move, a retry still writes nothing twice, and the audit log is still append-only,
    # in its month and in the default partition attached again.
    assert await _write_everywhere(app, ws, at_late, "late") == [False, False]
    far = month_start(partitions.add_months(late, 30))
    assert await _write_everywhere(app, ws, far, "far") == [True, True]
    for where in (f"created_at = '{at_late.isoformat()}'", f"created_at = '{far.isoformat()}'"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with superuser.begin() as conn:
                await conn.execute(text(f"DELETE FROM audit_log WHERE {where}"))
    await asyncio.to_thread(main, ["db", "partitions"])
    capsys.readouterr()
    await asyncio.to_thread(main, ["db", "check"])
    assert "models and migrations agree" in capsys.readouterr().out


async def test_creating_a_month_that_already_has_rows_moves_them(
    store: tuple[AsyncEngine, AsyncEngine], fresh_db: str
):
    app, superuser = store
    month = partitions.add_months(this_month(), 7)
    async with create_sessionmaker(app).begin() as s:
        ws = await upsert_workspace(session=s, slack_team_id=f"T{uuid.uuid4().hex[:10].upper()}")
    await _write_everywhere(app, ws, month_start(month), "k")
    owner = create_async_engine(fresh_db)
    try:
        async with owner.begin() as conn:  # PostgreSQL refuses a plain CREATE for this month
            created = await partitions.ensure_partitions(conn, today=month, months_ahead=0)
    finally:
        await owner.dispose()
    assert f"cost_log_{month:%Y_%m}" in created
    assert await _counts(superuser, f"audit_log_{month:%Y_%m}") == 1
    assert await _counts(superuser, "audit_log_default") == 0


async def test_downgrade_keeps_rows_waiting_in_the_default(
    store: tuple[AsyncEngine, AsyncEngine], fresh_db: str
):
    app, superuser = store
    month = partitions.add_months(this_month(), 5)
    async with create_sessionmaker(app).begin() as s:
        ws = await upsert_workspace(session=s, slack_team_id=f"T{uuid.uuid4().hex[:10].upper()}")
    await _write_everywhere(app, ws, month_start(month), "k")
    await asyncio.to_thread(migrate.downgrade, fresh_db, "0005")
    assert "cost_log_default" not in await _partitions(fresh_db)
    assert await _counts(superuser, f"cost_log_{month:%Y_%m}") == 1
    await asyncio.to_thread(migrate.upgrade, fresh_db)
    await asyncio.to_thread(migrate.check, fresh_db)
