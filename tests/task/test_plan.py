"""Tool steps as a live plan, end to end with streaming on: the progress message is a Slack
streaming message in plan display mode, one task per tool step with its live status (waiting
for approval, in progress, done, failed); where Slack refuses the stream or it expires, the
plain progress message of the non-streaming path, updated in place."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from lucy.contracts.ids import task_workflow_id
from lucy.settings import Settings
from tests.conftest import Lucy, eventually, mention_event, new_team, record_history, running_lucy
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack


@pytest.fixture
async def lucy(
    settings: Settings, temporal_env: WorkflowEnvironment, engine: AsyncEngine, admin_engine: AsyncEngine
) -> AsyncIterator[Lucy]:
    """Lucy with streaming on (LUCY_LLM_STREAMING's default; the rest of the suite pins it off)."""
    streaming = settings.model_copy(update={"llm": settings.llm.model_copy(update={"llm_streaming": True})})
    async with running_lucy(streaming, temporal_env.client, engine, admin_engine) as running:
        yield running


def _with_actions(slack: FakeSlack, channel: str, action_id: str) -> dict[str, Any] | None:
    return slack.with_actions(channel, action_id)


def _plan(slack: FakeSlack, channel: str, thread: str) -> dict[str, Any] | None:
    return next(
        (m for m in slack.posted(channel) if m.get("thread_ts") == thread and m.get("plan")),
        None,
    )


async def _start(lucy: Lucy, text: str) -> tuple[str, str, str]:
    team = new_team()
    event = mention_event(team=team, text=text)
    ev = event["event"]
    assert (await lucy.post_event(event)).status_code == 200
    return team, task_workflow_id(team, ev["channel"], ev["ts"]), ev["ts"]


async def test_a_plan_shows_the_approval_step_waiting_then_done_after_approve(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    fake_llm.then(content="", tool_calls=[("exec", '{"command": "ls -la /srv <!here>"}')])
    fake_llm.then(content="The folder holds **3 files**.")
    team, workflow_id, thread = await _start(lucy, "what is in /srv on the box?")
    channel = "C0GENERAL"

    approval = await eventually(lambda: _with_actions(fake_slack, channel, "lucy_approve"), "approval")
    plan = await eventually(lambda: _plan(fake_slack, channel, thread), "the plan")
    assert plan["task_display_mode"] == "plan" and plan["plan"]["title"] == "Waiting for approval"
    [waiting] = plan["plan"]["tasks"].values()
    assert waiting["status"] == "pending" and waiting["details"] == "waiting for approval"
    # The step's title comes from the model's arguments: escaped, no mention can come out of it.
    assert waiting["title"] == "gateway exec: ls -la /srv &lt;!here&gt;"
    start = fake_slack.calls_to("chat.startStream")[0].params
    assert start["recipient_user_id"] == "U0ALICE" and start["recipient_team_id"] == team
    assert _with_actions(fake_slack, channel, "lucy_cancel") is None  # no plain progress message

    handle = lucy.client.get_workflow_handle(workflow_id)
    for _ in range(200):
        if (await handle.query("status"))["status"] == "pending_approval":
            break
        await asyncio.sleep(0.02)
    assert (await lucy.click(approval, "lucy_approve", team=team, user="UADMIN1")).status_code == 200
    result = await asyncio.wait_for(handle.result(), 30)
    assert result["status"] == "completed"
    assert fake_gateway.commands() == ["ls -la /srv <!here>"]

    plan = _plan(fake_slack, channel, thread)
    assert plan is not None and plan["plan"]["title"] == "Done in 2 step(s)"
    [done] = plan["plan"]["tasks"].values()
    assert done["status"] == "complete"
    statuses = [t["status"] for t in plan["task_updates"]]
    assert statuses[0] == "pending" and statuses[-1] == "complete"
    assert set(statuses) <= {"pending", "in_progress", "complete"}
    assert (channel, plan["ts"]) not in fake_slack.streams  # the plan was stopped
    assert len(fake_slack.calls_to("chat.stopStream")) >= 1
    answers = [
        m for m in fake_slack.posted(channel) if m.get("thread_ts") == thread and "3 files" in m["text"]
    ]
    assert len(answers) == 1
    # The answer (posted over the message it was streamed into) carries the feedback buttons and
    # the Save as skill button.
    assert [b["type"] for b in answers[0]["blocks"]] == ["section", "context_actions", "actions"]
    await record_history(lucy, workflow_id, "lucy_task_plan_approval")


async def test_a_failed_step_shows_failed_in_the_plan(lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm):
    fake_llm.then(content="", tool_calls=[("read_file", '{"path": "/etc/motd"}')])
    fake_llm.then(content="I could not read it.")
    fake_slack_channel = "C0GENERAL"
    _, workflow_id, thread = await _start(lucy, "read /etc/motd please")
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 30)
    assert result["status"] == "completed"
    plan = _plan(fake_slack, fake_slack_channel, thread)
    assert plan is not None
    [step] = plan["plan"]["tasks"].values()
    assert step["title"] == "gateway read: /etc/motd"
    assert step["status"] in ("complete", "error")  # what the gateway said, shown as it ended
    assert plan["task_updates"][0]["status"] == "in_progress"


@pytest.mark.parametrize("how", ["refused", "expired"])
async def test_without_a_live_stream_the_progress_message_is_updated_in_place(
    how: str, lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    if how == "refused":
        fake_slack.stream_refusal = "not_allowed_token_type"
    else:
        fake_slack.stream_idle_s = 0.0  # every stream has expired by its next append
    fake_llm.then(content="", tool_calls=[("exec", '{"command": "uptime"}')])
    fake_llm.then(content="", tool_calls=[("exec", '{"command": "df -h"}')])
    fake_llm.then(content="All fine.")
    team, workflow_id, thread = await _start(lucy, "check the box")
    channel = "C0GENERAL"
    handle = lucy.client.get_workflow_handle(workflow_id)
    for _ in range(2):
        approval = await eventually(lambda: _with_actions(fake_slack, channel, "lucy_approve"), "approval")
        for _ in range(200):
            if (await handle.query("status"))["status"] == "pending_approval":
                break
            await asyncio.sleep(0.02)
        await lucy.click(approval, "lucy_approve", team=team, user="UADMIN1")
        await eventually(
            lambda a=approval: all(  # type: ignore[misc]
                "actions" not in json.dumps(m.get("blocks"))
                for m in fake_slack.posted(channel)
                if m["ts"] == a["ts"]
            ),
            "the decision shown",
        )
    result = await asyncio.wait_for(handle.result(), 30)
    assert result["status"] == "completed"
    progress = [
        m for m in fake_slack.posted(channel) if m.get("thread_ts") == thread and "Done in" in m["text"]
    ]
    assert len(progress) == 1, "one progress message, updated in place"
    assert "Done in 3 step(s)." in progress[0]["text"]
    assert "lucy_cancel" not in json.dumps(progress[0].get("blocks"))
    assert [u for u in fake_slack.updates if u["ts"] == progress[0]["ts"]], "updated with chat.update"
    if how == "refused":
        assert not any(m.get("plan") for m in fake_slack.posted(channel))


async def test_fake_slack_checks_chunks_as_slack_does(fake_slack: FakeSlack):
    token = fake_slack.token
    start = {"channel": "C0GENERAL", "thread_ts": "1.0", "task_display_mode": "plan"}
    bad = [
        [{"type": "thinking", "text": "hm"}],
        [{"type": "task_update", "id": "1", "title": "x", "status": "waiting"}],
        [{"type": "task_update", "title": "x", "status": "pending"}],
        "not json",
    ]
    for chunks in bad:
        status, body, _ = fake_slack.call("chat.startStream", {**start, "chunks": chunks}, token)
        assert (status, body) == (200, {"ok": False, "error": "invalid_chunks"}), chunks
    _, body, _ = fake_slack.call("chat.startStream", {**start, "task_display_mode": "grid"}, token)
    assert body["error"] == "invalid_arguments"
    ok = [
        {"type": "plan_update", "title": "Working"},
        {"type": "task_update", "id": "1", "title": "a", "status": "pending"},
    ]
    _, body, _ = fake_slack.call("chat.startStream", {**start, "chunks": json.dumps(ok)}, token)
    assert body["ok"], body
    ts = body["ts"]
    _, body, _ = fake_slack.call(
        "chat.appendStream", {"channel": "C0GENERAL", "ts": ts, "chunks": [{"type": "x"}]}, token
    )
    assert body["error"] == "invalid_chunks"
    done = [{"type": "task_update", "id": "1", "title": "a", "status": "complete"}]
    _, body, _ = fake_slack.call("chat.stopStream", {"channel": "C0GENERAL", "ts": ts, "chunks": done}, token)
    assert body["ok"]
    message = fake_slack.find("C0GENERAL", ts)
    assert message is not None and message["plan"]["tasks"]["1"]["status"] == "complete"
    _, body, _ = fake_slack.call(
        "chat.appendStream", {"channel": "C0GENERAL", "ts": ts, "chunks": done}, token
    )
    assert body["error"] == "message_not_in_streaming_state"
