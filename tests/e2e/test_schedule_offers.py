"""The other ways to a schedule: the ``/lucy schedule`` modal, the agent's ``schedule_task`` and
``create_monitor`` tools (they only offer: a click creates), and ``/lucy schedule backfill``.

Real Temporal dev server and PostgreSQL; Slack and the LLM are the fake servers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from lucy.contracts.ids import task_workflow_id
from tests.conftest import Lucy, eventually, mention_event, new_team
from tests.e2e.test_monitors import _forget as forget_monitors
from tests.e2e.test_schedules import CHANNEL, _click, _create, _schedule_rows
from tests.e2e.test_schedules import _forget as forget_schedules
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack


@pytest.fixture
async def team(lucy: Lucy) -> AsyncIterator[str]:
    """A fresh workspace whose schedules and monitors are removed afterwards."""
    team = new_team()
    yield team
    await forget_schedules(lucy.client, lucy.engine, team)
    await forget_monitors(lucy.client, lucy.engine, team)


def _submission(
    modal: dict[str, Any], *, team: str, user: str, what: str, when: str, where: str
) -> dict[str, Any]:
    """A ``view_submission`` payload for the schedule modal, as Slack sends it."""
    return {
        "type": "view_submission",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": "A0LUCY",
        "token": "legacy",
        "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:8]}",
        "view": {
            **modal,
            "id": "VMODAL1",
            "team_id": team,
            "state": {
                "values": {
                    "what": {"value": {"type": "plain_text_input", "value": what}},
                    "when": {"value": {"type": "plain_text_input", "value": when}},
                    "where": {"value": {"type": "conversations_select", "selected_conversation": where}},
                }
            },
        },
    }


async def test_the_schedule_modal_asks_what_when_where_and_then_confirms_in_the_channel(
    lucy: Lucy, team: str, fake_slack: FakeSlack
):
    answer = await lucy.command("schedule", team=team, channel=CHANNEL)
    assert answer.status_code == 200
    opened = await eventually(lambda: fake_slack.modals, "the modal")
    modal = opened[-1]["view"]
    assert [b["block_id"] for b in modal["blocks"]] == ["what", "when", "where"]

    bad = _submission(
        modal, team=team, user="U0ALICE", what="post the metrics", when="now and then", where=CHANNEL
    )
    response = await lucy.post_form({"payload": json.dumps(bad)})
    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors" and "every weekday at 8:30" in body["errors"]["when"]
    assert not fake_slack.ephemerals and await _schedule_rows(lucy, team) == []

    good = _submission(
        modal, team=team, user="U0ALICE", what="post the metrics", when="every weekday at 9:00", where=CHANNEL
    )
    assert (await lucy.post_form({"payload": json.dumps(good)})).status_code == 200
    (offered,) = await eventually(lambda: fake_slack.ephemerals, "the confirmation")
    assert (offered["channel"], offered["user"]) == (CHANNEL, "U0ALICE")
    assert "post the metrics" in json.dumps(offered["blocks"]) and await _schedule_rows(lucy, team) == []
    created = await _click(lucy, fake_slack, offered["blocks"], "create", team=team)
    assert created["text"].startswith(":white_check_mark: Scheduled")
    (row,) = await _schedule_rows(lucy, team)
    assert (row.intent_template, row.cron_expression, row.timezone) == (
        "post the metrics",
        "0 9 * * 1-5",
        "Europe/Paris",
    )


async def test_the_agent_offers_a_schedule_and_a_monitor_and_only_a_click_creates_them(
    lucy: Lucy, team: str, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    fake_llm.then(
        tool_calls=[
            (
                "schedule_task",
                '{"when": "every monday at 10:00", "request": "post a summary of this channel"}',
            ),
            (
                "create_monitor",
                '{"every": "every hour", "condition": "health https://api.example.com/health"}',
            ),
        ]
    )
    fake_llm.then(content="I have put both up for you to confirm.")
    event = mention_event(
        team=team, channel=CHANNEL, text="every Monday at 10 summarise this channel, and watch the API"
    )
    ev = event["event"]
    assert (await lucy.post_event(event)).status_code == 200
    result = await lucy.client.get_workflow_handle(task_workflow_id(team, CHANNEL, ev["ts"])).result()
    assert result["status"] == "completed"
    offers = [e for e in fake_slack.ephemerals if e["user"] == "U0ALICE"]
    assert [o["thread_ts"] for o in offers] == [ev["ts"], ev["ts"]]
    tool_results = [m for m in fake_llm.task_requests[-1]["messages"] if m["role"] == "tool"]
    assert all("does NOT exist yet" in m["content"] for m in tool_results)
    assert await _schedule_rows(lucy, team) == [], "the model created nothing"

    for offer, prefix in zip(offers, ("lucy_schedule_create", "lucy_monitor_create"), strict=True):
        name = uuid.uuid4().hex[:8]
        response = await lucy.click(
            {"ts": "1", "blocks": offer["blocks"]},
            prefix,
            team=team,
            user="U0ALICE",
            channel=CHANNEL,
            ephemeral=True,
            response_url=fake_slack.response_url(name),
        )
        assert response.status_code == 200
        await eventually(lambda n=name: [r for r in fake_slack.responses if r["name"] == n], "created")
    (row,) = await _schedule_rows(lucy, team)
    assert (row.cron_expression, row.intent_template) == ("0 10 * * 1", "post a summary of this channel")
    async with lucy.engine.connect() as conn:
        kinds = (
            (
                await conn.execute(
                    text(
                        "SELECT h.condition_type FROM monitors h JOIN workspaces w ON w.id = h.workspace_id "
                        "WHERE w.slack_team_id = :team"
                    ),
                    {"team": team},
                )
            )
            .scalars()
            .all()
        )
    assert kinds == ["api_health"]


async def test_an_unreadable_offer_goes_back_to_the_model_to_fix(
    lucy: Lucy, team: str, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    fake_llm.then(tool_calls=[("schedule_task", '{"when": "every so often", "request": "tidy up"}')])
    fake_llm.then(content="Could you say when exactly?")
    event = mention_event(team=team, channel=CHANNEL, text="tidy up every so often")
    assert (await lucy.post_event(event)).status_code == 200
    await lucy.client.get_workflow_handle(task_workflow_id(team, CHANNEL, event["event"]["ts"])).result()
    (tool_result,) = [m for m in fake_llm.task_requests[-1]["messages"] if m["role"] == "tool"]
    assert "Not offered" in tool_result["content"] and "every weekday at 8:30" in tool_result["content"]
    assert not fake_slack.ephemerals


async def test_backfill_re_runs_the_fires_of_a_missed_window_and_only_for_the_owner(
    lucy: Lucy, team: str, fake_slack: FakeSlack
):
    row = await _create(lucy, fake_slack, team, '"every 6 hours" check the queue')
    paris = ZoneInfo("Europe/Paris")  # the fake Slack's time zone for everyone
    end = datetime.now(paris).replace(second=0, microsecond=0, tzinfo=None)
    start = end - timedelta(hours=13)
    args = f"backfill {row.id} {start.isoformat(timespec='minutes')} {end.isoformat(timespec='minutes')}"
    refused = (await lucy.command(f"schedule {args}", team=team, user="U0BOB", channel=CHANNEL)).json()
    assert "Only <@U0ALICE>" in refused["text"]
    said = (await lucy.command(f"schedule {args}", team=team, channel=CHANNEL)).json()["text"]
    assert said.startswith("Re-running"), said
    runs = int(said.split()[1])
    assert runs in (2, 3)  # fires every 6 hours (from the epoch) in 13 hours

    async def completed() -> int:
        async with lucy.engine.connect() as conn:
            return int(
                (
                    await conn.execute(
                        text("SELECT count(*) FROM tasks WHERE workflow_id LIKE :p AND status = 'completed'"),
                        {"p": f"lucy-task-{team}-{CHANNEL}-sched-{row.id}-%"},
                    )
                ).scalar_one()
            )

    async def all_ran() -> bool:
        return await completed() >= runs

    await eventually(all_ran, "the backfilled runs", timeout=45)
    assert await completed() == runs, (
        "each fire of the window ran once (late on purpose: not reported missed)"
    )
    assert not [p for p in fake_slack.posted(CHANNEL) if "I missed the run" in p["text"]]
    for bad in (
        f"backfill {row.id} yesterday today",
        f"backfill {row.id} {end.isoformat()} {start.isoformat()}",
    ):
        answer = (await lucy.command(f"schedule {bad}", team=team, channel=CHANNEL)).json()["text"]
        assert answer.startswith(("I could not read", "The window must")), answer
