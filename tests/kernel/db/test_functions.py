"""The database's own functions: SECURITY DEFINER hygiene, removed workspaces, maintenance as the
application role (migration 0007)."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.devservers import LocalPostgres
from tests.conftest import Lucy, mention_event, new_team
from tests.fakes.slack import FakeSlack


async def test_security_definer_functions_pin_their_search_path_and_are_not_public(admin_engine: AsyncEngine):
    async with admin_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT p.proname, p.proconfig, p.proacl IS NOT NULL AND NOT EXISTS ("
                    "  SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'"
                    ") AS not_public "
                    "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname = 'public' AND p.prosecdef ORDER BY 1"
                )
            )
        ).all()
    names = {r.proname for r in rows}
    assert {
        "lucy_resolve_workspace",
        "lucy_maintain_partitions",
        "lucy_stale_claims",
        "lucy_pattern_workspaces",
    } <= names
    for row in rows:
        assert row.proconfig == ["search_path=pg_catalog, public, pg_temp"], row
        assert row.not_public, f"{row.proname} is executable by PUBLIC"


async def test_a_role_that_is_not_lucys_cannot_call_them(postgres: LocalPostgres, admin_engine: AsyncEngine):
    stranger = f"stranger_{uuid.uuid4().hex[:6]}"
    async with admin_engine.begin() as conn:
        await conn.execute(text(f"CREATE ROLE {stranger} LOGIN PASSWORD 'x-{stranger}'"))
        await conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {stranger}"))
    url = f"postgresql+asyncpg://{stranger}:x-{stranger}@127.0.0.1:{postgres.port}/{postgres.database}"
    engine = create_async_engine(url)
    try:
        for call in (
            "SELECT lucy_resolve_workspace('TSTRANGER')",
            "SELECT lucy_maintain_partitions(1)",
            "SELECT * FROM lucy_stale_claims(interval '1 minute', 10)",
            "SELECT * FROM lucy_pattern_workspaces()",
        ):
            with pytest.raises(DBAPIError, match="permission denied"):
                async with engine.connect() as conn:
                    await conn.execute(text(call))
    finally:
        await engine.dispose()
        async with admin_engine.begin() as conn:
            await conn.execute(text(f"REVOKE ALL ON SCHEMA public FROM {stranger}"))
            await conn.execute(text(f"DROP ROLE {stranger}"))


async def test_the_application_maintains_partitions_but_cannot_drop_or_drain_directly(engine: AsyncEngine):
    async with engine.begin() as conn:
        report = (await conn.execute(text("SELECT lucy_maintain_partitions(2)"))).scalar_one()
    report = report if isinstance(report, dict) else json.loads(report)
    assert set(report) == {"created", "drained"}
    for call in ("SELECT lucy_drain_default_partition('audit_log')", "DROP TABLE audit_log_default"):
        with pytest.raises(DBAPIError, match=r"permission denied|must be owner"):
            async with engine.begin() as conn:
                await conn.execute(text(call))
    with pytest.raises(DBAPIError, match="between 0 and 24"):
        async with engine.begin() as conn:
            await conn.execute(text("SELECT lucy_maintain_partitions(10000)"))


async def test_a_removed_workspace_is_not_brought_back_by_a_message(lucy: Lucy, fake_slack: FakeSlack):
    team = new_team()
    async with lucy.engine.begin() as conn:  # superuser: the workspace existed, then was removed
        await conn.execute(
            text("INSERT INTO workspaces (slack_team_id, name, deleted_at) VALUES (:t, 'Gone', now())"),
            {"t": team},
        )
    event = mention_event(team=team, text="are you there?")
    assert (await lucy.post_event(event)).status_code == 200  # acknowledged: Slack must not retry
    told = [e for e in fake_slack.ephemerals if e.get("user") == "U0ALICE"]
    assert told and "removed from this workspace" in told[-1]["text"]
    reply = (await lucy.command("tasks", team=team)).json()["text"]
    assert "removed from this workspace" in reply
    async with lucy.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT deleted_at IS NOT NULL AS removed, id FROM workspaces WHERE slack_team_id = :t"),
                {"t": team},
            )
        ).one()
        assert row.removed, "still removed"
        tasks = (
            await conn.execute(text("SELECT count(*) FROM tasks WHERE workspace_id = :w"), {"w": row.id})
        ).scalar_one()
        assert tasks == 0, "nothing was recorded in it"
