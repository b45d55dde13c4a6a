"""The tenant and reporting store against the real PostgreSQL, as the application role."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AbstractAsyncContextManager
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from app.devservers import LocalPostgres
from capabilities.approvals.repository import create_approval, decide_approval, list_pending_approvals
from capabilities.task.repository import ingress_claim, record_step, record_task_running
from lucy.crypto import CryptoError, KeyRing
from lucy.db.partitions import add_months, ensure_partitions
from lucy.db.repositories.credentials import rotate_credentials
from lucy.db.repositories.ledger import monthly_cost, record_audit, record_cost
from lucy.db.repositories.tenants import (
    is_feature_enabled,
    tenant_transaction,
    upsert_user,
    upsert_workspace,
)
from lucy.db.session import create_sessionmaker
from tests.conftest import new_team
from tests.fixtures import store as helpers
from tests.fixtures.clock import FROZEN

# These tests are about calendar months (a monthly rollup, a quota that rolls over), never about
# the day they run: a fixed instant (tests/fixtures/clock.py). Its month's partitions are created first,
# so the rows land where a maintained database puts them.
NOW = FROZEN
NEXT_MONTH = add_months(NOW.date(), 1)


async def frozen_month_partitions(owner_url: str) -> None:
    """The fixed instant's month gets its partitions in the database at ``owner_url``."""
    owner = create_async_engine(owner_url)
    try:
        async with owner.begin() as conn:
            await ensure_partitions(conn, today=NOW.date(), months_ahead=0)
    finally:
        await owner.dispose()


@pytest.fixture(scope="module", autouse=True)
async def _frozen_month_partitions(postgres: LocalPostgres) -> None:
    await frozen_month_partitions(postgres.url)


def tenant(engine: AsyncEngine, workspace_id: uuid.UUID) -> AbstractAsyncContextManager[AsyncSession]:
    return tenant_transaction(create_sessionmaker(engine), workspace_id)


async def new_workspace(engine: AsyncEngine) -> uuid.UUID:
    async with create_sessionmaker(engine).begin() as session:
        return await upsert_workspace(session=session, slack_team_id=new_team())


async def new_workspace_task(engine: AsyncEngine, admin_engine: AsyncEngine) -> tuple[uuid.UUID, str]:
    """A new workspace with one task: its id and the task's workflow id."""
    ws = await new_workspace(engine)
    await new_task(engine, ws)
    async with admin_engine.connect() as conn:
        workflow_id = (
            await conn.execute(text("SELECT workflow_id FROM tasks WHERE workspace_id = :w"), {"w": ws})
        ).scalar_one()
    return ws, str(workflow_id)


async def new_task(engine: AsyncEngine, workspace_id: uuid.UUID) -> uuid.UUID:
    async with tenant(engine, workspace_id) as s:
        return await record_task_running(
            session=s,
            workspace_id=workspace_id,
            workflow_id=f"wf-{uuid.uuid4()}",
            run_id="r1",
            requester_id=None,
            channel_id=None,
            source="mention",
            request_text="x",
            slack_channel_id="C1",
            slack_thread_ts="1.1",
            started_at=NOW,
        )


async def test_audit_log_is_immutable_in_the_database(engine: AsyncEngine, admin_engine: AsyncEngine):
    ws = await new_workspace(engine)
    async with tenant(engine, ws) as s:
        assert await record_audit(
            session=s, workspace_id=ws, idempotency_key="a1", occurred_at=NOW, actor_type="lucy", action="x"
        )
    for statement in ("UPDATE audit_log SET action = 'y'", "DELETE FROM audit_log"):
        # The application role has no UPDATE/DELETE privilege at all...
        with pytest.raises(DBAPIError):
            async with tenant(engine, ws) as s:
                await s.execute(text(statement + " WHERE workspace_id = :w"), {"w": ws})
        # ...and even a superuser is stopped by the trigger.
        with pytest.raises(DBAPIError, match="append-only"):
            async with admin_engine.begin() as conn:
                await conn.execute(text(statement + " WHERE workspace_id = :w"), {"w": ws})
    with pytest.raises(DBAPIError, match="append-only"):
        async with admin_engine.begin() as conn:
            await conn.execute(text("TRUNCATE audit_log"))
    async with admin_engine.connect() as conn:
        rows = await conn.execute(text("SELECT action FROM audit_log WHERE workspace_id = :w"), {"w": ws})
        assert rows.scalars().all() == ["x"]


