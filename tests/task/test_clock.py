"""Lucy keeps working when the month turns, whatever maintenance did or did not do.

* A worker and an ingress that keep running while Temporal's clock moves four months ahead,
  with no maintenance at all: tasks complete and every cost and audit row is recorded once
  (in the DEFAULT partition when the month has none). Maintenance then puts the rows in their
  month and ``lucy db check`` is clean. Temporal's clock is moved by the time-skipping server.
* An ingress started on the last seconds of a month counts a request of the next month in the
  next month (nothing caches "the current month"). Python's clock is moved by time-machine.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import time_machine
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from app.devservers import LocalPostgres
from capabilities.proactive.contracts.maintenance import MaintenanceInput, MaintenanceReport
from lucy import migrate
from lucy.contracts.ids import MAINTENANCE_WORKFLOW_NAME, task_workflow_id
from lucy.db.partitions import add_months
from lucy.settings import Settings
from tests.conftest import Lucy, mention_event, new_team, running_lucy
from tests.fakes.slack import FakeSlack
from tests.fixtures.clock import FROZEN, month_start


async def _ask(lucy: Lucy, team: str, request: str) -> str:
    event = mention_event(team=team, text=request)
    assert (await lucy.post_event(event)).status_code == 200
    workflow_id = task_workflow_id(team, event["event"]["channel"], event["event"]["ts"])
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 60)
    assert (result if isinstance(result, dict) else result.__dict__)["status"] == "completed"
    return workflow_id


async def _rows(lucy: Lucy, workflow_id: str) -> dict[str, list[str]]:
    """Where each of the task's cost and audit rows lives (one entry per row)."""
    async with lucy.engine.connect() as conn:
        cost = await conn.execute(
            text(
                "SELECT c.tableoid::regclass::text FROM cost_log c JOIN tasks t ON t.id = c.task_id "
                "WHERE t.workflow_id = :wf"
            ),
            {"wf": workflow_id},
        )
        audit = await conn.execute(
            text("SELECT tableoid::regclass::text FROM audit_log WHERE workflow_id = :wf"),
            {"wf": workflow_id},
        )
        return {"cost_log": sorted(cost.scalars()), "audit_log": sorted(audit.scalars())}


async def _no_partition_for(admin: AsyncEngine, month: date) -> None:
    """The month the task will write in has no partition (another test may have made it, empty):
    its rows must go to the default partitions, as after months without maintenance."""
    async with admin.begin() as conn:
        for table in ("cost_log", "audit_log"):
            name = f"{table}_{month:%Y_%m}"
            if (await conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name})).scalar_one():
                held = (await conn.execute(text(f"SELECT count(*) FROM {name}"))).scalar_one()
                assert held == 0, f"{name} holds another test's rows"
                await conn.execute(text(f"DROP TABLE {name}"))


async def _llm_steps(lucy: Lucy, workflow_id: str) -> int:
    async with lucy.engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT count(*) FROM task_steps s JOIN tasks t ON t.id = s.task_id "
                    "WHERE t.workflow_id = :wf AND s.kind = 'llm_call'"
                ),
                {"wf": workflow_id},
            )
        ).scalar_one()


async def test_four_months_on_without_maintenance_nothing_is_lost_or_doubled(
    ts_env: WorkflowEnvironment,
    settings: Settings,
    engine: AsyncEngine,
    admin_engine: AsyncEngine,
    postgres: LocalPostgres,
):
    team = new_team()
    async with running_lucy(settings, ts_env.client, engine, admin_engine) as lucy:
        first = await _ask(lucy, team, "before the months pass")
        started = (await lucy.client.get_workflow_handle(first).describe()).start_time
        await ts_env.sleep(timedelta(days=123))  # Temporal's clock; no maintenance runs meanwhile
        await _no_partition_for(admin_engine, (await ts_env.get_current_time()).date().replace(day=1))
        later = await _ask(lucy, team, "four months later")
        later_start = (await lucy.client.get_workflow_handle(later).describe()).start_time
        assert later_start >= add_months_dt(started, 4)
        month = later_start.date().replace(day=1)

        rows = await _rows(lucy, later)
        calls = await _llm_steps(lucy, later)
        assert calls == 2 and len(rows["cost_log"]) == calls, "every model call is in cost_log, once"
        assert len(rows["audit_log"]) == 1, "the outcome is audited once"
        assert set(rows["cost_log"] + rows["audit_log"]) == {"cost_log_default", "audit_log_default"}

        # Maintenance (the workflow the schedule runs) puts every row in its month.
        report = await lucy.client.execute_workflow(
            MAINTENANCE_WORKFLOW_NAME,
            MaintenanceInput(),
            id=f"lucy-maintenance-test-{uuid.uuid4().hex[:8]}",
            task_queue=settings.temporal.temporal_task_queue,
            result_type=MaintenanceReport,
        )
        assert report.partitions.skipped is None
        assert report.partitions.drained.get("cost_log", 0) >= 2
        assert await _rows(lucy, later) == {
            "cost_log": [f"cost_log_{month:%Y_%m}"] * calls,
            "audit_log": [f"audit_log_{month:%Y_%m}"],
        }
        assert len((await _rows(lucy, first))["audit_log"]) == 1
    await asyncio.to_thread(migrate.check, postgres.url)
    assert await asyncio.to_thread(migrate.rows_in_default_partitions, postgres.url) == {}


def add_months_dt(at: datetime, n: int) -> datetime:
    """The first instant of the month ``n`` months after ``at``'s."""
    return month_start(add_months(at.date(), n))


async def test_an_ingress_started_in_one_month_counts_the_next_month_in_the_next(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    engine: AsyncEngine,
    admin_engine: AsyncEngine,
    fake_slack: FakeSlack,
):
    team = new_team()
    last_seconds = month_start(add_months(FROZEN.date(), 1)) - timedelta(seconds=3)
    with time_machine.travel(last_seconds, tick=True) as clock:
        async with running_lucy(settings, temporal_env.client, engine, admin_engine) as lucy:
            await _ask(lucy, team, "on the last day of the month")
            clock.move_to(last_seconds + timedelta(days=1))  # the next month, same processes
            await _ask(lucy, team, "on the first day of the next")
            async with lucy.engine.connect() as conn:
                usage = (
                    await conn.execute(
                        text(
                            "SELECT usage_month, current_month_actions FROM workspaces WHERE slack_team_id = :t"
                        ),
                        {"t": team},
                    )
                ).one()
            assert tuple(usage) == (add_months(FROZEN.date().replace(day=1), 1), 1)
            opened = {
                "team_id": team,
                "api_app_id": "A0LUCY",
                "type": "event_callback",
                "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
                "event_time": int(datetime.now(UTC).timestamp()),
                "event": {"type": "app_home_opened", "user": "U0ALICE", "channel": "D0ALICE", "tab": "home"},
            }
            assert (await lucy.post_event(opened)).status_code == 200
    assert "This month: 1 of 1000 tasks" in str(fake_slack.views["U0ALICE"])
