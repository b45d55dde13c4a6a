"""``LucyTaskWorkflow``: its message handlers and its run loop. Everything else it does lives in
the package's other modules (see :mod:`capabilities.task.workflow`)."""

from __future__ import annotations

import asyncio
import dataclasses

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    # The workflow's own modules are pure and deterministic: imported once per worker, not once
    # per workflow run by the sandbox (see capabilities.task.workflow's docstring).
    # The payload converter resolves the dataclasses' type hints in their own modules: each
    # contracts module must be visible inside the sandbox by its full name.
    # ``import capabilities.task.workflow.x as x``, never ``from capabilities.task.workflow import x``: the
    # sandbox
    # re-imports the parent package, and a submodule reached through it would be re-imported too.
    import capabilities.approvals.contracts
    import capabilities.approvals.workflow as approvals
    import capabilities.delegate.workflow.child as child
    import capabilities.email.contracts
    import capabilities.email.workflow as email_reply
    import capabilities.proactive.contracts.maintenance
    import capabilities.proactive.contracts.schedules
    import capabilities.proactive.workflow.scheduled as scheduled
    import capabilities.task.contracts.records
    import capabilities.task.contracts.task
    import capabilities.task.workflow.closing as closing
    import capabilities.task.workflow.models as models
    import capabilities.task.workflow.options as options
    import capabilities.task.workflow.policy as policy
    import capabilities.task.workflow.prompts as prompts
    import capabilities.task.workflow.replies as replies
    import capabilities.task.workflow.status as status
    import capabilities.tools.contracts  # noqa: F401
    import lucy.contracts.errors
    import lucy.contracts.ids
    import lucy.contracts.llm
    import lucy.contracts.risk
    import lucy.contracts.slack  # noqa: F401
    from capabilities.approvals.contracts import ApprovalDecision, ApprovalOutcome, CancelRequest, ThreadReply
    from capabilities.approvals.workflow import ApprovalGate, ExactViewUpdate
    from capabilities.task.activities.context import ContextActivities
    from capabilities.task.activities.records import RecordActivities
    from capabilities.task.contracts.records import TaskStarted
    from capabilities.task.contracts.task import (
        TaskContextRequest,
        TaskInput,
        TaskResult,
        TaskState,
        TaskView,
    )
    from capabilities.task.workflow.acting import ToolRunner, offered
    from capabilities.task.workflow.compaction import compact
    from capabilities.task.workflow.posting import ProgressMessage, post, thread_of
    from capabilities.task.workflow.recorder import StepRecorder
    from lucy.contracts.errors import ErrorType
    from lucy.contracts.ids import (
        QUERY_STATUS,
        SA_INTENT,
        TASK_WORKFLOW_NAME,
        UPDATE_ADD_REPLY,
        UPDATE_CANCEL,
        UPDATE_DECIDE_APPROVAL,
        TaskStatus,
    )
    from lucy.contracts.llm import ChatMessage
    from lucy.contracts.slack import Progress

MAX_REPLIES = 50  # thread replies one task accepts (later ones start a follow-up task)
MAX_REPLY_CHARS = 4_000  # of one reply; the rest is cut, so history stays far below Temporal's limits


