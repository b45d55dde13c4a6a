"""Feedback buttons under an answer, end to end: the answer carries Slack's ``feedback_buttons``
(in a ``context_actions`` block); a signed click through the real ingress is recorded against
the task (``task_feedback`` and ``audit_log``), a repeated click replaces and never doubles,
and App Home counts the month's feedback."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from sqlalchemy import text

from lucy.contracts.ids import task_workflow_id
from tests.conftest import Lucy, eventually, mention_event, new_team
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack


def _buttons(message: dict[str, Any]) -> dict[str, Any]:
    (block,) = [b for b in message.get("blocks") or [] if b.get("type") == "context_actions"]
    (element,) = block["elements"]
    assert element["type"] == "feedback_buttons" and element["action_id"] == "lucy_feedback"
    return element


async def _click(
    lucy: Lucy, message: dict[str, Any], which: str, *, team: str, user: str, action_ts: str | None = None
) -> None:
    """A signed ``block_actions`` payload for a feedback button, as Slack sends it."""
    element = _buttons(message)
    button = element["positive_button" if which == "good" else "negative_button"]
    payload = {
        "type": "block_actions",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": "A0LUCY",
        "token": "legacy",
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": message["channel"]},
        "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:8]}",
        "channel": {"id": message["channel"], "name": "general"},
        "message": message,
        "response_url": "https://hooks.slack.invalid/actions/1",
        "actions": [
            {
                "type": "feedback_buttons",
                "action_id": element["action_id"],
                "block_id": "lucy_feedback",
                "value": button["value"],
                "action_ts": action_ts or f"{time.time():.6f}",
            }
        ],
    }
    response = await lucy.post_form({"payload": json.dumps(payload)})
    assert response.status_code == 200


async def _recorded(lucy: Lucy, workflow_id: str) -> tuple[list[tuple[str, str]], list[tuple[str, Any]]]:
    async with lucy.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT f.slack_user_id, f.feedback FROM task_feedback f JOIN tasks t ON t.id = f.task_id "
                    "WHERE t.workflow_id = :w ORDER BY f.slack_user_id"
                ),
                {"w": workflow_id},
            )
        ).all()
        audit = (
            await conn.execute(
                text(
                    "SELECT actor_id, after_state FROM audit_log WHERE workflow_id = :w "
                    "AND action = 'task.feedback' ORDER BY created_at"
                ),
                {"w": workflow_id},
            )
        ).all()
    return [tuple(r) for r in rows], [tuple(a) for a in audit]


async def test_a_feedback_click_is_recorded_once_per_person_and_counted_in_home(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    fake_llm.then(content="The answer is **42**.")
    team = new_team()
    event = mention_event(team=team, text="the answer?")
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    assert (await lucy.post_event(event)).status_code == 200
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 30)
    answer = next(m for m in fake_slack.posted(ev["channel"]) if m["ts"] == result["answer_ts"])
    assert answer["text"] == "The answer is *42*."  # the text stays (notifications, screen readers)
    assert answer["blocks"][0] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "The answer is *42*."},
    }
    values = _buttons(answer)
    assert json.loads(values["positive_button"]["value"]) == {"w": workflow_id, "f": "good"}

    first = f"{time.time() - 5:.6f}"  # Slack's action_ts of the click
    await _click(lucy, answer, "good", team=team, user="U0ALICE", action_ts=first)
    await _click(lucy, answer, "good", team=team, user="U0ALICE", action_ts=first)  # redelivered
    await _click(lucy, answer, "good", team=team, user="U0ALICE")  # clicked again: no change
    rows, audit = await _recorded(lucy, workflow_id)
    assert rows == [("U0ALICE", "good")] and len(audit) == 1
    assert audit[0] == ("U0ALICE", {"feedback": "good"})

    await _click(lucy, answer, "bad", team=team, user="U0ALICE")  # a change of mind replaces it
    await _click(lucy, answer, "bad", team=team, user="U0BOB")
    rows, audit = await _recorded(lucy, workflow_id)
    assert rows == [("U0ALICE", "bad"), ("U0BOB", "bad")]
    assert [a[1] for a in audit] == [{"feedback": "good"}, {"feedback": "bad"}, {"feedback": "bad"}]

    # A button naming another workspace's task, and a value Lucy never sent: nothing recorded.
    await _click(lucy, answer, "good", team=new_team(), user="U0EVE")
    forged = {
        **answer,
        "blocks": json.loads(json.dumps(answer["blocks"]).replace('\\"good\\"', '\\"great\\"')),
    }
    await _click(lucy, forged, "good", team=team, user="U0MALLORY")
    assert (await _recorded(lucy, workflow_id))[0] == rows

    opened = {
        "team_id": team,
        "api_app_id": "A0LUCY",
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:8]}",
        "event_time": 1,
        "event": {"type": "app_home_opened", "user": "U0ALICE", "channel": "D0ALICE", "tab": "home"},
    }
    assert (await lucy.post_event(opened)).status_code == 200
    home = await eventually(lambda: fake_slack.views.get("U0ALICE"), "the Home view")
    assert "feedback: 0 :thumbsup: 2 :thumbsdown:" in json.dumps(home)
