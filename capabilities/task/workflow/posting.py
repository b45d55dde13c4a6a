"""Posting in the task's thread (``slack.post_message``), idempotent per step, and the one
progress message the task keeps up to date (``slack.update_message``).

Under :data:`PACE_PATCH` the progress message is updated at most once per :data:`UPDATE_EVERY`:
a view wanted sooner waits for its turn and the newest is sent then, so a burst of fast steps
costs one ``chat.update`` (and one workflow task) rather than one each, and stays far inside
Slack's rate limits. A view that must show at once does: waiting for a person, the last one."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from capabilities.task.activities.slack import SlackActivities
from capabilities.task.contracts.task import TaskInput, TaskState
from capabilities.task.workflow import assistant, options
from capabilities.task.workflow.models import error_type
from lucy.contracts.ids import TaskStatus, idempotency_key
from lucy.contracts.slack import PostMessageRequest, Progress, ProgressView, UpdateMessageRequest

PLAN_PATCH = "progress-plan"
PACE_PATCH = "speed-paced-progress"
UPDATE_EVERY = timedelta(seconds=1)
# What a delegated sub-task does not post itself: its parent shows its progress in the plan and
# gives its answer to its own model. (Its approvals are posted, in the parent's thread.)
QUIET_WHEN_DELEGATED = frozenset({"answer", "failure", "cancelled", "progress"})


def thread_of(task: TaskInput, state: TaskState) -> str:
    """The thread the task works in: its own, when it opened one (a scheduled run)."""
    return state.thread_ts or task.thread_ts


async def post(
    task: TaskInput,
    state: TaskState,
    text: str,
    *,
    step: str,
    summary: str,
    format: bool = True,
    progress: ProgressView | None = None,
    replace_ts: str | None = None,
) -> str | None:
    """Post in the task's thread; returns the message ts, or None if Slack refused for good.
    ``format``: the text is a model's (redacted, converted to mrkdwn, split); otherwise Lucy's.
    ``replace_ts``: the message the answer was streamed into becomes its first part."""
    if task.delegation is not None and step in QUIET_WHEN_DELEGATED:
        return None
    try:
        result = await workflow.execute_activity_method(
            SlackActivities.post_message,
            PostMessageRequest(
                channel=task.slack_channel_id,
                text=text,
                thread_ts=thread_of(task, state),
                idempotency_key=idempotency_key(workflow.info().workflow_id, step),
                format=format,
                progress=progress,
                replace_ts=replace_ts,
                feedback_for=workflow.info().workflow_id if step == "answer" else "",
            ),
            **options.SLACK,
            summary=summary,
        )
    except ActivityError as err:
        if is_cancelled_exception(err) and state.status != TaskStatus.CANCELLED.value:
            raise
        workflow.logger.warning("could not post to Slack", extra={"error_type": error_type(err)})
        state.error_type = state.error_type or error_type(err)
        return None
    return result.ts


class ProgressMessage:
    """The task's one progress message, posted with the first tool step or approval and then
    updated in place, one ``chat.update`` at a time and always with the latest view (so updates
    never arrive out of order); its Cancel button goes away with the final view."""

    def __init__(self, task: TaskInput, state: TaskState) -> None:
        self._task = task
        self._state = state
        self._wanted: ProgressView | None = None
        self._shown: ProgressView | None = None
        self._busy = False
        self._pump: asyncio.Task[None] | None = None
        self._last_sent: datetime | None = None  # when the last post or update went out
        self._rush = False  # pausing: the next update goes at once
        self._thread = assistant.ThreadStatus(task, task.thread_ts)  # an assistant thread's status
        # The plan in the view (a new plan is a new view, so one more update): runs started by a
        # worker before the live plan replay without it (their views compared equal).
        self._with_plan = workflow.patched(PLAN_PATCH)
        if state.progress_ts:  # continued as new: it is there already
            self._shown = self._wanted = self.view(Progress.CONTINUING)

    def view(
        self,
        kind: Progress,
        *,
        cancellable: bool = True,
        detail: str = "",
        approvers: list[str] | None = None,
        steps: int = 0,
        by: str | None = None,
        owner_only: bool = False,
    ) -> ProgressView:
        return ProgressView(
            kind=kind.value,
            workflow_id=workflow.info().workflow_id,
            cancellable=cancellable,
            detail=detail,
            approvers=list(approvers or []),
            owner_only=owner_only,
            steps=steps,
            by=by,
            plan=list(self._state.plan) if self._with_plan else [],
            recipient_user_id=self._task.slack_user_id,
            recipient_team_id=self._task.slack_team_id,
        )

    def start(self) -> None:
        self._pump = asyncio.create_task(self._run())
        self.thinking()

    def thinking(self) -> None:
        """The model is at work (an assistant thread says so)."""
        self._thread.show(assistant.THINKING)

    async def show(self, view: ProgressView) -> None:
        """Show ``view``: the message is posted with the first one, updated after that."""
        waiting = view.kind == Progress.WAITING.value
        self._thread.show(assistant.WAITING if waiting else assistant.running(view.detail))
        if self._state.progress_ts is None and not self._state.progress_attempted:
            self._state.progress_attempted = True
            self._state.progress_ts = await post(
                self._task,
                self._state,
                "",
                step="progress",
                summary="slack: post the progress message",
                format=False,
                progress=view,
            )
            self._shown = self._wanted = view
            self._last_sent = workflow.now()
            return
        if self._state.progress_ts is not None:
            self._wanted = view

    async def _run(self) -> None:
        while True:
            await workflow.wait_condition(lambda: self._wanted != self._shown)
            await self._wait_turn()
            wanted = self._wanted
            if wanted is None or self._state.progress_ts is None:
                return
            self._busy, self._last_sent = True, workflow.now()
            try:
                await workflow.execute_activity_method(
                    SlackActivities.update_message,
                    UpdateMessageRequest(
                        channel=self._task.slack_channel_id,
                        ts=self._state.progress_ts,
                        text="",
                        progress=wanted,
                    ),
                    **options.PROGRESS,
                    summary="slack: update progress",
                )
            except ActivityError as err:
                workflow.logger.warning("progress update failed", extra={"error_type": error_type(err)})
            finally:
                self._busy = False
            self._shown = wanted
            if not wanted.cancellable:
                return  # the final view has been shown

    async def _wait_turn(self) -> None:
        """Under :data:`PACE_PATCH`, wait until :data:`UPDATE_EVERY` has passed since the last
        post or update, or until the wanted view must show at once."""
        if self._last_sent is None or not workflow.patched(PACE_PATCH):
            return
        gap = UPDATE_EVERY - (workflow.now() - self._last_sent)
        if gap > timedelta(0) and not self._urgent():
            try:
                await workflow.wait_condition(
                    self._urgent, timeout=gap, timeout_summary="progress: next update"
                )
            except TimeoutError:
                pass  # its turn came

    def _urgent(self) -> bool:
        """The wanted view must show now: the task waits for a person, or it is the last view."""
        wanted = self._wanted
        if self._rush or wanted is None:
            return self._rush
        return not wanted.cancellable or wanted.kind == Progress.WAITING.value

    async def close(self, view: ProgressView) -> None:
        """Show the final ``view`` (without Cancel) and stop updating."""
        if self._state.progress_ts is not None:
            self._wanted = view
        pump = self._pump
        if pump is not None:
            if self._state.progress_ts is None or pump.done():
                pump.cancel()
            await workflow.wait([pump])
        await self._thread.clear()

    async def pause(self) -> None:
        """Before continue-as-new: let the last update land, then stop."""
        self._rush = True
        await workflow.wait_condition(lambda: self._wanted == self._shown and not self._busy)
        if self._pump is not None:
            self._pump.cancel()
            await workflow.wait([self._pump])
