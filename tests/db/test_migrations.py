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


async def test_0015_leaves_an_inbox_bound_only_to_its_oldest_live_workspace(fresh_db: str):
    await asyncio.to_thread(migrate.upgrade, fresh_db, "0014")
    conn = await asyncpg.connect(_dsn(fresh_db))
    try:
        for team, inbox, age in (("TOLD", "a@x.to", 3), ("TNEW", "A@X.TO", 2), ("TOTHER", "b@x.to", 1)):
            await conn.execute(
                "INSERT INTO workspaces (slack_team_id, settings, created_at) "
                "VALUES ($1, jsonb_build_object('email_inbox', $2::text), now() - make_interval(days => $3))",
                team,
                inbox,
                age,
            )
        await asyncio.to_thread(migrate.upgrade, fresh_db)
        rows = await conn.fetch(
            "SELECT slack_team_id, settings->>'email_inbox' AS i FROM workspaces ORDER BY 1"
        )
    finally:
        await conn.close()
    assert [(r["slack_team_id"], r["i"]) for r in rows] == [
        ("TNEW", None),
        ("TOLD", "a@x.to"),
        ("TOTHER", "b@x.to"),
    ]
