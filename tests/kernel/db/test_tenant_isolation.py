"""Property: whatever tenants exist and whatever the application asks, it never sees, changes
or creates a row of another workspace: on every tenant table and every partition.

Runs as ``lucy_app`` (neither owner nor superuser), so PostgreSQL's row-level security is what
is tested, not only the repositories' WHERE clauses (the queries below have none).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from app.devservers import LocalPostgres
from lucy.db import partitions
from lucy.db.models import PARTITIONED_TABLES, TENANT_TABLES

APPEND_ONLY = {"audit_log"}


async def _scoped(conn: AsyncConnection, workspace_id: uuid.UUID) -> None:
    await conn.execute(text("SELECT set_config('lucy.workspace_id', :w, true)"), {"w": str(workspace_id)})


async def seed_tenant(conn: AsyncConnection, users: int, tasks: int) -> uuid.UUID:
    """One workspace with at least one row in every tenant table (as the application role)."""
    team = f"T{uuid.uuid4().hex[:10].upper()}"
    ws = (await conn.execute(text("SELECT lucy_resolve_workspace(:t)"), {"t": team})).scalar_one()
    await _scoped(conn, ws)
    now = datetime.now(UTC)  # read when the rows are written: a run may cross into a new month
    p = {"w": ws, "now": now, "exp": now + timedelta(days=1)}

    async def one(sql: str, **extra: object) -> uuid.UUID:
        return (await conn.execute(text(sql), {**p, **extra})).scalar_one()

    user_ids = [
        await one("INSERT INTO users (workspace_id, slack_user_id) VALUES (:w, :u) RETURNING id", u=f"U{i}")
        for i in range(users)
    ]
    channel = await one(
        "INSERT INTO channels (workspace_id, slack_channel_id) VALUES (:w, 'C1') RETURNING id"
    )
    await one("INSERT INTO agents (workspace_id, name) VALUES (:w, 'lucy') RETURNING id")
    for _ in range(tasks):
        task = await one(
            "INSERT INTO tasks (workspace_id, workflow_id, requester_id, channel_id, status) "
            "VALUES (:w, :wf, :u, :c, 'running') RETURNING id",
            wf=f"wf-{uuid.uuid4()}",
            u=user_ids[0],
            c=channel,
        )
        await one(
            "INSERT INTO task_steps (workspace_id, task_id, step_index, kind, idempotency_key) "
            "VALUES (:w, :t, 0, 'llm_call', :k) RETURNING id",
            t=task,
            k=uuid.uuid4().hex,
        )
        await one(
            "INSERT INTO task_feedback (workspace_id, task_id, slack_user_id, feedback) "
            "VALUES (:w, :t, 'U0', 'good') RETURNING task_id",
            t=task,
        )
        await one(
            "INSERT INTO approvals (workspace_id, task_id, workflow_id, idempotency_key, action_type, risk_level, "
            "summary, expires_at, approver_id) VALUES (:w, :t, 'wf', :k, 'tool_execution', 'high', 's', :exp, :u) "
            "RETURNING id",
            t=task,
            k=uuid.uuid4().hex,
            u=user_ids[-1],
        )
    await one(
        "INSERT INTO schedules (workspace_id, name, cron_expression, intent_template, next_run_at) "
        "VALUES (:w, 'daily', '0 9 * * *', 'report', :now) RETURNING id"
    )
    await one(
        "INSERT INTO monitors (workspace_id, name, condition_type) VALUES (:w, 'hb', 'api_health') RETURNING id"
    )
    integration = await one(
        "INSERT INTO integrations (workspace_id, provider) VALUES (:w, 'github') RETURNING id"
    )
    await one(
        "INSERT INTO integration_credentials (workspace_id, integration_id, credential_type, key_id, encrypted_value) "
        "VALUES (:w, :i, 'token', 'k', '\\x00') RETURNING id",
        i=integration,
    )
    await one(
        "INSERT INTO mcp_servers (workspace_id, name, url, integration_id, added_by) "
        "VALUES (:w, 'ops', 'https://mcp.example.com/mcp', :i, 'U0') RETURNING id",
        i=integration,
    )
    await one(
        "INSERT INTO patterns (workspace_id, signature, description) VALUES (:w, 'sig', 'd') RETURNING id"
    )
    await one(
        "INSERT INTO cost_log (workspace_id, created_at, idempotency_key, cost_usd) "
        "VALUES (:w, :now, :k, 0.01) RETURNING id",
        k=uuid.uuid4().hex,
    )  # cost_monthly follows through the trigger
    await one(
        "INSERT INTO audit_log (workspace_id, created_at, idempotency_key, actor_type, action) "
        "VALUES (:w, :now, :k, 'lucy', 'seed') RETURNING id",
        k=uuid.uuid4().hex,
    )
    await one(
        "INSERT INTO webhook_deliveries (workspace_id, created_at, source) VALUES (:w, :now, 'slack') RETURNING id"
    )
    await one(
        "INSERT INTO rate_limits (workspace_id, bucket_key, tokens, capacity, refill_per_second) "
        "VALUES (:w, 'ws', 1, 1, 1) RETURNING workspace_id"
    )
    await one("INSERT INTO feature_flags (workspace_id, flag_key) VALUES (:w, 'f') RETURNING id")
    await one(
        "INSERT INTO memories (workspace_id, scope, scope_key, text, author_slack_id, source_key) "
        "VALUES (:w, 'workspace', '', 'we deploy on Tuesdays', 'U0', :k) RETURNING id",
        k=uuid.uuid4().hex,
    )
    await one(
        "INSERT INTO skill_versions (workspace_id, name, version, change, enabled, removed, description, "
        "body, source, added_by, changed_by) VALUES (:w, 'report', 1, 'added', true, false, 'd', 'b', 's', "
        "'U0', 'U0') RETURNING id"
    )
    await one(
        "INSERT INTO budgets (workspace_id, scope_key, period, limit_usd) "
        "VALUES (:w, 'workspace', 'month', 10) RETURNING workspace_id"
    )
    await one(
        "INSERT INTO budget_spend (workspace_id, scope_key, period, period_start) "
        "VALUES (:w, 'workspace', 'month', CAST(:now AS date)) RETURNING workspace_id"
    )
    await one(
        "INSERT INTO budget_reservations (workspace_id, reservation_key, month_start, day_start, amount_usd, "
        "created_at, expires_at) VALUES (:w, 'k', CAST(:exp AS date), CAST(:exp AS date), 1, :now, :exp) RETURNING workspace_id"
    )
    return uuid.UUID(str(ws))


async def check_isolation(
    url: str, shape: list[tuple[int, int]], observer: int, table: str, **engine_options: Any
) -> None:
    # Tasks with zero rows still leave task_steps/approvals empty for that tenant; give the
    # observer at least one task so "my own rows are visible" holds on every table.
    shape = [(u, t if i != observer % len(shape) else max(t, 1)) for i, (u, t) in enumerate(shape)]
    engine = create_async_engine(url, poolclass=NullPool, **engine_options)
    try:
        tenants = []
        for users, tasks in shape:
            async with engine.begin() as conn:
                tenants.append(await seed_tenant(conn, users, tasks))
        me = tenants[observer % len(tenants)]
        others = [t for t in tenants if t != me]

        async with engine.begin() as conn:
            await _scoped(conn, me)
            # Every table: only my rows, whatever else exists.
            for t in (*TENANT_TABLES, "workspaces"):
                column = "id" if t == "workspaces" else "workspace_id"
                seen = set((await conn.execute(text(f"SELECT DISTINCT {column} FROM {t}"))).scalars())
                assert seen <= {me}, f"{t}: saw rows of {len(seen - {me})} other workspace(s)"
                assert seen == {me}, f"{t}: my own rows are missing"
        # Reaching for another tenant explicitly changes nothing...
        for other in others:
            async with engine.begin() as conn:
                await _scoped(conn, me)
                assert (
                    await conn.execute(
                        text(f"SELECT count(*) FROM {table} WHERE workspace_id = :o"), {"o": other}
                    )
                ).scalar_one() == 0
                if table not in APPEND_ONLY:
                    updated = await conn.execute(
                        text(f"UPDATE {table} SET workspace_id = workspace_id WHERE workspace_id = :o"),
                        {"o": other},
                    )
                    assert updated.rowcount == 0
                    deleted = await conn.execute(
                        text(f"DELETE FROM {table} WHERE workspace_id = :o"), {"o": other}
                    )
                    assert deleted.rowcount == 0
            # ...and writing a row into another tenant is refused.
            with pytest.raises(DBAPIError, match="row-level security"):
                async with engine.begin() as conn:
                    await _scoped(conn, me)
                    await conn.execute(
                        text("INSERT INTO feature_flags (workspace_id, flag_key) VALUES (:o, 'sneaky')"),
                        {"o": other},
                    )
        # Partitions, the default one included, are reachable only through their parent.
        parent = PARTITIONED_TABLES[observer % 3]
        async with engine.connect() as conn:
            months = await partitions.existing_partitions(conn, parent)
        assert f"{parent}_default" in months
        for partition in months:
            with pytest.raises(DBAPIError, match="permission denied"):
                async with engine.connect() as conn:
                    await conn.execute(text(f"SELECT count(*) FROM {partition}"))
    finally:
        await engine.dispose()


# Tenants (users, tasks each), which of them observes, and the table it reaches into.
CASES = {
    "shape": st.lists(st.tuples(st.integers(1, 3), st.integers(0, 3)), min_size=2, max_size=4),
    "observer": st.integers(0, 3),
    "table": st.sampled_from(sorted(TENANT_TABLES)),
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**CASES)
def test_no_row_of_another_workspace_is_ever_visible(
    postgres: LocalPostgres, shape: list[tuple[int, int]], observer: int, table: str
):
    asyncio.run(check_isolation(postgres.app_url, shape, observer, table))