async def test_cost_entries_are_idempotent_and_the_monthly_rollup_exact(engine: AsyncEngine):
    ws = await new_workspace(engine)

    async def write(i: int) -> bool:
        async with tenant(engine, ws) as s:
            return await record_cost(
                session=s,
                workspace_id=ws,
                idempotency_key=f"k{i % 25}",  # every entry is written twice (a retried activity)
                occurred_at=NOW + timedelta(seconds=i % 25),
                cost_usd=Decimal("0.001") * (i % 25 + 1),
                prompt_tokens=10,
                completion_tokens=i % 25,
                model="m",
            )

    inserted = await asyncio.gather(*(write(i) for i in range(50)))
    assert sum(inserted) == 25
    async with tenant(engine, ws) as s:
        fast = await monthly_cost(session=s, workspace_id=ws, month=NOW.date())
        slow = await helpers.monthly_cost_from_log(session=s, workspace_id=ws, month=NOW.date())
    assert fast == slow
    assert fast.calls == 25 and fast.prompt_tokens == 250
    assert fast.cost_usd == sum(Decimal("0.001") * (i + 1) for i in range(25))


async def test_approval_is_decided_exactly_once(engine: AsyncEngine):
    ws = await new_workspace(engine)
    task_id = await new_task(engine, ws)
    async with tenant(engine, ws) as s:
        approver = await upsert_user(session=s, workspace_id=ws, slack_user_id="UAPPROVER", role="admin")
        args = dict(
            session=s,
            workspace_id=ws,
            task_id=task_id,
            workflow_id="wf",
            idempotency_key=f"ap-{uuid.uuid4()}",
            action_type="tool_execution",
            risk_level="high",
            summary="exec: ls",
            expires_at=NOW + timedelta(hours=24),
            approver_id=approver,
        )
        first = await create_approval(**args)
        assert await create_approval(**args) == first  # a retried activity
        pending = await list_pending_approvals(session=s, workspace_id=ws, approver_id=approver)
        assert [a.id for a in pending] == [first]

    async def click(decision: str) -> bool:
        async with tenant(engine, ws) as s:
            row = await decide_approval(
                session=s, workspace_id=ws, approval_id=first, decision=decision, decided_by=approver, now=NOW
            )
            return row is not None

    results = await asyncio.gather(*(click("approved" if i % 2 else "rejected") for i in range(10)))
    assert sum(results) == 1
    async with tenant(engine, ws) as s:
        assert await list_pending_approvals(session=s, workspace_id=ws, approver_id=approver) == []
        late = dict(
            args, session=s, idempotency_key=f"ap-{uuid.uuid4()}", expires_at=NOW - timedelta(seconds=1)
        )
        expired_id = await create_approval(**late)
        assert (
            await decide_approval(
                session=s,
                workspace_id=ws,
                approval_id=expired_id,
                decision="approved",
                decided_by=approver,
                now=NOW,
            )
            is None
        ), "an approval past its expiry is not decided"


async def _claim(
    engine: AsyncEngine, team: str, *, month: date, user: str = "U1", capacity: float = 100
) -> Any:
    """One ingress claim through the SQL function ``lucy_ingress_claim`` (migration 0005)."""
    async with create_sessionmaker(engine).begin() as s:
        return await ingress_claim(
            session=s,
            slack_team_id=team,
            slack_user_id=user,
            slack_channel_id="C1",
            channel_type="public",
            workflow_id=f"lucy-task-{team}-C1-{uuid.uuid4().hex}",
            source="mention",
            request_text="x",
            slack_thread_ts=None,
            user_capacity=capacity,
            user_refill_per_second=0.01,
            workspace_capacity=1000,
            workspace_refill_per_second=10,
            month=month,
        )


