"""Posting in the task's thread (``slack.post_message``), idempotent per step, and the one
progress message the task keeps up to date (``slack.update_message``)."""

from __future__ import annotations

import asyncio

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
            start_to_close_timeout=options.SLACK_TIMEOUT,
            schedule_to_close_timeout=options.SLACK_DEADLINE,
            retry_policy=options.SLACK_RETRY,
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
    ) -> ProgressView:
        return ProgressView(
            kind=kind.value,
            workflow_id=workflow.info().workflow_id,
            cancellable=cancellable,
            detail=detail,
            approvers=list(approvers or []),
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
            return
        if self._state.progress_ts is not None:
            self._wanted = view

    async def _run(self) -> None:
        while True:
            await workflow.wait_condition(lambda: self._wanted != self._shown)
            wanted = self._wanted
            if wanted is None or self._state.progress_ts is None:
                return
            self._busy = True
            try:
                await workflow.execute_activity_method(
                    SlackActivities.update_message,
                    UpdateMessageRequest(
                        channel=self._task.slack_channel_id,
                        ts=self._state.progress_ts,
                        text="",
                        progress=wanted,
                    ),
                    start_to_close_timeout=options.SLACK_TIMEOUT,
                    schedule_to_close_timeout=options.PROGRESS_DEADLINE,
                    retry_policy=options.SLACK_RETRY,
                    summary="slack: update progress",
                )
            except ActivityError as err:
                workflow.logger.warning("progress update failed", extra={"error_type": error_type(err)})
            finally:
                self._busy = False
            self._shown = wanted
            if not wanted.cancellable:
                return  # the final view has been shown

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
        await workflow.wait_condition(lambda: self._wanted == self._shown and not self._busy)
        if self._pump is not None:
            self._pump.cancel()
            await workflow.wait([self._pump])
