"""Schedules end to end: ``/lucy schedule`` -> confirmation -> Create -> a Temporal Schedule whose
fires are Lucy tasks in the channel; managing, pausing after failures, quota notices, missed runs.

Real Temporal dev server (the time-skipping server does not run schedules: fires come from
``trigger``) and real PostgreSQL; Slack and the LLM are the fake servers.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleSpec,
)
from temporalio.testing import WorkflowEnvironment

from app.devservers import LocalTemporal, free_port
from capabilities.proactive.contracts.maintenance import MaintenanceInput
from lucy.contracts.ids import SEARCH_ATTRIBUTES
from lucy.settings import Settings
from lucy.slack.limits import block_problems
from lucy.slack.text import escape_mrkdwn
from tests.conftest import Lucy, eventually, new_team, record_history, running_lucy
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack
from tests.proactive.helpers import click_ephemeral, forget

CHANNEL = "C0SCHED"


@pytest.fixture
async def team(lucy: Lucy) -> AsyncIterator[str]:
    """A fresh workspace whose schedules are removed afterwards (the servers are shared)."""
    team = new_team()
    yield team
    await _forget(lucy.client, lucy.engine, team)


async def _forget(client: Client, admin: AsyncEngine, team: str) -> None:
    await forget(client, admin, team, "schedules")


async def _confirmation(
    lucy: Lucy, team: str, args: str, *, user: str = "U0ALICE", channel: str = CHANNEL
) -> dict[str, Any]:
    response = await lucy.command(f"schedule {args}", team=team, user=user, channel=channel)
    assert response.status_code == 200
    return response.json()


async def _click(
    lucy: Lucy,
    slack: FakeSlack,
    blocks: list[dict[str, Any]],
    action: str,
    *,
    team: str,
    user: str = "U0ALICE",
    value: str | None = None,
) -> dict[str, Any]:
    return await click_ephemeral(
        lucy, slack, blocks, f"lucy_schedule_{action}", team=team, user=user, channel=CHANNEL, value=value
    )


async def _schedule_rows(lucy: Lucy, team: str) -> list[Any]:
    async with lucy.engine.connect() as conn:
        return list(
            await conn.execute(
                text(
                    "SELECT s.* FROM schedules s JOIN workspaces w ON w.id = s.workspace_id "
                    "WHERE w.slack_team_id = :team ORDER BY s.created_at"
                ),
                {"team": team},
            )
        )


async def _describe(client: Client, row_id: Any) -> ScheduleDescription:
    return await client.get_schedule_handle(f"lucy-schedule-{row_id}").describe()


async def _create(lucy: Lucy, slack: FakeSlack, team: str, args: str, *, user: str = "U0ALICE") -> Any:
    confirmation = await _confirmation(lucy, team, args, user=user)
    answer = await _click(lucy, slack, confirmation["blocks"], "create", team=team, user=user)
    assert answer["text"].startswith(":white_check_mark: Scheduled"), answer
    (row,) = [r for r in await _schedule_rows(lucy, team) if r.deleted_at is None][-1:]
    return row


async def test_a_confirmed_schedule_fires_a_task_that_answers_in_its_own_thread(
    lucy: Lucy, team: str, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    confirmation = await _confirmation(lucy, team, '"every weekday at 9:00" summarise <!channel> news')
    assert confirmation["response_type"] == "ephemeral"
    shown = json.dumps(confirmation["blocks"])
    assert (
        "every weekday (Monday to Friday) at 09:00" in shown and "Europe/Paris" in shown
    )  # the caller's zone
    assert shown.count("<!date^") == 3, "the next three runs"
    request_shown = confirmation["blocks"][0]["text"]["text"]
    assert "&lt;!channel&gt;" in request_shown and "<!channel>" not in request_shown
    assert await _schedule_rows(lucy, team) == [], "nothing exists before Create"

    answer = await _click(lucy, fake_slack, confirmation["blocks"], "create", team=team)
    assert answer["replace_original"] is True and "Scheduled" in answer["text"]
    again = await _click(lucy, fake_slack, confirmation["blocks"], "create", team=team)  # a double click
    assert "Scheduled" in again["text"]
    (row,) = await _schedule_rows(lucy, team)
    assert (row.cron_expression, row.timezone, row.is_active) == ("0 9 * * 1-5", "Europe/Paris", True)
    desc = await _describe(lucy.client, row.id)
    assert desc.schedule.spec.time_zone_name == "Europe/Paris"
    assert desc.info.next_action_times, "Temporal knows when it runs next"
    assert row.next_run_at is not None

    fake_llm.then(content="Here is the news summary.")
    await lucy.client.get_schedule_handle(row.temporal_schedule_id).trigger()
    posts = await eventually(
        lambda: (p := fake_slack.posted(CHANNEL)) and len(p) >= 2 and p, "the run's message and answer"
    )
    root, answer_post = posts[0], posts[-1]
    assert root["text"].startswith(":alarm_clock: Scheduled") and "thread_ts" not in root
    assert answer_post["thread_ts"] == root["ts"] and "news summary" in answer_post["text"]
    async with lucy.engine.connect() as conn:
        task = (
            await conn.execute(
                text(
                    "SELECT workflow_id, source, status, slack_thread_ts FROM tasks WHERE workflow_id LIKE :p"
                ),
                {"p": f"lucy-task-{team}-{CHANNEL}-sched-{row.id}-%"},
            )
        ).one()
    assert (task.source, task.slack_thread_ts) == ("schedule", root["ts"])  # replies there reach it
    result = await lucy.client.get_workflow_handle(task.workflow_id).result()
    assert result["status"] == "completed"
    described = await lucy.client.get_workflow_handle(task.workflow_id).describe()
    attributes = {p.key.name: p.value for p in described.typed_search_attributes}
    assert attributes["LucySchedule"] == str(row.id) and attributes["LucySource"] == "schedule"
    assert (await _schedule_rows(lucy, team))[0].last_outcome == "completed"
    await record_history(lucy, task.workflow_id, "lucy_task_scheduled_run")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ('"every 5 minutes" check the site', "at most every 15 minute"),
        ('"whenever you like" check the site', "every weekday at 8:30"),  # with examples
        ("every day check the site", "/lucy schedule"),  # no quotes: usage
    ],
)
async def test_a_when_lucy_cannot_read_is_a_clear_error_and_creates_nothing(
    lucy: Lucy, team: str, args: str, says: str
):
    answer = await _confirmation(lucy, team, args)
    assert says in answer["text"] and "blocks" not in answer
    assert await _schedule_rows(lucy, team) == []


@pytest.mark.parametrize("heavy", ["&" * 1_400, "<>" * 700, "a & <b> " * 175])
async def test_a_request_heavy_in_escapes_is_confirmed_within_slacks_limits_and_in_full(
    lucy: Lucy, team: str, fake_slack: FakeSlack, heavy: str
):
    answer = await _confirmation(lucy, team, f'"every day at 9:00" {heavy}')
    assert block_problems(answer["blocks"]) == []
    quoted = "".join(b["text"]["text"] for b in answer["blocks"] if "text" in b)
    assert "".join(escape_mrkdwn(heavy).split()) in "".join(quoted.split())  # shown in full
    created = await _click(lucy, fake_slack, answer["blocks"], "create", team=team)
    assert created["text"].startswith(":white_check_mark: Scheduled")


async def test_only_the_owner_or_an_admin_changes_a_schedule_and_every_change_is_audited(
    lucy: Lucy, team: str, fake_slack: FakeSlack
):
    row = await _create(lucy, fake_slack, team, '"every day at 18:00" post the standup notes')
    listed = (await lucy.command("schedules", team=team)).json()
    assert "post the standup notes" in json.dumps(listed["blocks"])
    assert "post the standup notes" not in json.dumps(
        (await lucy.command("schedules", team=team, user="U0BOB")).json()
    )

    refused = await _click(
        lucy, fake_slack, listed["blocks"], "delete", team=team, user="U0BOB", value=str(row.id)
    )
    assert "Only <@U0ALICE>" in refused["text"]
    assert (await _describe(lucy.client, row.id)).schedule.state.paused is False

    paused = await _click(
        lucy, fake_slack, listed["blocks"], "pause", team=team, user="UADMIN1", value=str(row.id)
    )
    assert paused["text"].startswith("Paused")
    assert (await _describe(lucy.client, row.id)).schedule.state.paused is True
    assert (await _schedule_rows(lucy, team))[0].is_active is False
    await _click(lucy, fake_slack, listed["blocks"], "delete", team=team, value=str(row.id))
    assert (await _schedule_rows(lucy, team))[0].deleted_at is not None
    with pytest.raises(Exception, match=r"not found|NotFound"):
        await _describe(lucy.client, row.id)
    async with lucy.engine.connect() as conn:
        actions = (
            await conn.execute(
                text("SELECT action, actor_id FROM audit_log WHERE entity_id = :id ORDER BY created_at"),
                {"id": str(row.id)},
            )
        ).all()
    assert [tuple(a) for a in actions] == [
        ("schedule.created", "U0ALICE"),
        ("schedule.pause", "UADMIN1"),
        ("schedule.delete", "U0ALICE"),
    ]


async def test_three_failed_runs_pause_the_schedule_and_tell_the_owner_once(
    lucy: Lucy, team: str, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    row = await _create(lucy, fake_slack, team, '"every day at 7:00" check the build')
    handle = lucy.client.get_schedule_handle(row.temporal_schedule_id)
    for run in range(1, 4):
        fake_llm.then(status=401)  # the provider refuses for good: the run fails
        await handle.trigger()
        await _until(lambda run=run: _failures_are(lucy, team, run), f"failed run {run} counted")
        await asyncio.sleep(1.05)  # Temporal names a fire by its second: one fire per second
    rows = await _schedule_rows(lucy, team)
    assert rows[0].is_active is False and "3 failed runs" in rows[0].paused_reason
    assert (await handle.describe()).schedule.state.paused is True
    dms = [p for p in fake_slack.posted("U0ALICE") if "I paused your schedule" in p["text"]]
    assert len(dms) == 1


def _no_run_open(handle: ScheduleHandle) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not (await handle.describe()).info.running_actions

    return check


async def _last_outcome_is(lucy: Lucy, team: str, outcome: str) -> bool:
    rows = await _schedule_rows(lucy, team)
    return bool(rows) and rows[-1].last_outcome == outcome


async def _failures_are(lucy: Lucy, team: str, count: int) -> bool:
    (row,) = await _schedule_rows(lucy, team)
    return row.consecutive_failures == count and row.last_outcome == "failed"


async def _until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
    return value


async def _workspace_sql(lucy_engine: AsyncEngine, sql: str, team: str) -> None:
    async with lucy_engine.begin() as conn:
        await conn.execute(text(sql), {"team": team})


async def test_a_schedule_at_its_quota_says_so_once_not_at_every_fire(
    lucy: Lucy, team: str, fake_slack: FakeSlack
):
    row = await _create(lucy, fake_slack, team, '"every day at 8:00" post the metrics')
    await _workspace_sql(
        lucy.engine,
        "UPDATE workspaces SET max_monthly_actions = 0 WHERE slack_team_id = :team",
        team,
    )
    handle = lucy.client.get_schedule_handle(row.temporal_schedule_id)
    for _ in range(2):
        await handle.trigger()
        await asyncio.sleep(1.05)  # one fire per second
    refused = await _until(lambda: _refused_runs(lucy, team), "two refused runs")
    assert len(refused) == 2
    await asyncio.sleep(0.5)
    notices = [p for p in fake_slack.posted(CHANNEL) if "used all" in p["text"]]
    assert len(notices) == 1 and "post the metrics" in notices[0]["text"]
    assert not [p for p in fake_slack.posted(CHANNEL) if p["text"].startswith(":alarm_clock:")], "nothing ran"
    await record_history(lucy, refused[0].workflow_id, "lucy_task_scheduled_refused")


async def test_a_schedule_over_its_budget_is_refused_before_any_model_call_and_says_so_once(
    lucy: Lucy, team: str, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    row = await _create(lucy, fake_slack, team, '"every day at 8:00" post the costs')
    ws = "SELECT id FROM workspaces WHERE slack_team_id = :team"
    await _workspace_sql(
        lucy.engine,
        f"INSERT INTO budgets (workspace_id, scope_key, period, limit_usd) SELECT ({ws}), 'workspace', 'month', 1",
        team,
    )
    await _workspace_sql(  # this month's spend has reached it (the month of the database's clock)
        lucy.engine,
        "INSERT INTO budget_spend (workspace_id, scope_key, period, period_start, settled_usd) "
        f"SELECT ({ws}), 'workspace', 'month', date_trunc('month', now() AT TIME ZONE 'UTC')::date, 1",
        team,
    )
    calls = len(fake_llm.requests)
    handle = lucy.client.get_schedule_handle(row.temporal_schedule_id)
    for _ in range(2):
        await handle.trigger()
        await asyncio.sleep(1.05)  # one fire per second
    refused = await _until(lambda: _refused_runs(lucy, team), "two refused runs")
    assert len(refused) == 2
    await asyncio.sleep(0.5)
    notices = [p for p in fake_slack.posted(CHANNEL) if "budget" in p["text"]]
    assert len(notices) == 1 and "monthly Lucy budget of $1.00 is used up" in notices[0]["text"]
    assert len(fake_llm.requests) == calls, "no model call"


async def _refused_runs(lucy: Lucy, team: str) -> list[Any] | None:
    async with lucy.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT workflow_id FROM tasks WHERE workflow_id LIKE :p AND error_type = 'Refused'"),
                {"p": f"lucy-task-{team}-%"},
            )
        ).all()
    return rows if len(rows) >= 2 else None


async def test_reconciliation_restores_a_lost_schedule_and_removes_strays(
    lucy: Lucy, team: str, fake_slack: FakeSlack
):
    row = await _create(lucy, fake_slack, team, '"every monday at 10:00" plan the week')
    gone = await _create(lucy, fake_slack, team, '"every friday at 16:00" wrap up the week')
    await lucy.client.get_schedule_handle(row.temporal_schedule_id).delete()  # a cluster that lost it
    await _workspace_sql(  # a row removed while its Temporal half stayed
        lucy.engine, f"UPDATE schedules SET deleted_at = now() WHERE id = '{gone.id}' AND :team <> ''", team
    )
    stray = f"lucy-schedule-{uuid.uuid4()}"  # looks like Lucy's, has no row
    await lucy.client.create_schedule(
        stray,
        Schedule(
            action=ScheduleActionStartWorkflow("LucyTaskWorkflow", id="stray", task_queue="nowhere"),
            spec=ScheduleSpec(cron_expressions=["0 0 1 1 *"]),
        ),
    )

    report = await lucy.client.execute_workflow(
        "LucyMaintenanceWorkflow",
        MaintenanceInput(),
        id=f"maintenance-{uuid.uuid4().hex[:8]}",
        task_queue=lucy.settings.temporal.temporal_task_queue,
    )
    assert row.temporal_schedule_id in await _lucy_ids(lucy.client)
    restored = (await _describe(lucy.client, row.id)).schedule
    assert restored.spec.calendars and restored.spec.time_zone_name == "Europe/Paris"  # cron, as calendars
    assert restored.action.args and restored.action.id.endswith(f"-sched-{row.id}")
    assert {gone.temporal_schedule_id, stray} & await _lucy_ids(lucy.client) == set()
    assert report["schedules"]["recreated"] >= 1 and report["schedules"]["deleted"] >= 2


async def _lucy_ids(client: Client) -> set[str]:
    return {s.id async for s in await client.list_schedules() if s.id.startswith("lucy-schedule-")}


async def test_a_fire_while_workers_were_down_runs_within_the_catch_up_window_and_is_reported_beyond_it(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    engine: AsyncEngine,
    admin_engine: AsyncEngine,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
):
    team, client = new_team(), temporal_env.client
    try:
        async with running_lucy(settings, client, engine, admin_engine) as lucy:
            row = await _create(lucy, fake_slack, team, '"every day at 6:00" water the plants')
        handle = client.get_schedule_handle(row.temporal_schedule_id)
        await handle.trigger()  # no worker: the run waits for one
        await asyncio.sleep(1.5)
        fake_llm.then(content="Plants watered.")
        async with running_lucy(settings, client, engine, admin_engine) as lucy:
            await _until(lambda: _last_outcome_is(lucy, team, "completed"), "the run, recorded")
            # the run closes after its record is written; a run still open when the workers stop
            # would make the schedule skip the next trigger (overlap: skip)
            await _until(_no_run_open(handle), "the run, closed")
        assert any("Plants watered" in p["text"] for p in fake_slack.posted(CHANNEL))

        await _workspace_sql(  # a short catch-up window, then a longer outage
            admin_engine,
            "UPDATE schedules SET config = config || '{\"catchup_window_seconds\": 2}' "
            f"WHERE id = '{row.id}' AND :team <> ''",
            team,
        )
        await handle.trigger()
        await asyncio.sleep(3.5)
        async with running_lucy(settings, client, engine, admin_engine):
            missed = await eventually(
                lambda: [p for p in fake_slack.posted(CHANNEL) if "I missed the run" in p["text"]],
                "the notice",
            )
        assert "water the plants" in missed[0]["text"] and "Run now" in missed[0]["text"]
        assert len([p for p in fake_slack.posted(CHANNEL) if "Plants watered" in p["text"]]) == 1, "not run"
        async with admin_engine.connect() as conn:
            kinds = (
                await conn.execute(
                    text("SELECT error_type FROM tasks WHERE workflow_id LIKE :p ORDER BY created_at"),
                    {"p": f"lucy-task-{team}-%"},
                )
            ).scalars()
            assert list(kinds) == [None, "Missed"]
    finally:
        await _forget(client, admin_engine, team)


async def test_a_fire_while_the_last_run_still_works_is_skipped(
    lucy: Lucy, team: str, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    row = await _create(lucy, fake_slack, team, '"every day at 5:00" slow report')
    fake_llm.then(content="Slow report done.", delay=3)
    handle = lucy.client.get_schedule_handle(row.temporal_schedule_id)
    await handle.trigger()
    await asyncio.sleep(1.05)
    await handle.trigger()  # the first run is still working: skipped (the default overlap policy)
    await eventually(
        lambda: any("Slow report done" in p["text"] for p in fake_slack.posted(CHANNEL)), "the run"
    )
    info = (await handle.describe()).info
    assert (info.num_actions, info.num_actions_skipped_overlap) == (1, 1)


async def test_schedules_survive_a_temporal_restart(
    settings: Settings,
    engine: AsyncEngine,
    admin_engine: AsyncEngine,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
    tmp_path: Path,
):
    team = new_team()
    server = LocalTemporal(
        tmp_path / "temporal.db",
        port=free_port(),
        ui_port=free_port(),
        namespace="default",
        search_attributes=[k.name for k in SEARCH_ATTRIBUTES],
    )
    server.start()
    try:
        await server.wait_ready()
        client = await Client.connect(server.address)
        async with running_lucy(settings, client, engine, admin_engine) as lucy:
            row = await _create(lucy, fake_slack, team, '"every 2 hours" check the queue')
        server.stop()  # the whole cluster goes down...
        server.start()  # ...and comes back on its database file
        await server.wait_ready()
        client = await Client.connect(server.address)
        desc = await _describe(client, row.id)
        assert desc.schedule.spec.intervals[0].every.total_seconds() == 7200 and desc.info.next_action_times
        fake_llm.then(content="Queue is empty.")
        async with running_lucy(settings, client, engine, admin_engine):
            await client.get_schedule_handle(row.temporal_schedule_id).trigger()
            await eventually(
                lambda: any("Queue is empty" in p["text"] for p in fake_slack.posted(CHANNEL)), "the run"
            )
        await _forget(client, admin_engine, team)
    finally:
        server.stop()