async def test_the_monthly_quota_is_atomic_and_rolls_over(engine: AsyncEngine, admin_engine: AsyncEngine):
    team = new_team()
    first = await _claim(engine, team, month=NOW.date())
    async with admin_engine.begin() as conn:
        await conn.execute(
            text("UPDATE workspaces SET max_monthly_actions = 5 WHERE id = :w"), {"w": first.workspace_id}
        )
    claims = await asyncio.gather(*(_claim(engine, team, month=NOW.date(), user=f"U{i}") for i in range(20)))
    assert sum(c.refused is None for c in claims) == 4, "five in all, the first one included"
    refused = [c for c in claims if c.refused]
    assert {c.refused for c in refused} == {"quota"} and all(
        (c.quota_used, c.quota_limit) == (5, 5) for c in refused
    )
    assert all(c.claimed for c in claims), "a refused request keeps its row"
    next_month = await _claim(engine, team, month=NEXT_MONTH)
    assert next_month.refused is None and next_month.quota_used == 1


async def test_the_token_bucket_is_atomic(engine: AsyncEngine):
    team = new_team()
    claims = await asyncio.gather(*(_claim(engine, team, month=NOW.date(), capacity=3) for _ in range(10)))
    assert sum(c.refused is None for c in claims) == 3
    refused = [c for c in claims if c.refused]
    assert {c.refused for c in refused} == {"user_rate"} and all(c.retry_after_s > 0 for c in refused)


async def test_feature_flags_steps_and_history(engine: AsyncEngine):
    ws = await new_workspace(engine)
    task_id = await new_task(engine, ws)
    async with tenant(engine, ws) as s:
        assert await is_feature_enabled(session=s, workspace_id=ws, flag_key="self_approval") is False
        await helpers.set_feature_flag(session=s, workspace_id=ws, flag_key="self_approval", enabled=True)
        assert await is_feature_enabled(session=s, workspace_id=ws, flag_key="self_approval") is True
        step = dict(
            session=s, workspace_id=ws, task_id=task_id, step_index=0, kind="tool_use", idempotency_key="s0"
        )
        a = await record_step(**step, name="exec")
        b = await record_step(**step, name="exec", status="completed", output={"ok": True})
        assert a == b
        count = await s.execute(
            text("SELECT count(*), max(status) FROM task_steps WHERE task_id = :t"), {"t": task_id}
        )
        assert tuple(count.one()) == (1, "completed")


