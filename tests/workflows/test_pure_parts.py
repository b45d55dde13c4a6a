"""The task workflow's pure parts, as plain functions: fast, no server."""

from __future__ import annotations

from capabilities.task.contracts.task import TaskContext, TaskInput, TaskState
from capabilities.task.workflow import breaker, compaction, models, prompts
from capabilities.task.workflow.models import ESCALATE, FAIL, FALLBACK, TRIM
from lucy.contracts.errors import ErrorType
from lucy.contracts.llm import ChatMessage

TASK = TaskInput(
    workspace_id="w",
    user_id="u",
    channel_id="c",
    slack_team_id="T1",
    slack_user_id="U1",
    slack_channel_id="C1",
    thread_ts="1.1",
    message_ts="1.1",
    text="hi",
)


def test_the_escalation_ladder():
    assert models.escalation_path("fast") == ["fast", "default", "frontier"]
    assert models.escalation_path("default") == ["default", "frontier"]
    assert models.escalation_path("frontier") == ["frontier"]
    assert models.escalation_path("code") == ["code", "frontier"]


def test_what_follows_a_failed_model_call():
    def after(
        kind: str, *, index: int = 0, tiers: int = 2, provider: str = "primary", trimmed: bool = False
    ) -> str:
        return models.after_failure(kind, tier_index=index, tiers=tiers, provider=provider, trimmed=trimmed)

    assert after(ErrorType.LLM_REJECTED) == TRIM
    assert after(ErrorType.LLM_REJECTED, trimmed=True) == FALLBACK
    assert after(ErrorType.LLM_RETRYABLE) == ESCALATE
    assert after("TimeoutError", index=1) == FALLBACK  # the last tier: the other provider
    assert after(ErrorType.LLM_RETRYABLE, provider="fallback") == FAIL
    for final in (ErrorType.LLM_UNAUTHORIZED, ErrorType.LLM_PAYMENT_REQUIRED, ErrorType.LLM_NOT_CONFIGURED):
        assert after(final) == FAIL, final


def test_intent_and_tier():
    assert models.parse_intent('{"intent": "code"}') == "code"
    assert models.parse_intent('{"intent": "rm -rf"}') == "chat"
    assert models.parse_intent("not json") == "chat"
    assert models.parse_intent("[1]") == "chat"
    assert models.pick_tier("lookup", override=None, requested="default") == "fast"
    assert models.pick_tier("lookup", override="research", requested="default") == "research"
    assert models.pick_tier("chat", override=None, requested="code") == "code"


def test_compaction_drops_the_oldest_tool_outputs_but_keeps_the_pairs():
    messages = [
        ChatMessage(role="system", content="s"),
        ChatMessage(role="user", content="q"),
        *(ChatMessage(role="tool", content="x" * 1_000, tool_call_id=f"c{i}") for i in range(5)),
    ]
    out = compaction.compact(messages, budget=2_500)
    assert len(out) == len(messages) and [m.tool_call_id for m in out] == [m.tool_call_id for m in messages]
    assert [m.content == compaction.REMOVED for m in out[2:]] == [True, True, True, False, False]
    assert sum(len(m.content) for m in out) <= 2_500
    assert compaction.compact(messages) == messages  # within the default budget: unchanged


def test_a_trimmed_retry_keeps_the_request_and_the_latest_results():
    messages = [
        ChatMessage(role="system", content="s"),
        ChatMessage(role="user", content="q" * 20_000),
        ChatMessage(role="assistant", content="", tool_calls=[]),
        *(ChatMessage(role="tool", content=f"r{i}", tool_call_id=f"c{i}") for i in range(3)),
    ]
    trimmed = compaction.trim_for_retry(messages)
    assert [m.role for m in trimmed] == ["system", "user", "user"]
    assert len(trimmed[1].content) < 9_000 and "r1" in trimmed[2].content and "r0" not in trimmed[2].content


def test_the_circuit_breaker():
    state = TaskState()
    for _ in range(breaker.FAILURE_LIMIT - 1):
        breaker.failed(state, "browser", ErrorType.TOOL_RETRYABLE)
    assert state.unavailable_tools == []
    breaker.succeeded(state, "browser")
    for _ in range(breaker.FAILURE_LIMIT):
        breaker.failed(state, "browser", ErrorType.TOOL_RETRYABLE)
    assert state.unavailable_tools == ["browser"] and "failed 3 times" in state.notices[-1]
    breaker.failed(state, "web_fetch", ErrorType.TOOL_BLOCKED)
    assert "web_fetch" in state.unavailable_tools and "does not allow the web_fetch tool" in state.notices[-1]
    state.tool_state.update({"tab_id": "t1", "url": "https://a.example", "other": "kept"})
    breaker.failed(state, "browser", ErrorType.EGRESS_DENIED)  # a refused address closes the tab
    assert state.tool_state == {"other": "kept"}


def test_prompts():
    ctx = TaskContext(task_id="t", channel_name="ops", user_name="Alice", local_time="Mon 09:00 (UTC)")
    system = prompts.environment_prompt(TASK, ctx, ["exec"])
    assert "#ops" in system and "<@U1> (Alice)" in system and "Tools you can use: exec" in system
    assert prompts.UNTRUSTED_NOTE in system
    assert "No tools are available" in prompts.environment_prompt(TASK, ctx, [])
    assert prompts.failed(ErrorType.LLM_PAYMENT_REQUIRED).startswith(
        "Sorry, I couldn't finish this one: the language"
    )
    assert prompts.not_run("gateway exec: ls", "expired", None).startswith(
        "Not run: the approval for gateway exec: ls expired"
    )
    assert "rejected by <@UB>" in prompts.not_run("x", "rejected", "UB")
    assert "could not be shown" in prompts.not_run("x", "refused", None)
