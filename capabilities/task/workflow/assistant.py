"""The task's assistant-thread status ("is thinking…", "is running gateway exec…", "is waiting
for approval"), cleared at the end, and the thread's title from the first request: only in a
DM thread (where Slack's assistant threads live), through the ``slack.assistant_thread``
activity, one call at a time and always the latest status. Best effort: a failure is logged,
never the task's.

Gated by :data:`PATCH`: histories recorded before it replay without these calls."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from capabilities.task.activities.assistant_threads import AssistantThreadActivities
from capabilities.task.contracts.task import TaskInput
from capabilities.task.workflow import options
from lucy.contracts.ids import TaskSource
from lucy.contracts.slack import AssistantThreadRequest

PATCH = "assistant-thread-status"
THINKING = "is thinking…"
WAITING = "is waiting for approval"


def applies(task: TaskInput, thread_ts: str) -> bool:
    """An assistant thread: a direct message with the app, in a thread."""
    return task.source == TaskSource.DM.value and task.slack_channel_id.startswith("D") and bool(thread_ts)


def running(detail: str) -> str:
    """The status while a tool step runs: its label, never the model's arguments."""
    label = detail.split(":", 1)[0].strip()
    return f"is running {label}…" if label else "is working…"


class ThreadStatus:
    def __init__(self, task: TaskInput, thread_ts: str) -> None:
        self._task = task
        self._thread = thread_ts
        self._enabled: bool | None = None
        self._title = task.text if task.resume is None else ""  # a continued task has its title
        self._wanted: str | None = None
        self._shown: str | None = None
        self._pump: asyncio.Task[None] | None = None

    def _on(self) -> bool:
        if self._enabled is None:
            self._enabled = applies(self._task, self._thread) and workflow.patched(PATCH)
        return self._enabled

    def show(self, status: str) -> None:
        """Show ``status`` (soon: the call runs beside the task's work)."""
        if not self._on():
            return
        self._wanted = status
        if self._pump is None:
            self._pump = asyncio.create_task(self._run())

    async def clear(self) -> None:
        """Clear the status (the task is over) and stop."""
        if self._pump is None:
            return
        self._wanted = ""
        await workflow.wait([self._pump])

    async def _run(self) -> None:
        while True:
            await workflow.wait_condition(lambda: self._wanted != self._shown)
            wanted = self._wanted or ""
            title, self._title = self._title, ""
            try:
                await workflow.execute_activity_method(
                    AssistantThreadActivities.show,
                    AssistantThreadRequest(
                        channel=self._task.slack_channel_id,
                        thread_ts=self._thread,
                        status=wanted,
                        title=title,
                    ),
                    start_to_close_timeout=options.SLACK_TIMEOUT,
                    schedule_to_close_timeout=options.ASSISTANT_DEADLINE,
                    retry_policy=options.ASSISTANT_RETRY,
                    summary="slack: assistant thread status",
                )
            except ActivityError:
                workflow.logger.info("assistant thread status not shown")
            self._shown = wanted
            if wanted == "":
                return
