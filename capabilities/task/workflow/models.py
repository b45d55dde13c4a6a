"""Model calls of the task workflow: the intent classification, and one agent step with tier
escalation (fast -> default -> frontier), a trimmed retry after a 400, and the fallback provider.

The decisions are pure functions (:func:`escalation_path`, :func:`after_failure`,
:func:`parse_intent`); :func:`classify` and :func:`ask` run the ``llm.chat`` activity by them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from capabilities.task.activities.llm import LlmActivities
    from capabilities.tools.activities import registry
from capabilities.task.contracts.task import TaskInput, TaskState
from capabilities.task.workflow import options, prompts
from capabilities.task.workflow.compaction import trim_for_retry
from capabilities.task.workflow.recorder import StepRecorder
from capabilities.tools.contracts import WorkspaceTool
from lucy.contracts.errors import ErrorType
from lucy.contracts.ids import TaskIntent
from lucy.contracts.llm import (
    ChatMessage,
    LlmProvider,
    LlmRequest,
    LlmResponse,
    ModelTier,
    StreamTarget,
    ToolSchema,
)

TIER_LADDER = (ModelTier.FAST, ModelTier.DEFAULT, ModelTier.FRONTIER)
ESCALATE_ON = frozenset({ErrorType.LLM_RETRYABLE, ErrorType.LLM_BAD_RESPONSE, "TimeoutError"})
INTENT_TIERS = {
    TaskIntent.LOOKUP: ModelTier.FAST,
    TaskIntent.CHAT: ModelTier.DEFAULT,
    TaskIntent.TOOL_USE: ModelTier.DEFAULT,
    TaskIntent.REASONING: ModelTier.FRONTIER,
    TaskIntent.CODE: ModelTier.CODE,
}

TRIM, ESCALATE, FALLBACK, FAIL = "trim", "escalate", "fallback", "fail"
BUDGET_STOPS = frozenset({ErrorType.BUDGET_EXCEEDED, ErrorType.BUDGET_UNPRICED})


def escalation_path(tier: ModelTier) -> list[ModelTier]:
    """The tiers to try, in order: the requested one, then the stronger ones of the ladder."""
    if tier in TIER_LADDER:
        return list(TIER_LADDER[TIER_LADDER.index(tier) :])
    return [tier, ModelTier.FRONTIER]  # a specialised tier (code, research...) falls back to frontier


def after_failure(kind: str, *, tier_index: int, tiers: int, provider: str, trimmed: bool) -> str:
    """What to do after a model call failed with error type ``kind``: retry once trimmed (a 400),
    escalate to the next tier (unavailable), try the fallback provider, or give up (401/402,
    or nothing left to try)."""
    if kind in BUDGET_STOPS:
        return FAIL  # a budget applies to every tier and provider alike
    if kind == ErrorType.LLM_REJECTED and not trimmed:
        return TRIM
    primary = provider == LlmProvider.PRIMARY.value
    if kind in ESCALATE_ON and tier_index + 1 < tiers and primary:
        return ESCALATE
    if primary and kind in (*ESCALATE_ON, ErrorType.LLM_REJECTED):
        return FALLBACK
    return FAIL


def parse_intent(content: str) -> TaskIntent:
    """The intent in a classification answer (``{"intent": ...}``), or ``chat``."""
    try:
        parsed = json.loads(content)
    except ValueError:
        return TaskIntent.CHAT
    guess = parsed.get("intent") if isinstance(parsed, dict) else None
    return TaskIntent(guess) if isinstance(guess, str) and guess in list(TaskIntent) else TaskIntent.CHAT


def pick_tier(intent: TaskIntent, *, override: ModelTier | None, requested: ModelTier) -> ModelTier:
    """The tier for this task: a user's, channel's or workspace's preference, the request's,
    or the one the intent suggests."""
    chosen = requested if requested != ModelTier.DEFAULT else None
    return override or chosen or INTENT_TIERS.get(intent, ModelTier.DEFAULT)


def error_type(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    return type(cause).__name__ if cause is not None else "ActivityError"


def error_message(err: ActivityError) -> str:
    cause = err.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or err)


def account(state: TaskState, llm: LlmResponse) -> None:
    usage = state.usage
    usage.model = llm.model
    usage.prompt_tokens += llm.prompt_tokens
    usage.completion_tokens += llm.completion_tokens
    usage.cost_usd += llm.cost_usd


async def classify(task: TaskInput, state: TaskState, recorder: StepRecorder) -> TaskIntent:
    """The request's intent, on the fast tier; any failure means "chat" (never fatal)."""
    state.step = "classifying"
    request = LlmRequest(
        messages=[
            ChatMessage(role="system", content=prompts.CLASSIFY_PROMPT),
            ChatMessage(role="user", content=task.text[:4_000]),
        ],
        tier=ModelTier.FAST,
        json_object=True,
        max_tokens=60,
        temperature=0.0,
        workspace_id=task.workspace_id,
        user_id=task.user_id,
    )
    try:
        llm = await workflow.execute_activity_method(
            LlmActivities.chat,
            request,
            **options.CLASSIFY,
            summary="LLM call: classify intent, fast tier",
        )
    except ActivityError as err:
        if is_cancelled_exception(err):
            raise
        workflow.logger.info("intent classification failed; assuming chat", extra={"error": error_type(err)})
        state.intent = TaskIntent.CHAT
        return TaskIntent.CHAT
    state.intent = intent = parse_intent(llm.content)
    account(state, llm)
    recorder.add(
        kind="llm_call", name="classify", status="completed", output={"intent": state.intent}, llm=llm
    )
    return intent


