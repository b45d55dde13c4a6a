"""[speed] Fast tool steps share their writes: a step's records wait for the next step's when the
last write went out under a second ago (``speed-paced-records``), and the progress message is
updated at most once a second, the newest view then (``speed-paced-progress``). Nothing is lost
or held back: every step is in the database once, a slow step's records are written as it ends,
and the progress message ends on the final view."""

from __future__ import annotations

import asyncio
import json
import math

from sqlalchemy import text
from temporalio.api.enums.v1 import EventType

from lucy.contracts.ids import task_workflow_id
from tests.conftest import Lucy, eventually, mention_event, new_team, record_history
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack

READ = ("read_file", '{"path": "/srv/notes.txt"}')


async def _start(lucy: Lucy, words: str) -> tuple[str, str]:
    team = new_team()
    event = mention_event(team=team, text=words)
    ev = event["event"]
    assert (await lucy.post_event(event)).status_code == 200
    return task_workflow_id(team, ev["channel"], ev["ts"]), ev["ts"]


async def _steps_written(lucy: Lucy, workflow_id: str) -> list[tuple[str, str]]:
    async with lucy.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT s.kind, s.name FROM task_steps s JOIN tasks t ON t.id = s.task_id "
                "WHERE t.workflow_id = :w ORDER BY s.step_index"
            ),
            {"w": workflow_id},
        )
        return [(r.kind, r.name) for r in rows]


async def test_fast_steps_share_their_record_writes_and_progress_updates(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    fake_gateway.files["/srv/notes.txt"] = "remember the milk"
    for _ in range(5):
        fake_llm.then(content="", tool_calls=[READ])
    fake_llm.then(content="It says: remember the milk.")
    workflow_id, thread = await _start(lucy, "read /srv/notes.txt five times")
    handle = lucy.client.get_workflow_handle(workflow_id)
    result = await asyncio.wait_for(handle.result(), 30)
    assert result["status"] == "completed"

    events = list((await handle.fetch_history()).events)
    seconds = (events[-1].event_time.ToDatetime() - events[0].event_time.ToDatetime()).total_seconds()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    # At most one write a second, plus the one that goes with the answer (one per step before).
    assert 1 <= scheduled.count("records.steps") <= 1 + math.ceil(seconds), (scheduled, seconds)
    assert scheduled.count("slack.update_message") <= 1 + math.ceil(seconds), (scheduled, seconds)
    assert await _steps_written(lucy, workflow_id) == [
        ("llm_call", "classify"),
        *[("llm_call", "default tier"), ("tool_use", "read_file")] * 5,
        ("llm_call", "default tier"),
    ]
    progress = [
        m for m in fake_slack.posted("C0GENERAL") if m.get("thread_ts") == thread and "Done in" in m["text"]
    ]
    assert len(progress) == 1 and "Done in 6 step(s)." in progress[0]["text"]
    assert "lucy_cancel" not in json.dumps(progress[0].get("blocks")), "the final view, without Cancel"
    await record_history(lucy, workflow_id, "lucy_task_paced_steps")


async def test_a_slow_step_is_written_as_it_ends_and_a_waiting_view_gets_its_turn(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    """Step 1 ends over a second after the start: its records go out at once. Step 2 follows
    at once: its records wait, and its progress view waits for the message's next turn, a
    second after the last update, which comes while the answer's call still thinks (4 s)."""
    fake_gateway.files["/srv/notes.txt"] = "remember the milk"
    fake_gateway.files["/srv/todo.txt"] = "buy bread"
    fake_llm.then(content="", tool_calls=[READ], delay=1.2)
    fake_llm.then(content="", tool_calls=[("read_file", '{"path": "/srv/todo.txt"}')])
    fake_llm.then(content="Milk and bread.", delay=4.0)
    workflow_id, thread = await _start(lucy, "read my notes slowly, then my list")

    async def first_tool_step_written() -> bool:
        return ("tool_use", "read_file") in await _steps_written(lucy, workflow_id)

    def showing_the_second_step() -> bool:
        in_thread = {m["ts"] for m in fake_slack.posted("C0GENERAL") if m.get("thread_ts") == thread}
        return any(u["ts"] in in_thread and "todo.txt" in u["text"] for u in fake_slack.updates)

    await eventually(lambda: len(fake_llm.task_requests) == 3, "the answer's model call")
    # While that call is still thinking (4 s), not held back for the answer:
    await eventually(first_tool_step_written, "the slow step's records", timeout=2.0)
    await eventually(showing_the_second_step, "the second step in the progress message", timeout=2.5)
    assert len(fake_llm.task_requests) == 3
    handle = lucy.client.get_workflow_handle(workflow_id)
    result = await asyncio.wait_for(handle.result(), 30)
    assert result["status"] == "completed"
    assert (await _steps_written(lucy, workflow_id)).count(("tool_use", "read_file")) == 2
    events = list((await handle.fetch_history()).events)
    scheduled = [
        (e.activity_task_scheduled_event_attributes.activity_type.name, e.event_time.ToDatetime())
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    posted = next(at for name, at in scheduled if name == "slack.post_message")  # the progress message
    second_tool = [at for name, at in scheduled if name == "tools.gateway"][1]
    if (second_tool - posted).total_seconds() < 0.9:  # wanted within the second: it waited its turn
        assert any(e.event_type == EventType.EVENT_TYPE_TIMER_FIRED for e in events)
    await record_history(lucy, workflow_id, "lucy_task_paced_slow_steps")
