"""Alembic: upgrade -> downgrade -> upgrade round trip, and `lucy db check` catching drift."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from app.cli import main
from app.devservers import LocalPostgres
from lucy import migrate


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


async def _monitor_names(conn: asyncpg.Connection, table: str) -> set[str]:
    """The table's constraint names (keys, checks) and its indexes."""
    rows = await conn.fetch(
        "SELECT conname AS n FROM pg_constraint WHERE conrelid = to_regclass($1) "
        "UNION SELECT indexname FROM pg_indexes WHERE tablename = $1",
        table,
    )
    return {r["n"] for r in rows}


async def test_0016_renames_heartbeats_to_monitors_keeping_rows_rls_and_the_live_function(
    fresh_db: str, postgres: LocalPostgres
):
    await asyncio.to_thread(migrate.upgrade, fresh_db, "0015")
    conn = await asyncpg.connect(_dsn(fresh_db))
    try:
        ws = await conn.fetchval("INSERT INTO workspaces (slack_team_id) VALUES ('TMON') RETURNING id")
        await conn.execute("SELECT set_config('lucy.workspace_id', $1, false)", str(ws))
        row = await conn.fetchval(
            "INSERT INTO heartbeats (workspace_id, name, condition_type) VALUES ($1, 'm', 'api_health') "
            "RETURNING id",
            ws,
        )
        await conn.execute("SELECT set_config('lucy.workspace_id', '', false)")
        await asyncio.to_thread(migrate.upgrade, fresh_db)
        assert "heartbeats" not in await _tables(fresh_db)
        names = await _monitor_names(conn, "monitors")
        assert names and not [n for n in names if "heartbeat" in n]
        app = await asyncpg.connect(_dsn(postgres.app_url_for(fresh_db.rsplit("/", 1)[1])))
        try:
            assert await app.fetch("SELECT id FROM monitors") == []  # RLS: no tenant, no rows
            live = await app.fetch("SELECT workspace_id, monitor_id FROM lucy_live_monitors()")
            assert [(r["workspace_id"], r["monitor_id"]) for r in live] == [(ws, row)]
            await app.execute("SELECT set_config('lucy.workspace_id', $1, false)", str(ws))
            assert await app.fetchval("SELECT name FROM monitors WHERE id = $1", row) == "m"
        finally:
            await app.close()
        await asyncio.to_thread(migrate.check, fresh_db)

        await asyncio.to_thread(migrate.downgrade, fresh_db, "0015")
        assert "monitors" not in await _tables(fresh_db)
        assert not [n for n in await _monitor_names(conn, "heartbeats") if "monitor" in n]
        live = await conn.fetch("SELECT heartbeat_id FROM lucy_live_heartbeats()")
        assert [r["heartbeat_id"] for r in live] == [row]
    finally:
        await conn.close()