def stream_target(task: TaskInput, state: TaskState, reuse_ts: str | None) -> StreamTarget | None:
    """Where the answer is streamed while it is written: the task's thread (none yet: no stream).
    ``reuse_ts``: a message an earlier step streamed into, rewritten rather than repeated."""
    thread = state.thread_ts or task.thread_ts
    if not thread or task.delegation is not None:  # a sub-task's answer goes to its parent
        return None
    return StreamTarget(
        channel=task.slack_channel_id,
        thread_ts=thread,
        recipient_user_id=task.slack_user_id,
        recipient_team_id=task.slack_team_id,
        reuse_ts=reuse_ts,
    )


@dataclass
class _Attempt:
    """Where :func:`ask` stands: the tier tried, the provider, and whether the context was trimmed."""

    messages: list[ChatMessage]
    specs: list[ToolSchema]
    index: int = 0
    provider: str = LlmProvider.PRIMARY.value
    trimmed: bool = False
    first_error: ActivityError | None = None


async def ask(
    task: TaskInput,
    state: TaskState,
    recorder: StepRecorder,
    messages: list[ChatMessage],
    tools: list[str],
    *,
    reuse_ts: str | None = None,
) -> LlmResponse:
    """One agent step, as resiliently as the providers allow (see :func:`after_failure`).
    Records the step and its cost; raises the primary's error when everything failed. The
    answer is streamed into the task's thread where the worker streams (``streamed_ts``)."""
    attempt = _Attempt(messages=messages, specs=registry.for_task(_workspace_tools(state)).schemas(tools))
    tiers = escalation_path(state.tier or ModelTier.DEFAULT)
    while True:
        state.tier = tier = tiers[attempt.index]
        request = _chat_request(task, state, attempt, tier, reuse_ts)
        fallback = " (fallback provider)" if attempt.provider != LlmProvider.PRIMARY.value else ""
        try:
            llm = await workflow.execute_activity_method(
                LlmActivities.chat,
                request,
                **options.LLM,
                summary=f"LLM call: {state.tier} tier{fallback}",
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            _recover(attempt, err, tiers)
            continue
        _record_answer(state, recorder, llm)
        return llm


def _workspace_tools(state: TaskState) -> list[WorkspaceTool]:
    return state.context.workspace_tools if state.context is not None else []


def _chat_request(
    task: TaskInput, state: TaskState, attempt: _Attempt, tier: ModelTier, reuse_ts: str | None
) -> LlmRequest:
    """The ``llm.chat`` input for this attempt on ``tier``."""
    return LlmRequest(
        messages=attempt.messages,
        tier=tier,
        tools=attempt.specs or None,
        provider=attempt.provider,
        workspace_id=task.workspace_id,
        user_id=task.user_id,
        stream_to=stream_target(task, state, reuse_ts),
    )


def _recover(attempt: _Attempt, err: ActivityError, tiers: list[ModelTier]) -> None:
    """Set ``attempt`` up for the next try after ``err`` (see :func:`after_failure`), or raise
    when nothing is left: the primary's error when the fallback is not configured."""
    kind = error_type(err)
    action = after_failure(
        kind, tier_index=attempt.index, tiers=len(tiers), provider=attempt.provider, trimmed=attempt.trimmed
    )
    if action == TRIM:
        attempt.trimmed, attempt.messages = True, trim_for_retry(attempt.messages)
        attempt.specs = []  # a tool schema is a common cause
        workflow.logger.info("LLM rejected the request; retrying once with a trimmed context")
    elif action == ESCALATE:
        attempt.index += 1
        workflow.logger.warning("LLM tier unavailable; escalating", extra={"to": tiers[attempt.index]})
    elif action == FALLBACK:
        attempt.first_error, attempt.provider = err, LlmProvider.FALLBACK.value
        workflow.logger.warning("primary LLM provider failing; trying the fallback provider")
    elif attempt.first_error is not None and kind == ErrorType.LLM_NOT_CONFIGURED:
        raise attempt.first_error from attempt.first_error.cause  # no fallback: the primary's error stands
    else:
        raise err


def _record_answer(state: TaskState, recorder: StepRecorder, llm: LlmResponse) -> None:
    """Count the answer's cost and record the step."""
    account(state, llm)
    recorder.add(
        kind="llm_call",
        name=f"{state.tier} tier",
        status="completed",
        output={
            "tool_calls": [c.name for c in llm.tool_calls],
            "finish_reason": llm.finish_reason or "",
            "provider": llm.provider,
        },
        llm=llm,
    )
