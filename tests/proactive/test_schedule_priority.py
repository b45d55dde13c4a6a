"""A schedule's runs start as background work in their workspace's fairness slot, and a Temporal
Schedule made before runs had a priority is brought in line by the reconcile (maintenance, or a
worker's start): real ingress, worker, Temporal dev server and PostgreSQL."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from temporalio.client import ScheduleActionStartWorkflow, ScheduleUpdate, ScheduleUpdateInput
from temporalio.common import Priority

from capabilities.proactive.contracts.maintenance import MaintenanceInput
from lucy.contracts.priority import PriorityKey
from tests.conftest import Lucy, eventually, new_team
from tests.fakes.slack import FakeSlack
from tests.proactive.helpers import click_ephemeral, forget

CHANNEL = "C0PRIO"


async def _row_id(lucy: Lucy, team: str) -> str:
    async with lucy.engine.connect() as conn:
        return str(
            (
                await conn.execute(
                    text(
                        "SELECT s.id FROM schedules s JOIN workspaces w ON w.id = s.workspace_id "
                        "WHERE w.slack_team_id = :team AND s.deleted_at IS NULL"
                    ),
                    {"team": team},
                )
            ).scalar_one()
        )


async def _action_priority(lucy: Lucy, schedule_id: str) -> tuple[int | None, str | None]:
    action = (await lucy.client.get_schedule_handle(schedule_id).describe()).schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    return action.priority.priority_key, action.priority.fairness_key


def _without_priority(update: ScheduleUpdateInput) -> ScheduleUpdate:
    """The schedule as the code before priorities made it."""
    schedule = update.description.schedule
    assert isinstance(schedule.action, ScheduleActionStartWorkflow)
    schedule.action.priority = Priority.default
    return ScheduleUpdate(schedule=schedule)


async def test_a_schedules_runs_are_background_work_and_an_old_schedule_is_upgraded(
    lucy: Lucy, fake_slack: FakeSlack
):
    team = new_team()
    try:
        asked = await lucy.command(
            'schedule "every day at 9:00" summarise the news', team=team, channel=CHANNEL
        )
        created = await click_ephemeral(
            lucy,
            fake_slack,
            asked.json()["blocks"],
            "lucy_schedule_create",
            team=team,
            user="U0ALICE",
            channel=CHANNEL,
        )
        assert "Scheduled" in created["text"]
        row_id = await _row_id(lucy, team)
        schedule_id = f"lucy-schedule-{row_id}"
        assert await _action_priority(lucy, schedule_id) == (PriorityKey.BACKGROUND, team)

        await lucy.client.get_schedule_handle(schedule_id).update(_without_priority)
        assert await _action_priority(lucy, schedule_id) == (None, None)
        await lucy.client.execute_workflow(
            "LucyMaintenanceWorkflow",
            MaintenanceInput(),
            id=f"maintenance-{uuid.uuid4().hex[:8]}",
            task_queue=lucy.settings.temporal.temporal_task_queue,
        )
        assert await _action_priority(lucy, schedule_id) == (PriorityKey.BACKGROUND, team)

        await lucy.client.get_schedule_handle(schedule_id).trigger()
        runs = await eventually(lambda: _runs(lucy, row_id), "the schedule's run", timeout=30)
        info = (await lucy.client.get_workflow_handle(runs[0]).describe()).raw_description
        priority = info.workflow_execution_info.priority
        assert (priority.priority_key, priority.fairness_key) == (PriorityKey.BACKGROUND, team)
        await lucy.client.get_workflow_handle(runs[0]).result()
    finally:
        await forget(lucy.client, lucy.engine, team, "schedules")


async def _runs(lucy: Lucy, row_id: str) -> list[str]:
    query = f"LucySchedule = '{row_id}' AND WorkflowType = 'LucyTaskWorkflow'"
    return [w.id async for w in lucy.client.list_workflows(query)]
