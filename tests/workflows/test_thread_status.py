"""A task in an assistant thread (a DM) on the time-skipping server: the thread's status follows
the task (thinking, waiting for approval, thinking again) and is cleared at the end, and the
plan shows the step waiting, then not run when nobody decided; a channel task makes no
assistant-thread call."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from lucy.contracts.ids import TaskSource
from lucy.contracts.slack import AssistantThreadRequest
from tests.workflows.test_task_timeskipping import TASK, Fakes, _run, answer, calls, ts_env  # noqa: F401

DM_TASK = replace(
    TASK, source=TaskSource.DM.value, slack_channel_id="D0ALICE", text="clean  <@U0BOB> the cache"
)


def _with_thread(fakes: Fakes, shown: list[AssistantThreadRequest]) -> None:
    @activity.defn(name="slack.assistant_thread")
    async def assistant_thread(request: AssistantThreadRequest) -> bool:
        shown.append(request)
        return True

    original = fakes.activities
    fakes.activities = lambda: [*original(), assistant_thread]  # type: ignore[method-assign]


async def test_the_thread_status_follows_an_approval_that_expires(ts_env: WorkflowEnvironment):  # noqa: F811
    fakes = Fakes(script=[calls(("exec", '{"command": "rm -rf /tmp/cache"}')), answer("I did not run it.")])
    shown: list[AssistantThreadRequest] = []
    _with_thread(fakes, shown)
    result = await _run(
        ts_env, fakes, DM_TASK, history="lucy_task_assistant_approval_expired"
    )  # the approval's 24 hours pass, skipped
    assert result.status == "completed"
    statuses = [s.status for s in shown]
    assert statuses[0] == "is thinking…" and statuses[-1] == ""
    assert "is waiting for approval" in statuses
    assert statuses.index("is waiting for approval") < len(statuses) - 2  # then thinking again
    assert statuses[-2] == "is thinking…"
    assert [s.title for s in shown if s.title] == ["clean  <@U0BOB> the cache"]  # neutralized by the activity
    assert {(s.channel, s.thread_ts) for s in shown} == {("D0ALICE", DM_TASK.thread_ts)}
    # The plan showed the step waiting for approval, then not run.
    plans = [u.progress.plan for u in fakes.updates if u.progress is not None]
    first = next(p.progress.plan for p in fakes.posts if p.progress is not None)
    assert [(s.status, s.details) for s in first] == [("pending", "waiting for approval")]
    assert [(s.status, s.details) for s in plans[-1]] == [("error", "not run: expired")]


async def test_a_channel_task_sets_no_thread_status(ts_env: WorkflowEnvironment):  # noqa: F811
    fakes = Fakes(script=[answer("hello")])
    shown: list[Any] = []
    _with_thread(fakes, shown)
    assert (await _run(ts_env, fakes)).status == "completed"
    assert shown == []
