"""Monthly partitions: created ahead, dropped past retention, safe to run repeatedly."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from lucy import migrate
from lucy.cli import main
from lucy.db import partitions


async def _partitions(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return {
                p
                for t in ("cost_log", "audit_log", "webhook_deliveries")
                for p in await partitions.existing_partitions(conn, t)
            }
    finally:
        await engine.dispose()


async def test_upgrade_creates_this_and_next_month(fresh_db: str):
    await asyncio.to_thread(migrate.upgrade, fresh_db)
    names = await _partitions(fresh_db)
    today = date.today()
    for month in (today.replace(day=1), partitions.add_months(today, 1)):
        for table in ("cost_log", "audit_log", "webhook_deliveries"):
            assert f"{table}_{month:%Y_%m}" in names


async def test_maintain_creates_ahead_drops_expired_and_is_idempotent(fresh_db: str):
    await asyncio.to_thread(migrate.upgrade, fresh_db)
    engine = create_async_engine(fresh_db)
    try:
        async with engine.begin() as conn:
            # Old months exist (as if Lucy had run for years) and hold data.
            await partitions.ensure_partitions(conn, today=date(2023, 1, 1), months_ahead=2)
            ws = (await conn.execute(text("SELECT lucy_resolve_workspace('TOLDDATA')"))).scalar_one()
            await conn.execute(text("SELECT set_config('lucy.workspace_id', :w, true)"), {"w": str(ws)})
            await conn.execute(
                text(
                    "INSERT INTO cost_log (created_at, workspace_id, idempotency_key) "
                    "VALUES ('2023-02-10', lucy_current_workspace(), 'old')"
                )
            )
        async with engine.begin() as conn:
            report = await partitions.maintain(
                conn, today=date(2026, 11, 21), retention_months=24, months_ahead=3
            )
        assert "cost_log_2027_02" in report.created and "audit_log_2027_02" in report.created
        assert {"cost_log_2023_01", "cost_log_2023_02", "audit_log_2023_03"} <= set(report.dropped)
        async with engine.begin() as conn:
            again = await partitions.maintain(
                conn, today=date(2026, 11, 21), retention_months=24, months_ahead=3
            )
        assert again.created == [] and again.dropped == []
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM cost_log"))).scalar_one() == 0
    finally:
        await engine.dispose()


async def test_cli_partitions(
    fresh_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("LUCY_DATABASE_MIGRATION_URL", fresh_db)
    await asyncio.to_thread(main, ["db", "upgrade"])
    await asyncio.to_thread(main, ["db", "partitions", "--months-ahead", "6"])
    assert "partitions created:" in capsys.readouterr().out
    await asyncio.to_thread(main, ["db", "partitions", "--months-ahead", "6"])
    assert "created: none; dropped: none" in capsys.readouterr().out
