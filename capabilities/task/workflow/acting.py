"""One tool call of the model, from its raw arguments to what the model is told: validate,
ask a person where policy says so, run the tool's activity, record the step. A tool's failure
never raises: the model hears about it and decides what to do next."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

from capabilities.approvals.contracts import ApprovalDecisionKind
from capabilities.approvals.workflow import ApprovalGate
from capabilities.delegate.contracts import DELEGATE
from capabilities.delegate.workflow import child
from capabilities.delegate.workflow.fanout import Fanout
from capabilities.skills.workflow import loading as skills
from capabilities.task.contracts.task import TaskInput, TaskState
from capabilities.task.workflow import breaker, plan, policy, prompts
from capabilities.task.workflow.models import error_message, error_type
from capabilities.task.workflow.posting import ProgressMessage, thread_of
from capabilities.task.workflow.recorder import StepRecorder
from capabilities.tools.contracts import ToolRequest, ToolResult
from capabilities.tools.workflow import validate_arguments
from lucy.contracts.llm import ToolCall
from lucy.contracts.slack import PlanStatus, Progress
from lucy.redact import redact_secrets

with workflow.unsafe.imports_passed_through():
    from capabilities.tools.activities import registry
    from capabilities.tools.spec import Registry, ToolSpec

# Histories recorded before untrusted content sent calls on the requester's own accounts to them.
ACCOUNT_OWNER_PATCH = "trust2-account-owner-approval"


def task_tools(state: TaskState) -> Registry:
    """Lucy's tools plus the task's workspace's own (its MCP servers', from the context)."""
    return registry.for_task(state.context.workspace_tools if state.context is not None else ())


def offered(state: TaskState) -> list[str]:
    """The tools the model may use now: configured for the task (Lucy's and its workspace's
    own), not withdrawn, delegate only where it may be, and within what the skills it loaded allow."""
    ctx = state.context
    available = [*ctx.available_tools, *(t.name for t in ctx.workspace_tools)] if ctx is not None else []
    tools = task_tools(state)
    offered = [t for t in available if t in tools and t not in state.unavailable_tools]
    return skills.restrict(state, child.offer(state, offered))


@dataclass(frozen=True)
class _Step:
    """One running tool step, as the step record needs it."""

    id: str
    summary: str
    risk: str
    index: int
    started: datetime


class ToolRunner:
    def __init__(
        self,
        task: TaskInput,
        state: TaskState,
        recorder: StepRecorder,
        progress: ProgressMessage,
        gate: ApprovalGate,
    ) -> None:
        self._task = task
        self._state = state
        self._recorder = recorder
        self._progress = progress
        self._gate = gate
        self._fanout = Fanout(task, state, recorder, progress)

    async def run(self, call: ToolCall, *, reason: str) -> str:
        """Run one tool call; returns what the model is told."""
        state = self._state
        tools = task_tools(state)
        tool = tools.get(call.name)
        if tool is None or call.name not in offered(state):
            return prompts.no_such_tool(call.name, offered(state))
        args, problem = validate_arguments(tool, call.arguments)
        if args is None:
            return self._refused_arguments(call, problem)
        if tool.name == DELEGATE and self._task.delegation is None:  # a sub-task cannot delegate
            output = await self._fanout.run(call, args, offered(state))
            self._progress.thinking()
            return output
        summary = tool.summary(args)
        ctx = state.context
        assert ctx is not None
        verdict = policy.assess(
            tool.name,
            args,
            untrusted_seen=state.untrusted_seen,
            known_hosts=state.known_hosts,
            channel_requires_approval=ctx.channel_requires_approval,
            approval_required_tools=ctx.approval_required_tools,
            account_owner_gate=state.untrusted_seen
            and tool.acts_for_requester
            and workflow.patched(ACCOUNT_OWNER_PATCH),
            tools=tools,
        )
        approved_by = ""
        if verdict.needs_approval:
            plan.mark(state, call.id, summary, PlanStatus.PENDING, plan.WAITING)
            decision, decider = await self._gate.ask(
                tool.name,
                args,
                risk=verdict.risk,
                summary=summary,
                reason=reason,
                because=verdict.because,
                owner_only=verdict.owner_only,
                admin_only=verdict.admin_only,
            )
            if decision != ApprovalDecisionKind.APPROVED:
                plan.not_run(state, call.id, summary, decision)
                await self._gate.settled()
                self._progress.thinking()
                return prompts.not_run(summary, decision, decider)
            approved_by = decider or ""
        output = await self._execute(
            tool, args, summary=summary, risk=verdict.risk, step_id=call.id, approved_by=approved_by
        )
        await self._gate.settled()  # the decision's record and message, settled meanwhile
        self._progress.thinking()  # the model reads what the step did
        if not tool.trusted_output:
            state.untrusted_seen = True  # whatever a tool returned came from outside
        return output

    def _refused_arguments(self, call: ToolCall, problem: str | None) -> str:
        """Record a call whose arguments are wrong, and tell the model what to fix."""
        self._recorder.add(
            kind="tool_use",
            name=call.name,
            status="failed",
            error=f"invalid arguments: {problem}",
            input={"raw_arguments": redact_secrets(call.arguments)[:500]},
        )
        return f"Error: {problem}"

    async def _execute(
        self, tool: ToolSpec, args: dict[str, Any], *, summary: str, risk: str, step_id: str, approved_by: str
    ) -> str:
        state = self._state
        index = self._recorder.next_index()
        state.step = f"running {summary}"
        plan.mark(state, step_id, summary, PlanStatus.IN_PROGRESS)
        await self._progress.show(self._progress.view(Progress.RUNNING, detail=summary))
        request = self._request(tool, args, index, approved_by)
        started = workflow.now()
        try:
            result: ToolResult = await workflow.execute_activity_method(
                tool.activity,
                request,
                start_to_close_timeout=tool.timeout,
                heartbeat_timeout=tool.heartbeat,
                retry_policy=tool.retry,
                summary=summary,
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            step = _Step(step_id, summary, risk, index, started)
            return self._failed(tool, step, err)
        return self._completed(tool, _Step(step_id, summary, risk, index, started), result)

    def _request(self, tool: ToolSpec, args: dict[str, Any], index: int, approved_by: str) -> ToolRequest:
        """The activity's input for step ``index``: the call and where the task lives."""
        state, task = self._state, self._task
        return ToolRequest(
            workflow_id=workflow.info().workflow_id,
            step=index,
            tool=tool.name,
            arguments=args,
            workspace_id=task.workspace_id,
            slack_channel_id=task.slack_channel_id,
            thread_ts=thread_of(task, state),
            state=dict(state.tool_state),
            slack_user_id=task.slack_user_id,
            approved_by=approved_by,
        )

    def _failed(self, tool: ToolSpec, step: _Step, err: ActivityError) -> str:
        """Record a tool activity that failed for good; returns what the model is told."""
        state = self._state
        kind, message = error_type(err), error_message(err)
        breaker.failed(state, tool.name, kind)
        plan.mark(state, step.id, step.summary, PlanStatus.ERROR, kind)
        self._recorder.add(
            kind="tool_use",
            name=tool.name,
            status="failed",
            error=f"{kind}: {message}"[:1000],
            input={"summary": step.summary, "risk": step.risk},
            index=step.index,
            started_at=step.started,
        )
        self._recorder.step_done()
        return f"Error ({kind}): {message}"

    def _completed(self, tool: ToolSpec, step: _Step, result: ToolResult) -> str:
        """Record a tool activity that returned; returns what the model is told."""
        state = self._state
        breaker.succeeded(state, tool.name)
        state.tool_state.update(result.state)
        if tool.name == skills.USE_SKILL and result.ok:
            skills.loaded(state)
        plan.mark(state, step.id, step.summary, PlanStatus.COMPLETE if result.ok else PlanStatus.ERROR)
        self._recorder.add(
            kind="tool_use",
            name=tool.name,
            status="completed" if result.ok else "failed",
            input={"summary": step.summary, "risk": step.risk},
            output={
                "ok": result.ok,
                "truncated": result.truncated,
                "preview": redact_secrets(result.output)[:300],
            },
            index=step.index,
            started_at=step.started,
        )
        self._recorder.step_done()
        return result.output if result.ok else f"The tool reported a failure:\n{result.output}"
