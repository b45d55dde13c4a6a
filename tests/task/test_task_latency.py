"""[speed] A task's fixed cost: the answer's step records are written while the answer is posted,
and the final record (``records.task_finished``) is a local activity run inside the workflow
task that saw the answer posted, so the run ends there. Every record is still written once."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from temporalio.api.enums.v1 import EventType

from lucy.contracts.ids import task_workflow_id
from tests.conftest import Lucy, mention_event, new_team, record_history
from tests.fakes.llm import FakeLlm


def _scheduled(events: list, name: str) -> int:
    return next(
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == name
    )


async def test_an_answer_ends_the_run_in_the_workflow_task_that_saw_it_posted(lucy: Lucy, fake_llm: FakeLlm):
    team = new_team()
    fake_llm.then(content="Paris.")
    event = mention_event(team=team, text="what is the capital of France?")
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    assert (await lucy.post_event(event)).status_code == 200
    handle = lucy.client.get_workflow_handle(workflow_id)
    result = await asyncio.wait_for(handle.result(), 30)
    assert result["status"] == "completed"

    events = list((await handle.fetch_history()).events)
    names = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert "records.task_finished" not in names  # a local activity: a marker, no scheduled task
    assert sum(e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED for e in events) >= 1
    assert names.count("records.steps") == 1
    post, steps = _scheduled(events, "slack.post_message"), _scheduled(events, "records.steps")
    between = [e.event_type for e in events if min(post, steps) < e.event_id < max(post, steps)]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED not in between, (
        "records and post in one workflow task"
    )
    # Once both are done: one workflow task, and it completes the run.
    done = max(
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and e.activity_task_completed_event_attributes.scheduled_event_id in (post, steps)
    )
    after = [e.event_type for e in events if e.event_id > done]
    assert after.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) == 1, after
    assert after[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED

    async with lucy.engine.connect() as conn:
        task = (
            await conn.execute(
                text("SELECT id, status, completed_at, result_data FROM tasks WHERE workflow_id = :w"),
                {"w": workflow_id},
            )
        ).one()
        assert task.status == "completed" and task.completed_at is not None
        assert task.result_data["answer_ts"] == result["answer_ts"]
        steps_written = (
            await conn.execute(
                text("SELECT kind, name FROM task_steps WHERE task_id = :t ORDER BY step_index"),
                {"t": task.id},
            )
        ).all()
        assert [tuple(s) for s in steps_written] == [("llm_call", "classify"), ("llm_call", "default tier")]
        finished = (
            await conn.execute(
                text("SELECT count(*) FROM audit_log WHERE workflow_id = :w AND action = 'task.completed'"),
                {"w": workflow_id},
            )
        ).scalar()
        assert finished == 1
    await record_history(lucy, workflow_id, "lucy_task_finish_together")
