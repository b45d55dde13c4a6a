"""Alembic: upgrade -> downgrade -> upgrade round trip, and `lucy db check` catching drift."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from lucy import migrate
from lucy.cli import main


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


async def test_round_trip_and_check(fresh_db: str):
    await asyncio.to_thread(migrate.upgrade, fresh_db)
    assert {"workspaces", "users", "channels", "tasks", "alembic_version"} <= await _tables(fresh_db)
    await asyncio.to_thread(migrate.check, fresh_db)

    await asyncio.to_thread(migrate.downgrade, fresh_db, "base")
    assert await _tables(fresh_db) == {"alembic_version"}

    await asyncio.to_thread(migrate.upgrade, fresh_db)
    await asyncio.to_thread(migrate.check, fresh_db)


async def test_check_fails_when_database_and_models_differ(fresh_db: str):
    await asyncio.to_thread(migrate.upgrade, fresh_db)
    conn = await asyncpg.connect(_dsn(fresh_db))
    try:
        await conn.execute("ALTER TABLE workspaces ADD COLUMN sneaky text")
    finally:
        await conn.close()
    with pytest.raises(migrate.SchemaDriftError):
        await asyncio.to_thread(migrate.check, fresh_db)


async def test_cli_db_commands(
    fresh_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("LUCY_DATABASE_URL", fresh_db)
    await asyncio.to_thread(main, ["db", "upgrade"])
    await asyncio.to_thread(main, ["db", "check"])
    assert "models and migrations agree" in capsys.readouterr().out
    conn = await asyncpg.connect(_dsn(fresh_db))
    try:
        await conn.execute("ALTER TABLE tasks DROP COLUMN intent")
    finally:
        await conn.close()
    with pytest.raises(SystemExit) as exc:
        await asyncio.to_thread(main, ["db", "check"])
    assert exc.value.code == 1
    assert "models and migrations differ" in capsys.readouterr().err
