"""The maintenance schedule: a real Temporal Schedule on the dev server starts
``LucyMaintenanceWorkflow``, which keeps partitions ahead and records orphaned claims."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text, update
from temporalio.client import ScheduleActionStartWorkflow

from capabilities.proactive.maintenance_schedule import ensure_maintenance_schedule
from capabilities.task.repository import ingress_claim
from lucy.contracts.ids import MAINTENANCE_WORKFLOW_NAME
from lucy.db.models import Task
from lucy.db.partitions import add_months
from lucy.db.session import create_sessionmaker
from tests.conftest import Lucy, new_team, record_history


async def test_the_schedule_reconciles_orphaned_claims_and_keeps_partitions(lucy: Lucy, engine):
    team = new_team()
    sessions = create_sessionmaker(engine)
    orphan, started = f"lucy-task-{team}-C1-orphan", f"lucy-task-{team}-C1-started"
    async with sessions.begin() as session:
        for wf in (orphan, started):  # claimed as ingress claims (the SQL function)
            claim = await ingress_claim(
                session=session,
                slack_team_id=team,
                slack_user_id="U1",
                slack_channel_id="C1",
                channel_type="public",
                workflow_id=wf,
                source="mention",
                request_text="hello",
                slack_thread_ts="1.1",
                user_capacity=100,
                user_refill_per_second=1,
                workspace_capacity=100,
                workspace_refill_per_second=1,
                month=datetime.now(UTC).date(),
            )
        workspace_id = claim.workspace_id
        # Both were claimed half an hour ago; only one of them has a workflow.
        await session.execute(
            update(Task)
            .where(Task.workspace_id == workspace_id)
            .values(created_at=datetime.now(UTC) - timedelta(minutes=30))
        )
    await lucy.client.start_workflow(
        "NotLucy", id=started, task_queue=f"nobody-{uuid.uuid4().hex[:6]}"
    )  # exists in Temporal (never runs: no worker polls that queue)

    schedule_id = f"lucy-maintenance-test-{uuid.uuid4().hex[:8]}"
    queue = lucy.settings.temporal.temporal_task_queue
    await ensure_maintenance_schedule(lucy.client, queue, schedule_id=schedule_id, every=timedelta(hours=1))
    await ensure_maintenance_schedule(
        lucy.client, queue, schedule_id=schedule_id, every=timedelta(hours=2)
    )  # idempotent
    handle = lucy.client.get_schedule_handle(schedule_id)
    before = datetime.now(UTC).date()  # the activity's "today" is this day or a later one
    try:
        desc = await handle.describe()
        assert desc.schedule.spec.intervals[0].every == timedelta(hours=2)
        assert isinstance(desc.schedule.action, ScheduleActionStartWorkflow)
        assert desc.schedule.action.workflow == MAINTENANCE_WORKFLOW_NAME
        await handle.trigger()
        for _ in range(200):
            desc = await handle.describe()
            if desc.info.recent_actions:
                break
            await asyncio.sleep(0.05)
        run = desc.info.recent_actions[-1].action
        wf = lucy.client.get_workflow_handle(run.workflow_id, run_id=run.first_execution_run_id)
        report = await asyncio.wait_for(wf.result(), 30)
    finally:
        await handle.delete()

    claims = report["claims"]
    assert orphan in claims["orphaned"] and started not in claims["orphaned"]
    assert report["partitions"]["skipped"] is None
    async with lucy.engine.connect() as conn:
        rows = dict(
            (
                await conn.execute(
                    text(
                        "SELECT workflow_id, status || '/' || coalesce(error_type, '') FROM tasks WHERE workflow_id IN (:a, :b)"
                    ),
                    {"a": orphan, "b": started},
                )
            ).all()
        )
        assert rows == {orphan: "failed/NeverStarted", started: "created/"}
        month = add_months(before, 3).strftime("%Y_%m")
        exists = (
            await conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": f"cost_log_{month}"})
        ).scalar()
        assert exists, "three months ahead are ready"
    await lucy.client.get_workflow_handle(started).terminate()
    await record_history(lucy, run.workflow_id, "lucy_maintenance")
