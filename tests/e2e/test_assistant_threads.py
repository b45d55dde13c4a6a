"""A task in an assistant thread (a DM with Lucy) says what it is doing under the thread
(``assistant.threads.setStatus``: thinking, running a tool, waiting for approval), clears it at
the end and titles the thread from the request (``setTitle``); elsewhere it makes no such
call, and a workspace that refuses them never fails the task."""

from __future__ import annotations

import asyncio

from lucy.contracts.ids import task_workflow_id
from tests.conftest import Lucy, dm_event, eventually, mention_event, new_team, record_history
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack

THREAD = "1795300000.000100"


async def _dm(lucy: Lucy, text: str) -> tuple[str, str]:
    team = new_team()
    event = dm_event(team=team, text=text, thread_ts=THREAD)
    assert (await lucy.post_event(event)).status_code == 200
    workflow_id = task_workflow_id(team, "D0ALICE", event["event"]["ts"])
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 30)
    assert result["status"] == "completed"
    return team, workflow_id


async def test_an_assistant_thread_shows_what_lucy_does_then_is_cleared(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    fake_llm.then(content="", tool_calls=[("read_file", '{"path": "/etc/motd"}')])
    fake_llm.then(content="It says hello.")
    _, workflow_id = await _dm(lucy, "what does <@U0BOB> have in\n/etc/motd, <!here>? " + "please " * 20)
    key = ("D0ALICE", THREAD)
    await eventually(lambda: fake_slack.statuses.get(key) == "", "the status cleared")
    log = [s for c, t, s in fake_slack.status_log if (c, t) == key]
    assert log[0] == "is working on it…"  # ingress, the moment the task started
    assert log[1:] == ["is thinking…", "is running gateway read…", "is thinking…", ""], log
    title = fake_slack.titles[key]
    assert title.startswith("what does have in /etc/motd, ? please") and title.endswith("…")
    assert len(title) <= 60 and "<" not in title
    answer = [m for m in fake_slack.posted("D0ALICE") if m.get("thread_ts") == THREAD]
    assert answer and "hello" in answer[-1]["text"]
    await record_history(lucy, workflow_id, "lucy_task_assistant_thread")


async def test_a_workspace_refusing_assistant_calls_still_gets_its_answer(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    fake_slack.assistant_refusal = "not_allowed_token_type"
    fake_llm.then(content="Fine.")
    await _dm(lucy, "how are you?")
    calls = fake_slack.calls_to("assistant.threads.setStatus") + fake_slack.calls_to(
        "assistant.threads.setTitle"
    )
    assert calls, "Lucy tried"
    assert not fake_slack.statuses and not fake_slack.titles
    assert any("Fine." in m["text"] for m in fake_slack.posted("D0ALICE"))


async def test_a_channel_task_makes_no_assistant_calls(lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm):
    fake_llm.then(content="Sure.")
    team = new_team()
    event = mention_event(team=team, text="hello")
    assert (await lucy.post_event(event)).status_code == 200
    ev = event["event"]
    handle = lucy.client.get_workflow_handle(task_workflow_id(team, ev["channel"], ev["ts"]))
    assert (await asyncio.wait_for(handle.result(), 30))["status"] == "completed"
    assert not fake_slack.calls_to("assistant.threads.setStatus")
    assert not fake_slack.calls_to("assistant.threads.setTitle")
    status, body, _ = fake_slack.call(
        "assistant.threads.setStatus",
        {"channel_id": "C0GENERAL", "thread_ts": ev["ts"], "status": "x"},
        fake_slack.token,
    )
    assert (status, body) == (200, {"ok": False, "error": "invalid_thread_ts"})  # as Slack answers there