@workflow.defn(name=TASK_WORKFLOW_NAME)
class LucyTaskWorkflow(ExactViewUpdate):
    @workflow.init
    def __init__(self, task: TaskInput) -> None:
        self._task = task
        self._state = task.resume or TaskState()
        self._recorder = StepRecorder(task, self._state)
        self._progress = ProgressMessage(task, self._state)
        self._gate = ApprovalGate(task, self._state, self._recorder, self._progress)
        self._tools = ToolRunner(task, self._state, self._recorder, self._progress, self._gate)
        self._replies: list[ThreadReply] = []  # received, not yet shown to the model
        self._work: asyncio.Task[TaskResult] | None = None
        self._finished = False
        self._closing = False  # answering or failing: a cancel would only muddle the record
        # The message the model's answer was streamed into (posted over at the end), if any.
        self._streamed_ts: str | None = None

    # ------------------------------------------------------------------ queries and updates

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> TaskView:
        """Where the task is (``/lucy status``, the UI, the CLI)."""
        return status.view(self._state)

    @workflow.update(name=UPDATE_DECIDE_APPROVAL)
    async def decide_approval(self, decision: ApprovalDecision) -> ApprovalOutcome:
        """An Approve/Reject click: verified by the worker, decided by the policy, made once;
        returns when the decision is recorded and shown in place of the buttons."""
        return await approvals.decide(self._task, self._state, decision)

    @decide_approval.validator
    def _validate_decision(self, decision: ApprovalDecision) -> None:
        approvals.validate_click(self._state, decision)

    @workflow.update(name=UPDATE_CANCEL)
    async def cancel(self, request: CancelRequest) -> str:
        """Stop the task (the Cancel button and ``/lucy cancel``): allowed for the requester and
        workspace admins, as the worker verifies them. The running step is cancelled, the user
        is told, the record kept."""
        actor = await approvals.verify(self._task, request)
        refused = policy.cancel_refusal(actor, requester=self._task.slack_user_id)
        if refused:
            raise ApplicationError(refused, type=ErrorType.APPROVAL_REFUSED)
        if email_reply.too_late_to_cancel(self._finished, self._closing, self._state):
            raise ApplicationError("This task is not running any more.", type=ErrorType.APPROVAL_CLOSED)
        self._state.cancel_by = actor.slack_user_id
        if self._work is not None and not self._work.done():
            self._work.cancel()
        return "cancelling"

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        if email_reply.too_late_to_cancel(self._finished, self._closing, self._state):
            raise ValueError("This task is not running any more.")
        if not request.signature:
            raise ValueError("That request could not be verified (it is not signed).")

    @workflow.update(name=UPDATE_ADD_REPLY)
    def add_reply(self, reply: ThreadReply) -> bool:
        """A reply in the task's thread: the model sees it at its next step. Returns False for a
        redelivery. Refused (by the validator) once the answer is going out or the task has
        taken ``MAX_REPLIES``: ingress then starts a follow-up task, so no reply goes unanswered."""
        if reply.ts in self._state.seen_replies:
            return False
        self._state.seen_replies.append(reply.ts)
        if len(reply.text) > MAX_REPLY_CHARS:
            cut = len(reply.text) - MAX_REPLY_CHARS
            reply = dataclasses.replace(
                reply, text=reply.text[:MAX_REPLY_CHARS] + f" [… {cut} characters cut]"
            )
        self._replies.append(reply)
        return True

    @add_reply.validator
    def _validate_reply(self, reply: ThreadReply) -> None:
        if self._finished or self._closing:
            raise ValueError("This task is finishing; the reply starts a follow-up.")
        if len(self._state.seen_replies) >= MAX_REPLIES and reply.ts not in self._state.seen_replies:
            raise ValueError("This task has taken all the replies it can; the reply starts a follow-up.")

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, task: TaskInput) -> TaskResult:
        self._work = asyncio.create_task(self._agent(task))
        try:
            return await self._work
        except BaseException as err:
            if not is_cancelled_exception(err):
                raise
            await self._cancelled(task)
            if self._state.cancel_by is not None:  # the cancel update: the workflow completes normally
                return TaskResult(status=TaskStatus.CANCELLED, error_type="Cancelled")
            raise  # a Temporal cancellation (an engineer's): the run ends Canceled
        finally:
            self._finished = True

    async def _agent(self, task: TaskInput) -> TaskResult:
        state = self._state
        try:
            if task.resume is None and scheduled.is_scheduled(task):
                claim = await scheduled.open_run(task, state)
                if not claim.run:
                    status.set_status(state, TaskStatus.CANCELLED, "not run")
                    return TaskResult(status=TaskStatus.CANCELLED, error_type="Refused")
            if task.resume is None:
                await self._begin(task)
            else:
                status.set_status(state, TaskStatus.RUNNING, "continuing")
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            return await self._failed(task, err)
        ctx = state.context
        assert ctx is not None
        workflow.upsert_search_attributes([SA_INTENT.value_set(state.intent or "chat")])
        self._progress.start()
        run_steps = 0
        answer: str | None = None
        while answer is None:
            state.messages.extend(self._take_replies())
            if state.llm_steps >= ctx.max_steps:
                answer = prompts.step_limit(ctx.max_steps)
                break
            state.step = f"thinking ({state.tier} tier)"
            try:
                history = compact(state.messages)
                llm = await models.ask(
                    task, state, self._recorder, history, offered(state), reuse_ts=self._streamed_ts
                )
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise
                return await self._failed(task, err)
            state.llm_steps += 1
            run_steps += 1
            # A step that ended in tool calls removed its preview (and the one it reused).
            self._streamed_ts = llm.streamed_ts or (None if llm.tool_calls else self._streamed_ts)
            if not llm.tool_calls:
                if self._replies:  # someone replied while the model was answering: let it see that
                    state.messages.append(ChatMessage(role="assistant", content=llm.content))
                    continue
                answer = llm.content.strip() or prompts.NO_ANSWER
                break
            state.messages.append(
                ChatMessage(role="assistant", content=llm.content, tool_calls=llm.tool_calls)
            )
            for call in llm.tool_calls:
                output = await self._tools.run(call, reason=llm.content)
                state.messages.append(ChatMessage(role="tool", content=output, tool_call_id=call.id))
            if run_steps >= task.steps_per_run or workflow.info().is_continue_as_new_suggested():
                await self._continue_as_new(task)
        return await self._answer(task, answer)

    async def _begin(self, task: TaskInput) -> None:
        """Record the task as running, read its context and classify the request, all at once."""
        state, info = self._state, workflow.info()
        state.started_at = workflow.now().isoformat()
        status.set_status(state, TaskStatus.RUNNING, "starting")
        running = workflow.start_activity_method(
            RecordActivities.task_running,
            TaskStarted(
                workflow_id=info.workflow_id,
                run_id=info.run_id,
                # A scheduled run records the thread it opened, so replies there reach it.
                task=dataclasses.replace(task, thread_ts=thread_of(task, state)),
                started_at=state.started_at,
            ),
            **options.RECORD,
            summary="record task: running",
        )
        context = workflow.start_activity_method(
            ContextActivities.prepare,
            TaskContextRequest(
                workflow_id=info.workflow_id, task=task, with_thread_history=task.with_thread_history
            ),
            **options.CONTEXT,
            summary="read the task's context",
        )
        intent = await child.intent(task, state, self._recorder)
        ctx = state.context = await context
        await running
        state.tier = models.pick_tier(intent, override=ctx.tier_override, requested=task.model_tier)
        state.known_hosts = policy.known_hosts(task.text, task.source)
        # A thread's earlier conversation, memories other people wrote, a mail's or a webhook's
        # body: all from outside.
        state.untrusted_seen = policy.untrusted_at_start(ctx, task.source)
        child.inherit(task, state)
        state.messages = [
            ChatMessage(role="system", content=prompts.environment_prompt(task, ctx, offered(state))),
            *ctx.thread_history,
            ChatMessage(role="user", content=task.text),
        ]

    def _take_replies(self) -> list[ChatMessage]:
        taken = replies.take(self._task, self._state, self._replies)
        self._replies.clear()
        return taken

    # ------------------------------------------------------------------ endings

    async def _answer(self, task: TaskInput, answer: str) -> TaskResult:
        state = self._state
        notices = "".join(f"\n\n_{n}_" for n in state.notices)
        state.step = "answering"
        self._closing = True  # the answer is going out: too late to cancel
        closing.early_flush(self._recorder)  # the step records go alongside the post
        posted = await post(
            task,
            state,
            answer + notices,
            step="answer",
            summary="slack: post answer in thread",
            replace_ts=self._streamed_ts,
        )
        state.answer_ts = posted
        await email_reply.send(task, state, self._gate, self._recorder, answer)
        status.set_status(state, TaskStatus.COMPLETED, "done")
        kind = Progress.DONE if posted else Progress.UNPOSTED
        await self._progress.close(self._progress.view(kind, cancellable=False, steps=state.llm_steps))
        await self._finish(task, TaskStatus.COMPLETED)
        usage = state.usage
        return TaskResult(
            status=TaskStatus.COMPLETED,
            answer_ts=posted,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=round(usage.cost_usd, 6),
            answer=answer if task.delegation else "",  # a sub-task's answer goes to its parent
            llm_steps=state.llm_steps,
        )

    async def _failed(self, task: TaskInput, err: ActivityError) -> TaskResult:
        state = self._state
        state.error_type = kind = models.error_type(err)
        self._closing = True
        budget = kind in models.BUDGET_STOPS
        words = (
            prompts.budget_stopped(models.error_message(err), prompts.done_so_far(state))
            if budget
            else prompts.failed(kind)
        )
        posted = await post(task, state, words, step="failure", summary="slack: tell the user it failed")
        state.answer_ts = posted
        if budget:  # recorded as failed with error type BudgetExceeded/BudgetUnpriced
            status.set_stopped_by_budget(state)
        else:
            status.set_status(state, TaskStatus.FAILED, "failed")
        await self._progress.close(self._progress.view(Progress.STOPPED, cancellable=False))
        await self._finish(task, TaskStatus.FAILED, error_message=models.error_message(err)[:500])
        return TaskResult(
            status=TaskStatus.FAILED, answer_ts=posted, error_type=kind, llm_steps=state.llm_steps
        )

    async def _cancelled(self, task: TaskInput) -> None:
        state = self._state
        status.set_status(state, TaskStatus.CANCELLED, "cancelled")
        state.error_type = "Cancelled"
        by = state.cancel_by
        state.answer_ts = await post(
            task,
            state,
            prompts.cancelled(by),
            step="cancelled",
            summary="slack: tell the user it was cancelled",
            format=False,
        )
        await self._progress.close(self._progress.view(Progress.CANCELLED, cancellable=False, by=by))
        await self._gate.close_for_cancel(by)
        await self._finish(task, TaskStatus.CANCELLED)

    async def _finish(self, task: TaskInput, final: TaskStatus, *, error_message: str | None = None) -> None:
        """Write the last step records and the task's outcome, then let every handler finish."""
        await self._gate.settled()  # an email reply's approval, settled while the mail went out
        await closing.record_finished(task, self._state, self._recorder, final, error_message)
        if scheduled.is_scheduled(task):
            await scheduled.close_run(task, final)
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def _continue_as_new(self, task: TaskInput) -> None:
        """A long task goes on in a new run, carrying its whole state (history stays small)."""
        await self._progress.pause()
        await self._recorder.drain()
        await workflow.wait_condition(workflow.all_handlers_finished)
        state = self._state
        state.messages = compact([*state.messages, *self._take_replies()])
        workflow.continue_as_new(dataclasses.replace(task, resume=state))
