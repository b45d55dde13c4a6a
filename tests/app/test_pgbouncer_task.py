"""One task end to end with every engine of the ingress and the worker pointed at PgBouncer in
transaction pooling mode (``LUCY_DATABASE_PGBOUNCER=true``): a signed mention, an exec that waits
for an admin's approval, the click, the command run once, the answer, and the business record
(task, steps, approval, audit, cost) written once, through a pooler that may hand every
transaction another server connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.testing import WorkflowEnvironment

from lucy.contracts.ids import task_workflow_id
from lucy.db.session import create_engine
from lucy.settings import Settings
from tests.conftest import eventually, mention_event, new_team, running_lucy
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack
from tests.fixtures.pgbouncer import PgBouncer, needs_pgbouncer

pytestmark = needs_pgbouncer


RECORD = text(
    "SELECT t.status, (SELECT count(*) FROM task_steps s WHERE s.task_id = t.id) AS steps,"
    " (SELECT array_agg(a.status) FROM approvals a WHERE a.task_id = t.id) AS approvals,"
    " (SELECT count(*) FROM cost_log c WHERE c.task_id = t.id) AS costs,"
    " (SELECT count(*) FROM audit_log l WHERE l.workflow_id = t.workflow_id"
    "   AND l.action = 'approval.requested') AS requested"
    " FROM tasks t WHERE t.workflow_id = :w"
)


def _database_errors() -> float:
    """``lucy_database_errors_total``, every kind."""
    return sum(
        REGISTRY.get_sample_value("lucy_database_errors_total", {"kind": kind}) or 0.0
        for kind in ("disconnect", "other", "pool_timeout")
    )


def _logins(bouncer: PgBouncer) -> int:
    return bouncer.log_file.read_text().count(f"login attempt: db={bouncer.database} user=lucy_app")


async def test_a_task_with_an_approval_runs_through_pgbouncer(
    make_settings: Callable[..., Settings],
    pgbouncer: PgBouncer,
    temporal_env: WorkflowEnvironment,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
    fake_gateway: FakeGateway,
):
    settings = make_settings(
        database_url=pgbouncer.app_url,
        database_migration_url=pgbouncer.owner_url,
        database_pgbouncer=True,
    )
    engine = create_engine(settings.database)
    admin_engine = create_async_engine(pgbouncer.superuser_url)  # assertions, straight to PostgreSQL
    logins_before, errors_before = _logins(pgbouncer), _database_errors()
    fake_llm.then(content="Let me look.", tool_calls=[("exec", '{"command": "ls -la /srv"}')])
    fake_llm.then(content="The folder holds **3 files**.")
    team = new_team()
    event = mention_event(team=team, text="what is in /srv on the box?")
    channel, workflow_id = (
        event["event"]["channel"],
        task_workflow_id(team, "C0GENERAL", event["event"]["ts"]),
    )
    try:
        async with running_lucy(settings, temporal_env.client, engine, admin_engine) as lucy:
            assert (await lucy.post_event(event)).status_code == 200
            approval = await eventually(lambda: fake_slack.with_actions(channel, "lucy_approve"), "approval")
            handle = lucy.client.get_workflow_handle(workflow_id)
            await eventually(
                lambda: _waiting(handle), "the task waiting for the approval"
            )  # the message is posted a moment before the workflow waits
            assert (await lucy.click(approval, "lucy_approve", team=team, user="UADMIN1")).status_code == 200
            result = await asyncio.wait_for(handle.result(), 60)
        async with admin_engine.connect() as conn:
            record = (await conn.execute(RECORD, {"w": workflow_id})).one()
    finally:
        await engine.dispose()
        await admin_engine.dispose()
    assert result["status"] == "completed"
    assert fake_gateway.commands() == ["ls -la /srv"], "the command ran exactly once"
    assert "3 files" in fake_slack.posted(channel)[-1]["text"]
    assert _logins(pgbouncer) > logins_before, "the application's connections went through PgBouncer"
    # Not one statement failed on the way (a retried activity would hide one from the outcome).
    assert _database_errors() == errors_before
    assert record.status == "completed"
    assert record.approvals == ["approved"] and record.requested == 1
    assert record.steps >= 3 and record.costs == 3  # classify, the tool call, the answer


async def _waiting(handle: Any) -> bool:
    return (await handle.query("status"))["status"] == "pending_approval"
