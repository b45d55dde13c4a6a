"""`/lucy` through the real ingress, and the protection in front of task starts."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import time_machine
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from lucy.contracts.ids import task_workflow_id
from lucy.db.models import Task
from lucy.settings import Settings, load_settings
from tests.clock import FROZEN as MID_MONTH
from tests.conftest import Lucy, mention_event, new_team, running_lucy
from tests.fakes.slack import FakeSlack


async def _workflows(lucy: Lucy, query: str) -> list:
    return [w async for w in lucy.client.list_workflows(query)]


async def test_help_and_unknown_are_never_errors(lucy: Lucy):
    team = new_team()
    for words in ("", "help", "   "):
        r = await lucy.command(words, team=team)
        assert r.status_code == 200
        assert r.json()["response_type"] == "ephemeral"
        assert "/lucy <request>" in r.json()["text"]


async def test_request_runs_a_task_answered_in_the_channel(lucy: Lucy, fake_slack: FakeSlack):
    team = new_team()
    r = await lucy.command("what is the tallest mountain?", team=team)
    assert r.status_code == 200
    body = r.json()
    assert body["response_type"] == "ephemeral" and body["text"].startswith("On it")
    workflow_id = body["text"].split("`")[1]
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 30)
    assert result["status"] == "completed"
    posts = fake_slack.posted("C0GENERAL")
    assert [p["text"] for p in posts] == ["You asked: what is the tallest mountain?"]
    assert "thread_ts" not in posts[0]

    tasks = (await lucy.command("tasks", team=team)).json()["text"]
    assert workflow_id in tasks and "completed" in tasks
    status = (await lucy.command("status", team=team)).json()["text"]
    assert workflow_id in status and "completed" in status
    foreign = (await lucy.command("status lucy-task-TOTHER-C1-1.1", team=team)).json()["text"]
    assert "can't find" in foreign
    assert "Nothing is waiting" in (await lucy.command("approvals", team=team)).json()["text"]


async def test_user_rate_limit_refuses_politely_and_keeps_the_record(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    engine: AsyncEngine,
    admin_engine: AsyncEngine,
    fake_slack: FakeSlack,
):
    limited = load_settings(**{**_flat(settings), "rate_limit_user_per_minute": 2})
    async with running_lucy(limited, temporal_env.client, engine, admin_engine) as lucy:
        team = new_team()
        first = mention_event(team=team, text="one")
        # A redelivered event is not counted twice.
        for _ in range(3):
            assert (await lucy.post_event(first)).status_code == 200
        assert (await lucy.post_event(mention_event(team=team, text="two"))).status_code == 200
        third = mention_event(team=team, text="three")
        assert (await lucy.post_event(third)).status_code == 200
        assert (await lucy.post_event(third, headers={"X-Slack-Retry-Num": "1"})).status_code == 200

        assert len(fake_slack.ephemerals) == 1, "one refusal, even with the redelivery"
        note = fake_slack.ephemerals[0]
        assert note["user"] == "U0ALICE" and "faster than I can take them" in note["text"]
        ev = third["event"]
        refused_id = task_workflow_id(team, ev["channel"], ev["ts"])
        assert await _workflows(lucy, f"WorkflowId = '{refused_id}'") == []
        async with lucy.engine.connect() as conn:
            row = (await conn.execute(select(Task).where(Task.workflow_id == refused_id))).one()
            assert (row.status, row.error_type, row.request_text) == ("cancelled", "Refused", "three")
        await fake_slack.wait_for_posts(2)


async def test_monthly_quota_refuses_with_a_clear_message(lucy: Lucy, fake_slack: FakeSlack):
    team = new_team()
    # Both requests fall in one month whatever the day the suite runs: the ingress's clock is
    # frozen mid-month (Slack's signatures are made with the same clock).
    with time_machine.travel(MID_MONTH, tick=True):
        assert (await lucy.post_event(mention_event(team=team, text="first"))).status_code == 200
        async with lucy.engine.begin() as conn:
            await conn.execute(
                text("UPDATE workspaces SET max_monthly_actions = 1 WHERE slack_team_id = :t"), {"t": team}
            )
        r = await lucy.command("second request", team=team)
    assert r.status_code == 200
    assert "used all 1 of this month's Lucy tasks" in r.json()["text"]


def _flat(settings: Settings) -> dict:
    out = {}
    for group in settings.model_dump().values():
        out.update(group)
    return {k: (v.get_secret_value() if hasattr(v, "get_secret_value") else v) for k, v in out.items()}


async def test_app_home_shows_my_tasks_and_usage(lucy: Lucy, fake_slack: FakeSlack):
    team = new_team()
    event = mention_event(team=team, text="home tab please")
    assert (await lucy.post_event(event)).status_code == 200
    claimed_in = datetime.now(UTC).date().replace(day=1)
    ev = event["event"]
    await asyncio.wait_for(
        lucy.client.get_workflow_handle(task_workflow_id(team, ev["channel"], ev["ts"])).result(), 30
    )
    viewed_at = datetime.now(UTC)
    opened = {
        "team_id": team,
        "api_app_id": "A0LUCY",
        "type": "event_callback",
        "event_id": "EvHOME0001",
        "event_time": 1,
        "event": {"type": "app_home_opened", "user": "U0ALICE", "channel": "D0ALICE", "tab": "home"},
    }
    with time_machine.travel(viewed_at, tick=False):  # App Home reads "this month" at one instant
        assert (await lucy.post_event(opened)).status_code == 200
    view = fake_slack.views["U0ALICE"]
    shown = json.dumps(view)
    assert view["type"] == "home"
    assert "home tab please" in shown and "completed" in shown
    assert "Nothing is waiting for you" in shown
    # "This month" is the viewer's month. The suite may run across midnight at the end of a
    # month: then the task counts in the month it was asked in, and its two model calls in the
    # month(s) the workflow made them in.
    viewed_in = viewed_at.date().replace(day=1)
    async with lucy.engine.connect() as conn:
        months = (
            (
                await conn.execute(
                    text(
                        "SELECT (date_trunc('month', c.created_at AT TIME ZONE 'UTC'))::date FROM cost_log c "
                        "JOIN workspaces w ON w.id = c.workspace_id WHERE w.slack_team_id = :t"
                    ),
                    {"t": team},
                )
            )
            .scalars()
            .all()
        )
    assert len(months) == 2
    tasks = 1 if claimed_in == viewed_in else 0
    assert f"This month: {tasks} of 1000 tasks" in shown
    assert f"{months.count(viewed_in)} model calls" in shown


async def test_profiles_are_cached_and_deactivated_users_refused(lucy: Lucy, fake_slack: FakeSlack):
    team = new_team()
    responses = await asyncio.gather(
        *(lucy.post_event(mention_event(team=team, user="UADMIN1", text=f"burst {i}")) for i in range(5))
    )
    assert {r.status_code for r in responses} == {200}
    assert len([c for c in fake_slack.calls_to("users.info") if c.params.get("user") == "UADMIN1"]) == 1
    await fake_slack.wait_for_posts(5)
    assert len([c for c in fake_slack.calls_to("users.info") if c.params.get("user") == "UADMIN1"]) == 1
    async with lucy.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT u.role, u.display_name, u.timezone FROM users u JOIN workspaces w ON w.id = u.workspace_id "
                    "WHERE w.slack_team_id = :t AND u.slack_user_id = 'UADMIN1'"
                ),
                {"t": team},
            )
        ).one()
        assert tuple(row) == ("admin", "name-uadmin1", "Europe/Paris")

    gone = mention_event(team=team, user="UGONE1", text="let me in")
    assert (await lucy.post_event(gone)).status_code == 200
    assert [e["text"] for e in fake_slack.ephemerals if e["user"] == "UGONE1"] == [
        "Sorry, I can only work for active members of this workspace."
    ]
    ev = gone["event"]
    assert await _workflows(lucy, f"WorkflowId = '{task_workflow_id(team, ev['channel'], ev['ts'])}'") == []
    r = await lucy.command("do something", team=team, user="UGONE1")
    assert "active members" in r.json()["text"]


async def test_cancel_stops_a_running_task_and_keeps_its_record(lucy: Lucy, fake_slack: FakeSlack, fake_llm):
    from temporalio.client import WorkflowExecutionStatus

    from tests.conftest import record_history

    team = new_team()
    fake_llm.then(content="too late", delay=5.0)
    event = mention_event(team=team, text="a long job")
    assert (await lucy.post_event(event)).status_code == 200
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    handle = lucy.client.get_workflow_handle(workflow_id)
    for _ in range(100):  # wait until the model call is under way
        if fake_llm.task_requests:
            break
        await asyncio.sleep(0.05)
    # Someone else may not cancel it...
    other = (await lucy.command(f"cancel {workflow_id}", team=team, user="U0MALLORY")).json()["text"]
    assert "Only the person who asked" in other
    # ...the requester may.
    reply = (await lucy.command("cancel", team=team)).json()["text"]
    assert reply.startswith("Cancelling") and workflow_id in reply
    # The same rule and the same path as the Cancel button: the task's own cancel update.
    result = await asyncio.wait_for(handle.result(), 30)
    assert result["status"] == "cancelled"
    desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.COMPLETED
    assert {p.key.name: p.value for p in desc.typed_search_attributes}["LucyStatus"] == "cancelled"
    posts = fake_slack.posted(ev["channel"])
    assert [p["text"] for p in posts] == ["Cancelled by <@U0ALICE>: I stopped working on this, as requested."]
    assert posts[0]["thread_ts"] == ev["ts"]
    async with lucy.engine.connect() as conn:
        row = (await conn.execute(select(Task).where(Task.workflow_id == workflow_id))).one()
        assert (row.status, row.error_type) == ("cancelled", "Cancelled")
    assert "is not running" in (await lucy.command(f"cancel {workflow_id}", team=team)).json()["text"]
    await record_history(lucy, workflow_id, "lucy_task_cancelled_by_command")


async def test_assistant_thread_prompts_and_working_status(lucy: Lucy, fake_slack: FakeSlack):
    from tests.conftest import dm_event

    team = new_team()
    started = {
        "team_id": team,
        "api_app_id": "A0LUCY",
        "type": "event_callback",
        "event_id": "EvASSIST01",
        "event_time": 1,
        "event": {
            "type": "assistant_thread_started",
            "assistant_thread": {
                "user_id": "U0ALICE",
                "channel_id": "D0ALICE",
                "thread_ts": "1795300000.000100",
            },
        },
    }
    assert (await lucy.post_event(started)).status_code == 200
    (prompts,) = fake_slack.calls_to("assistant.threads.setSuggestedPrompts")
    assert prompts.params["channel_id"] == "D0ALICE" and prompts.params["thread_ts"] == "1795300000.000100"

    message = dm_event(team=team, text="what can you do?", thread_ts="1795300000.000100")
    assert (await lucy.post_event(message)).status_code == 200
    status = fake_slack.calls_to("assistant.threads.setStatus")[0]  # the task then sets its own
    assert status.params["status"] == "is working on it…"
    posts = await fake_slack.wait_for_posts(1)
    assert posts[0]["thread_ts"] == "1795300000.000100"
