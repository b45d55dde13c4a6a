"""The parent's side of a ``delegate`` call: check the sub-tasks (``tools.delegate``), reserve a
slice of the task's step budget for each, start each as a child ``LucyTaskWorkflow`` in the same
thread (at most ``LUCY_DELEGATE_MAX_PARALLEL`` at once), show each one live in the plan, retry a
failed one once at a higher tier, settle every slice and give each result back to the model.

Child ids are the parent's id, the delegate call's step index and the sub-task's number
(``<parent>-sub-<step>-<n>``, ``…-retry`` for the retry), started with ``REJECT_DUPLICATE``: a
replay or a retried workflow task matches the recorded start, never starts a second child. The
parent close policy is ``REQUEST_CANCEL``: cancelling the parent cancels its children."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)

from capabilities.delegate.contracts import DELEGATE, OFFERED, SubTask, load
from capabilities.delegate.workflow import words
from capabilities.task.contracts.task import Delegation, TaskInput, TaskResult, TaskState
from capabilities.task.workflow import plan
from capabilities.task.workflow.models import BUDGET_STOPS, TIER_LADDER, error_message
from capabilities.task.workflow.posting import ProgressMessage, thread_of
from capabilities.task.workflow.recorder import StepRecorder
from capabilities.tools.contracts import ToolRequest, ToolResult
from lucy.contracts.ids import TASK_WORKFLOW_NAME, TaskSource, TaskStatus, task_search_attributes
from lucy.contracts.llm import ModelTier, ToolCall
from lucy.contracts.slack import PlanStatus, Progress

with workflow.unsafe.imports_passed_through():
    from capabilities.delegate.activities import DELEGATE_SPEC


@dataclass(frozen=True)
class _Child:
    """One attempt of one sub-task: its workflow id, its plan entry, its tier and limits."""

    workflow_id: str
    plan_id: str
    sub: SubTask
    tier: ModelTier
    delegation: Delegation


def room(state: TaskState) -> int:
    """LLM steps the task can still hand out: its budget less those taken, those reserved and
    one kept for its own answer."""
    ctx = state.context
    assert ctx is not None
    return ctx.max_steps - state.llm_steps - state.reserved_steps - 1


def higher(tier: ModelTier) -> ModelTier:
    """The tier a failed sub-task is retried at: the next of the ladder, else frontier."""
    if tier in TIER_LADDER and tier != TIER_LADDER[-1]:
        return TIER_LADDER[TIER_LADDER.index(tier) + 1]
    return ModelTier.FRONTIER


def _cancelling() -> bool:
    """Whether the parent itself is being cancelled (not just one child)."""
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0


class Fanout:
    def __init__(self, task: TaskInput, state: TaskState, recorder: StepRecorder, progress: ProgressMessage):
        self._task = task
        self._state = state
        self._recorder = recorder
        self._progress = progress

    async def run(self, call: ToolCall, args: dict[str, Any], offered: list[str]) -> str:
        """Run one ``delegate`` call; returns what the model is told (every sub-task's result)."""
        state, index, started = self._state, self._recorder.next_index(), workflow.now()
        checked = await self._check(args, offered, index)
        if not checked.ok:
            self._record(index, started, "failed", {"problem": checked.output[:300]})
            return f"Error: {checked.output}"
        subs = load(checked.output)
        left = room(state)
        if left < len(subs):
            self._record(index, started, "failed", {"problem": "not enough steps left"})
            return words.not_enough_steps(left, len(subs))
        share = left // len(subs)
        children = [self._child(call.id, index, n, sub, share, len(subs)) for n, sub in enumerate(subs, 1)]
        state.reserved_steps += share * len(children)
        state.step = f"waiting for {len(children)} sub-task(s)"
        for child in children:
            plan.mark(state, child.plan_id, child.delegation.label, PlanStatus.PENDING, "waiting to start")
        await self._progress.show(
            self._progress.view(Progress.RUNNING, detail=f"{len(children)} sub-task(s)")
        )
        ctx = state.context
        assert ctx is not None
        gate = asyncio.Semaphore(max(1, ctx.delegate_max_parallel))
        reports = await asyncio.gather(*(self._one(child, gate) for child in children))
        state.untrusted_seen = True  # the children's answers carry what their tools read
        self._record(index, started, "completed", {"subtasks": [c.delegation.title for c in children]})
        return "\n\n".join(reports)

    async def _check(self, args: dict[str, Any], offered: list[str], index: int) -> ToolResult:
        """``tools.delegate``: the sub-tasks checked against the task's tools, fixed in history."""
        try:
            return await workflow.execute_activity_method(
                DELEGATE_SPEC.activity,
                ToolRequest(
                    workflow_id=workflow.info().workflow_id,
                    step=index,
                    tool=DELEGATE,
                    arguments=args,
                    workspace_id=self._task.workspace_id,
                    state={OFFERED: ",".join(offered)},
                ),
                start_to_close_timeout=DELEGATE_SPEC.timeout,
                retry_policy=DELEGATE_SPEC.retry,
                summary="delegate: check the sub-tasks",
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            return ToolResult(output=error_message(err), ok=False)

    def _child(self, call_id: str, index: int, n: int, sub: SubTask, share: int, of: int) -> _Child:
        state = self._state
        return _Child(
            workflow_id=f"{workflow.info().workflow_id}-sub-{index}-{n}",
            plan_id=f"{call_id}-sub-{n}",
            sub=sub,
            tier=sub.tier or state.tier or ModelTier.DEFAULT,
            delegation=Delegation(
                parent_workflow_id=workflow.info().workflow_id,
                index=n,
                of=of,
                title=sub.title,
                tools=list(sub.tools),
                max_steps=share,
                untrusted_seen=state.untrusted_seen,
                known_hosts=list(state.known_hosts),
                requires_approval=bool(state.context and state.context.channel_requires_approval),
            ),
        )

    async def _one(self, child: _Child, gate: asyncio.Semaphore) -> str:
        """Run one sub-task (and its one retry at a higher tier); returns its report."""
        async with gate:
            label = child.delegation.label
            await self._mark(child, PlanStatus.IN_PROGRESS, "", label)
            result = await self._attempt(child)
            retried_at: str | None = None
            # A budget's stop is not retried: a stronger model would only cost more.
            if (
                result.status == TaskStatus.FAILED
                and result.error_type not in BUDGET_STOPS
                and room(self._state) >= 1
            ):
                again = self._retry_of(child)
                retried_at = again.tier.value
                await self._mark(child, PlanStatus.IN_PROGRESS, f"retrying at the {retried_at} tier", label)
                result = await self._attempt(again)
            done = result.status == TaskStatus.COMPLETED
            await self._mark(
                child,
                PlanStatus.COMPLETE if done else PlanStatus.ERROR,
                "" if done else (result.error_type or result.status.value),
                label,
            )
        return words.report(child.delegation, result, retried_at=retried_at)

    def _retry_of(self, child: _Child) -> _Child:
        """The retry: a new child id, the next tier, a fresh slice (what is left, at most the first's)."""
        share = min(child.delegation.max_steps, room(self._state))
        self._state.reserved_steps += share
        return replace(
            child,
            workflow_id=f"{child.workflow_id}-retry",
            tier=higher(child.tier),
            delegation=replace(child.delegation, max_steps=share, attempt=2),
        )

    async def _attempt(self, child: _Child) -> TaskResult:
        """Start the child and wait for its result; settle its slice whatever happened."""
        state = self._state
        try:
            handle = await workflow.start_child_workflow(
                TASK_WORKFLOW_NAME,
                self._input(child),
                id=child.workflow_id,
                task_queue=workflow.info().task_queue,
                result_type=TaskResult,
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=self._attributes(),
                static_summary=child.delegation.label,
            )
            result: TaskResult = await handle
        except ChildWorkflowError as err:
            if is_cancelled_exception(err) and _cancelling():
                raise
            result = _failed(err)
        except WorkflowAlreadyStartedError:  # a reset parent asking again for a child that ran
            result = TaskResult(status=TaskStatus.FAILED, error_type="WorkflowAlreadyStarted")
        finally:
            state.reserved_steps -= child.delegation.max_steps
        state.llm_steps += min(result.llm_steps, child.delegation.max_steps)
        return result

    def _input(self, child: _Child) -> TaskInput:
        task, d = self._task, child.delegation
        return TaskInput(
            workspace_id=task.workspace_id,
            user_id=task.user_id,
            channel_id=task.channel_id,
            slack_team_id=task.slack_team_id,
            slack_user_id=task.slack_user_id,
            slack_channel_id=task.slack_channel_id,
            thread_ts=thread_of(task, self._state),
            message_ts=task.message_ts,
            text=words.child_request(child.sub, d.index, d.of),
            source=TaskSource.DELEGATED.value,
            model_tier=child.tier,
            steps_per_run=task.steps_per_run,
            delegation=d,
        )

    def _attributes(self) -> TypedSearchAttributes:
        task = self._task
        return task_search_attributes(
            team=task.slack_team_id,
            user=task.slack_user_id,
            channel=task.slack_channel_id,
            thread=thread_of(task, self._state),
            source=TaskSource.DELEGATED.value,
        )

    async def _mark(self, child: _Child, status: PlanStatus, details: str, detail: str) -> None:
        plan.mark(self._state, child.plan_id, child.delegation.label, status, details)
        await self._progress.show(self._progress.view(Progress.RUNNING, detail=detail))

    def _record(self, index: int, started: datetime, status: str, output: dict[str, Any]) -> None:
        self._recorder.add(
            kind="tool_use",
            name=DELEGATE,
            status=status,
            input={"summary": "delegate: sub-tasks", "risk": "low"},
            output=output,
            index=index,
            started_at=started,
        )
        self._recorder.step_done()


def _failed(err: ChildWorkflowError) -> TaskResult:
    """A child that ended without a result (failed, terminated, timed out, cancelled alone)."""
    cause = err.cause
    kind = cause.type if isinstance(cause, ApplicationError) and cause.type else type(cause).__name__
    status = TaskStatus.CANCELLED if is_cancelled_exception(err) else TaskStatus.FAILED
    return TaskResult(status=status, error_type=kind or "ChildWorkflowError")