async def test_without_a_tenant_the_application_sees_nothing(engine: AsyncEngine):
    ws = await new_workspace(engine)
    await new_task(engine, ws)
    async with engine.connect() as conn:
        for table in ("workspaces", "tasks", "users"):
            assert (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0


# --------------------------------------------------------------------------- credentials

KEYS_OLD = KeyRing.new_key("old")
KEYS_NEW = KeyRing.new_key("new")


async def test_credentials_are_encrypted_bound_and_rotatable(engine: AsyncEngine, admin_engine: AsyncEngine):
    ws = await new_workspace(engine)
    old = KeyRing.parse(KEYS_OLD)
    secret = "lin_api_SuperSecretValue123"
    async with tenant(engine, ws) as s:
        integration = await helpers.upsert_integration(session=s, workspace_id=ws, provider="linear")
        await helpers.store_credential(
            session=s,
            workspace_id=ws,
            integration_id=integration,
            credential_type="api_key",
            plaintext=secret,
            keyring=old,
        )
    async with admin_engine.connect() as conn:
        blob, key_id = (
            await conn.execute(
                text("SELECT encrypted_value, key_id FROM integration_credentials WHERE integration_id = :i"),
                {"i": integration},
            )
        ).one()
    assert key_id == "old" and secret.encode() not in blob
    read = dict(workspace_id=ws, integration_id=integration, credential_type="api_key")
    async with tenant(engine, ws) as s:
        assert await helpers.read_credential(session=s, keyring=old, **read) == secret
        with pytest.raises(CryptoError, match="lacks") as exc:
            await helpers.read_credential(session=s, keyring=KeyRing.parse(KEYS_NEW), **read)
        assert secret not in str(exc.value)
        # A ciphertext moved to another row does not decrypt (bound by associated data).
        with pytest.raises(CryptoError, match="wrong key or altered"):
            old.decrypt("old", blob, aad=b"another|row|api_key")
    rotated = KeyRing.parse(f"{KEYS_NEW},{KEYS_OLD}")
    async with tenant(engine, ws) as s:
        assert await rotate_credentials(session=s, workspace_id=ws, keyring=rotated) == 1
        assert await rotate_credentials(session=s, workspace_id=ws, keyring=rotated) == 0
    async with tenant(engine, ws) as s:
        assert await helpers.read_credential(session=s, keyring=KeyRing.parse(KEYS_NEW), **read) == secret


def test_keyring_errors_are_clear_and_secret_free():
    for raw, match in (
        (None, "not set"),
        ("nocolon", "key_id:base64key"),
        ("k1:!!!notbase64", "base64|32 bytes"),
        ("k1:c2hvcnQ", "32 bytes"),
        (f"{KEYS_OLD},{KEYS_OLD}", "duplicate"),
    ):
        with pytest.raises(CryptoError, match=match) as exc:
            KeyRing.parse(raw)
        assert KEYS_OLD.split(":")[1] not in str(exc.value)
    assert KEYS_OLD.split(":")[1] not in repr(KeyRing.parse(KEYS_OLD))


async def test_cli_rotate_keys(
    postgres, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from app.cli import main

    ws = await new_workspace(engine)
    async with tenant(engine, ws) as s:
        integration = await helpers.upsert_integration(session=s, workspace_id=ws, provider="composio")
        await helpers.store_credential(
            session=s,
            workspace_id=ws,
            integration_id=integration,
            credential_type="api_key",
            plaintext="v",
            keyring=KeyRing.parse(KEYS_OLD),
        )
    monkeypatch.setenv("LUCY_DATABASE_MIGRATION_URL", postgres.url)
    monkeypatch.setenv("LUCY_ENCRYPTION_KEYS", f"{KEYS_NEW},{KEYS_OLD}")
    await asyncio.to_thread(main, ["db", "rotate-keys"])
    out = capsys.readouterr().out
    assert "with key 'new'" in out and int(out.split()[1]) >= 1
    async with tenant(engine, ws) as s:
        read = dict(workspace_id=ws, integration_id=integration, credential_type="api_key")
        assert await helpers.read_credential(session=s, keyring=KeyRing.parse(KEYS_NEW), **read) == "v"
    monkeypatch.setenv("LUCY_ENCRYPTION_KEYS", "")
    with pytest.raises(SystemExit):
        await asyncio.to_thread(main, ["db", "rotate-keys"])
    assert "LUCY_ENCRYPTION_KEYS is not set" in capsys.readouterr().err


async def test_task_finished_activity_is_idempotent_across_retries(
    engine: AsyncEngine, admin_engine: AsyncEngine
):
    """The recording activity run twice (a retry after a lost response) writes each row once."""
    from temporalio.testing import ActivityEnvironment

    from capabilities.task.activities.records import RecordActivities
    from capabilities.task.contracts.records import TaskFinished

    ws, workflow_id = await new_workspace_task(engine, admin_engine)
    finished = TaskFinished(
        workflow_id=workflow_id,
        workspace_id=str(ws),
        status="completed",
        model="m",
        prompt_tokens=5,
        completion_tokens=6,
        cost_usd=0.5,
        occurred_at=NOW.isoformat(),
    )
    activities = RecordActivities(create_sessionmaker(engine))
    env = ActivityEnvironment()
    assert await env.run(activities.task_finished, finished) is True
    assert await env.run(activities.task_finished, finished) is False
    async with admin_engine.connect() as conn:
        counts = {
            table: (
                await conn.execute(text(f"SELECT count(*) FROM {table} WHERE workspace_id = :w"), {"w": ws})
            ).scalar_one()
            for table in ("audit_log", "cost_log")
        }
        assert counts == {"audit_log": 1, "cost_log": 0}, (
            "the outcome once; costs are recorded with each step"
        )
        row = (
            await conn.execute(
                text("SELECT status, prompt_tokens, cost_usd FROM tasks WHERE workflow_id = :w"),
                {"w": workflow_id},
            )
        ).one()
        assert tuple(row) == ("completed", 5, Decimal("0.500000"))


async def test_tool_arguments_previews_and_errors_are_redacted_before_the_database(
    engine: AsyncEngine, admin_engine: AsyncEngine
):
    """A secret in a tool's arguments, its output or its error never reaches ``task_steps``."""
    from temporalio.testing import ActivityEnvironment

    from capabilities.task.activities.records import RecordActivities
    from capabilities.task.contracts.records import StepBatch, StepRecord

    token, aws = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "AKIA" + "IOSFODNN7EXAMPLE"
    ws, workflow_id = await new_workspace_task(engine, admin_engine)
    step = StepRecord(
        workflow_id=workflow_id,
        workspace_id=str(ws),
        step_index=1,
        kind="tool_use",
        name="exec",
        status="failed",
        occurred_at=NOW.isoformat(),
        input={"command": f"curl -H 'Authorization: token {token}' https://api.github.com", "env": [aws]},
        output={"preview": f"echo {aws}"},
        error=f"exit 1: bad credentials {token}",
    )
    written = await ActivityEnvironment().run(
        RecordActivities(create_sessionmaker(engine)).steps, StepBatch(records=[step])
    )
    assert written == 1
    async with admin_engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT input::text, output::text, error FROM task_steps WHERE workspace_id = :w"),
                {"w": ws},
            )
        ).one()
    everything = " ".join(str(v) for v in stored)
    assert token not in everything and aws not in everything
    assert everything.count("[redacted]") >= 4 and "api.github.com" in everything


