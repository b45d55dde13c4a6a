"""Long tool activities heartbeat while they work, and a worker that dies in the middle of one is
noticed within the step's heartbeat timeout (seconds), not its start-to-close timeout
(minutes): the step is retried at once and the task goes on."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from capabilities.task.contracts.task import TaskContext
from capabilities.tools.activities.liveness import beat, keeps_beating
from capabilities.tools.activities.registry import TOOLS
from capabilities.tools.contracts import ToolRequest, ToolResult
from capabilities.tools.spec import TOOL_HEARTBEAT, UNRESUMABLE_TOOL_HEARTBEAT
from lucy.contracts.llm import LlmResponse, ToolCall
from tests.workflows.test_task_timeskipping import Fakes, _run, answer, ts_env  # noqa: F401

LONG_TOOLS = {"exec", "read_file", "write_file", "edit_file", "web_fetch", "browser", "composio_execute"}
LONG_TOOLS |= {"slack_history", "create_file"}


def test_every_long_tool_has_a_heartbeat_timeout_and_heartbeats():
    unresumable = {"composio_execute", "browser"}
    for name in LONG_TOOLS - unresumable:
        tool = TOOLS[name]
        assert tool.heartbeat == TOOL_HEARTBEAT <= timedelta(seconds=10), name
    # Composio actions and browser actions are neither resumable nor idempotent: a
    # short stall must not time out the heartbeat while the first attempt still runs (the retry
    # would run the step again).
    for name in unresumable:
        assert TOOLS[name].heartbeat == UNRESUMABLE_TOOL_HEARTBEAT >= timedelta(seconds=60), name
    for name in LONG_TOOLS:
        tool = TOOLS[name]
        assert tool.heartbeat < tool.timeout, name
        # The activity heartbeats all the while it runs
        # (capabilities.tools.activities.liveness.keeps_beating).
        assert getattr(tool.activity, "__wrapped__", None) is not None, name
    for tool in TOOLS.values():  # a heartbeat timeout on an activity that never beats would fail it
        if tool.heartbeat is not None:
            assert tool.name in LONG_TOOLS


async def test_a_long_activity_heartbeats_while_it_works():
    beats: list[Any] = []

    @keeps_beating
    async def slow(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"

    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    assert await env.run(slow, 2.5) == "done"
    assert len(beats) >= 3  # at once, then every second


async def test_background_beats_resend_the_latest_details_never_empty_ones():
    """Temporal keeps only the newest heartbeat: a background beat re-sends what the activity
    last heartbeated (and, on a retry, what the previous attempt did until this one beats)."""
    beats: list[Any] = []

    @keeps_beating
    async def resumable(seconds: float) -> str:
        await asyncio.sleep(seconds)
        beat({"stream_ts": "171.2"})
        await asyncio.sleep(seconds)
        return "done"

    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=["sess-1"])
    env.on_heartbeat = lambda *details: beats.append(details)
    assert await env.run(resumable, 1.5) == "done"
    new = beats.index(({"stream_ts": "171.2"},))
    assert beats[:new] and set(map(repr, beats[:new])) == {repr(("sess-1",))}
    assert len(beats) - new >= 2 and all(b == ({"stream_ts": "171.2"},) for b in beats[new:])


async def test_a_tool_step_whose_worker_died_is_retried_within_the_heartbeat_timeout(
    ts_env: WorkflowEnvironment,  # noqa: F811
):
    """Attempt 1 hangs without a heartbeat (its worker died): Temporal times it out after the
    heartbeat timeout and attempt 2 runs; the task answers."""
    fakes = Fakes(context=TaskContext(task_id="t1", available_tools=["read_file"]))
    fakes.script = [
        LlmResponse(
            content="",
            model="m",
            tool_calls=[ToolCall(id="call_0", name="read_file", arguments='{"path": "/srv/notes"}')],
        ),
        answer("read it"),
    ]
    attempts: list[datetime] = []

    @activity.defn(name="tools.gateway")
    async def gateway(request: ToolRequest) -> ToolResult:
        attempts.append(activity.info().current_attempt_scheduled_time)
        if activity.info().attempt == 1:
            await asyncio.sleep(3600)  # a dead worker: no heartbeat, no answer
        return ToolResult(output="notes")

    original = fakes.activities
    fakes.activities = lambda: (
        [  # type: ignore[method-assign]
            a for a in original() if getattr(a, "__temporal_activity_definition").name != "tools.gateway"
        ]
        + [gateway]
    )
    result = await asyncio.wait_for(_run(ts_env, fakes), timeout=60)
    assert result.status == "completed"
    assert len(attempts) == 2
    gap = (attempts[1] - attempts[0]).total_seconds()
    assert gap < TOOL_HEARTBEAT.total_seconds() + 10, f"retried {gap:.0f} s later"
    assert TOOLS["read_file"].timeout.total_seconds() > gap  # not after the start-to-close timeout
