"""``LucyTaskWorkflow``: one Slack request, answered in its thread.

Steps (each an activity): record the task as running -> ask the LLM -> post the answer in the
thread -> record the task completed with tokens and cost. When the LLM finally fails, the user
gets one short, friendly message in the thread and the task is recorded as failed: the
workflow itself completes, carrying ``LucyStatus=failed``, so nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.llm import LlmActivities
    from activities.records import RecordActivities
    from activities.slack import SlackActivities
    from lucy.contracts import (
        SA_STATUS,
        TASK_WORKFLOW_NAME,
        ChatMessage,
        ErrorType,
        LlmRequest,
        LlmResponse,
        PostMessageRequest,
        TaskFinished,
        TaskInput,
        TaskResult,
        TaskStarted,
        TaskStatus,
        idempotency_key,
    )

# Retry policies and timeouts, named so the Temporal UI and this file tell the same story.
RECORD_TIMEOUT = timedelta(seconds=30)
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,  # a database that is down comes back; the task waits for it
    non_retryable_error_types=["DatabaseRejected"],
)
RECORD_DEADLINE = timedelta(hours=1)

LLM_TIMEOUT = timedelta(seconds=150)
LLM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=5,
    non_retryable_error_types=[
        ErrorType.LLM_REJECTED,
        ErrorType.LLM_UNAUTHORIZED,
        ErrorType.LLM_PAYMENT_REQUIRED,
        ErrorType.LLM_NOT_CONFIGURED,
    ],
)

SLACK_TIMEOUT = timedelta(seconds=20)
SLACK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=20,
    non_retryable_error_types=[ErrorType.SLACK_REJECTED, ErrorType.SLACK_NOT_CONFIGURED],
)
SLACK_DEADLINE = timedelta(minutes=30)

PATCH_LLM_ESCALATION = "llm-escalation-v1"
TIER_LADDER = ("fast", "default", "frontier")
ESCALATE_ON = frozenset({ErrorType.LLM_RETRYABLE, ErrorType.LLM_BAD_RESPONSE, "TimeoutError"})
CONTEXT_TRIM_CHARS = 8_000


def escalation_path(tier: str) -> list[str]:
    """The tiers to try, in order: the requested one, then the stronger ones of the ladder."""
    if tier in TIER_LADDER:
        return list(TIER_LADDER[TIER_LADDER.index(tier) :])
    return [tier, "frontier"]  # a specialised tier (code, research...) falls back to frontier


def trim_context(messages: list[ChatMessage]) -> list[ChatMessage]:
    """Keep the system prompt and the latest message; shorten the latest to its head and tail."""
    system = [m for m in messages if m.role == "system"][:1]
    last = messages[-1]
    content = last.content
    if len(content) > CONTEXT_TRIM_CHARS:
        half = CONTEXT_TRIM_CHARS // 2
        content = content[:half] + "\n[…]\n" + content[-half:]
    elif len(content) > 200:
        content = content[: len(content) // 2] + "\n[…]"
    return [*system, ChatMessage(role=last.role, content=content)]


SYSTEM_PROMPT = (
    "You are Lucy, an AI coworker in a Slack workspace. Answer the request directly and "
    "concisely, in plain language suitable for a Slack thread. If you are unsure, say so."
)

_FRIENDLY_LLM_FAILURE: dict[str, str] = {
    ErrorType.LLM_UNAUTHORIZED: "the language model refused my credentials",
    ErrorType.LLM_PAYMENT_REQUIRED: "the language model account is out of credit",
    ErrorType.LLM_NOT_CONFIGURED: "no language model is configured yet",
    ErrorType.LLM_REJECTED: "the language model could not accept this request",
}


@dataclass
class TaskState:
    """Everything the workflow knows; one object so queries and continue-as-new stay simple."""

    status: str = TaskStatus.CREATED.value
    step: str = "created"
    llm: LlmResponse | None = None
    answer_ts: str | None = None
    error_type: str | None = None


def _error_type(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    return type(cause).__name__ if cause is not None else "ActivityError"


@workflow.defn(name=TASK_WORKFLOW_NAME)
class LucyTaskWorkflow:
    @workflow.init
    def __init__(self, task: TaskInput) -> None:
        self._task = task
        self._state = TaskState()

    @workflow.query(name="status")
    def status(self) -> dict[str, str | None]:
        """Current status and step, for the CLI and UI."""
        return {"status": self._state.status, "step": self._state.step}

    def _set_status(self, status: TaskStatus, step: str) -> None:
        self._state.status = status.value
        self._state.step = step
        workflow.upsert_search_attributes([SA_STATUS.value_set(status.value)])

    @workflow.run
    async def run(self, task: TaskInput) -> TaskResult:
        try:
            return await self._work(task)
        except BaseException as err:
            # Cancellation was requested (``/lucy cancel``): the in-flight activity is abandoned;
            # tell the user and keep the record, then end as Canceled in Temporal.
            if is_cancelled_exception(err) and self._state.status != TaskStatus.CANCELLED.value:
                await self._cancelled(task)
            raise

    async def _cancelled(self, task: TaskInput) -> None:
        self._set_status(TaskStatus.CANCELLED, "cancelled")
        posted = await self._post(
            task,
            "Cancelled: I stopped working on this, as requested.",
            step="cancelled",
            summary="slack: tell the user it was cancelled",
        )
        await self._record_finished(
            TaskFinished(
                workflow_id=workflow.info().workflow_id,
                workspace_id=task.workspace_id,
                status=TaskStatus.CANCELLED.value,
                error_type="Cancelled",
                answer_ts=posted,
            )
        )

    async def _work(self, task: TaskInput) -> TaskResult:
        info = workflow.info()
        self._set_status(TaskStatus.RUNNING, "recording")
        await workflow.execute_activity_method(
            RecordActivities.task_running,
            TaskStarted(workflow_id=info.workflow_id, run_id=info.run_id, task=task),
            start_to_close_timeout=RECORD_TIMEOUT,
            schedule_to_close_timeout=RECORD_DEADLINE,
            retry_policy=RECORD_RETRY,
            summary="record task: running",
        )

        self._state.step = "thinking"
        messages = [
            ChatMessage(role="system", content=SYSTEM_PROMPT),
            ChatMessage(role="user", content=task.text),
        ]
        try:
            if workflow.patched(PATCH_LLM_ESCALATION):
                llm = await self._ask_llm(task.model_tier, messages)
            else:  # runs started before escalation existed replay the single call they made
                llm = await self._llm_call(task.model_tier, messages)
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            return await self._fail(task, err)
        self._state.llm = llm

        self._state.step = "answering"
        answer = llm.content.strip() or "I have no answer to that."
        posted = await self._post(task, answer, step="answer", summary="slack: post answer in thread")
        self._state.answer_ts = posted

        self._set_status(TaskStatus.COMPLETED, "done")
        await self._record_finished(
            TaskFinished(
                workflow_id=info.workflow_id,
                workspace_id=task.workspace_id,
                status=TaskStatus.COMPLETED.value,
                model=llm.model,
                prompt_tokens=llm.prompt_tokens,
                completion_tokens=llm.completion_tokens,
                cost_usd=llm.cost_usd,
                answer_ts=posted,
                result_data={"answer_ts": posted or ""},
            )
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return TaskResult(
            status=TaskStatus.COMPLETED.value,
            answer_ts=posted,
            prompt_tokens=llm.prompt_tokens,
            completion_tokens=llm.completion_tokens,
            cost_usd=llm.cost_usd,
        )

    async def _llm_call(self, tier: str, messages: list[ChatMessage]) -> LlmResponse:
        return await workflow.execute_activity_method(
            LlmActivities.chat,
            LlmRequest(messages=messages, tier=tier),
            start_to_close_timeout=LLM_TIMEOUT,
            retry_policy=LLM_RETRY,
            summary=f"LLM call: {tier} tier",
        )

    async def _ask_llm(self, tier: str, messages: list[ChatMessage]) -> LlmResponse:
        """One answer, as resiliently as the providers allow.

        * A model that stays unavailable through its retries (429/5xx/timeouts/garbage) is
          escalated to the next tier: fast -> default -> frontier.
        * A 400 is answered once by trimming the context and asking again.
        * 401/402 (credentials, credit) are not escalated: another model cannot fix them.
        """
        tiers = escalation_path(tier)
        trimmed = False
        index = 0
        while True:
            current = tiers[index]
            self._state.step = f"thinking ({current} tier)"
            try:
                return await self._llm_call(current, messages)
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise
                kind = _error_type(err)
                if kind == ErrorType.LLM_REJECTED and not trimmed:
                    trimmed = True
                    messages = trim_context(messages)
                    workflow.logger.info("LLM rejected the request; retrying once with a trimmed context")
                    continue
                if kind in ESCALATE_ON and index + 1 < len(tiers):
                    index += 1
                    workflow.logger.warning(
                        "LLM tier unavailable; escalating", extra={"from": current, "to": tiers[index]}
                    )
                    continue
                raise

    async def _post(self, task: TaskInput, text: str, *, step: str, summary: str) -> str | None:
        """Post in the task's thread; returns the message ts, or None if Slack refused for good."""
        try:
            result = await workflow.execute_activity_method(
                SlackActivities.post_message,
                PostMessageRequest(
                    channel=task.slack_channel_id,
                    text=text,
                    thread_ts=task.thread_ts,
                    idempotency_key=idempotency_key(workflow.info().workflow_id, step),
                ),
                start_to_close_timeout=SLACK_TIMEOUT,
                schedule_to_close_timeout=SLACK_DEADLINE,
                retry_policy=SLACK_RETRY,
                summary=summary,
            )
        except ActivityError as err:
            if is_cancelled_exception(err) and self._state.status != TaskStatus.CANCELLED.value:
                raise
            workflow.logger.warning("could not post to Slack", extra={"error_type": _error_type(err)})
            self._state.error_type = self._state.error_type or _error_type(err)
            return None
        return result.ts

    async def _fail(self, task: TaskInput, err: ActivityError) -> TaskResult:
        error_type = _error_type(err)
        self._state.error_type = error_type
        reason = _FRIENDLY_LLM_FAILURE.get(error_type, "the language model is not answering right now")
        message = (
            f"Sorry, I couldn't finish this one: {reason}. "
            "Nothing was lost; the team can look this task up and try again."
        )
        posted = await self._post(task, message, step="failure", summary="slack: tell the user it failed")
        self._set_status(TaskStatus.FAILED, "failed")
        cause = err.cause
        await self._record_finished(
            TaskFinished(
                workflow_id=workflow.info().workflow_id,
                workspace_id=task.workspace_id,
                status=TaskStatus.FAILED.value,
                error_type=error_type,
                error_message=(cause.message if isinstance(cause, ApplicationError) else str(err))[:500],
                answer_ts=posted,
            )
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return TaskResult(status=TaskStatus.FAILED.value, answer_ts=posted, error_type=error_type)

    async def _record_finished(self, finished: TaskFinished) -> None:
        finished = dataclasses.replace(
            finished, occurred_at=workflow.now().isoformat(), user_id=self._task.user_id or None
        )
        await workflow.execute_activity_method(
            RecordActivities.task_finished,
            finished,
            start_to_close_timeout=RECORD_TIMEOUT,
            schedule_to_close_timeout=RECORD_DEADLINE,
            retry_policy=RECORD_RETRY,
            summary=f"record task: {finished.status}",
        )