async def test_a_batch_of_steps_is_written_once_in_one_statement_per_table(
    engine: AsyncEngine, admin_engine: AsyncEngine
):
    """``records.steps`` with many records (fast steps share a write): every step, its cost and
    its audit entry once; a step twice in one batch ends as its later record; a retry of the
    same batch adds nothing."""
    from temporalio.testing import ActivityEnvironment

    from capabilities.task.activities.records import RecordActivities
    from capabilities.task.contracts.records import StepBatch, StepRecord

    ws, workflow_id = await new_workspace_task(engine, admin_engine)

    def step(index: int, kind: str, status: str, **extra: object) -> StepRecord:
        return StepRecord(
            workflow_id=workflow_id,
            workspace_id=str(ws),
            step_index=index,
            kind=kind,
            name="read_file" if kind == "tool_use" else "default tier",
            status=status,
            occurred_at=(NOW + timedelta(seconds=index)).isoformat(),
            **extra,  # type: ignore[arg-type]
        )

    llm = {"model": "m", "prompt_tokens": 10, "completion_tokens": 2, "cost_usd": 0.01}
    batch = StepBatch(
        records=[
            step(1, "llm_call", "completed", **llm),
            step(2, "tool_use", "running", input={"summary": "read_file: /a", "risk": "low"}),
            step(2, "tool_use", "completed", input={"summary": "read_file: /a", "risk": "low"}),
            step(3, "llm_call", "completed", **llm),
            step(4, "tool_use", "failed", error="not found"),
        ]
    )
    records = RecordActivities(create_sessionmaker(engine))
    assert await ActivityEnvironment().run(records.steps, batch) == 5
    assert await ActivityEnvironment().run(records.steps, batch) == 5  # a retried attempt
    async with admin_engine.connect() as conn:
        steps = (
            await conn.execute(
                text("SELECT step_index, status FROM task_steps WHERE workspace_id = :w ORDER BY step_index"),
                {"w": ws},
            )
        ).all()
        costs = (
            await conn.execute(
                text("SELECT count(*), sum(cost_usd) FROM cost_log WHERE workspace_id = :w"), {"w": ws}
            )
        ).one()
        audits = (
            await conn.execute(
                text(
                    "SELECT action FROM audit_log WHERE workspace_id = :w AND entity_type = 'task_step' ORDER BY action"
                ),
                {"w": ws},
            )
        ).all()
    assert [tuple(s) for s in steps] == [(1, "completed"), (2, "completed"), (3, "completed"), (4, "failed")]
    assert tuple(costs) == (2, Decimal("0.020000"))
    # Step 2's two records share one audit key: the first written is kept.
    assert sorted(a.action for a in audits) == ["tool.failed", "tool.running"]
