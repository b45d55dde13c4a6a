"""``llm.chat`` streaming its answer into Slack, for real: ActivityEnvironment, the fake
OpenRouter server speaking SSE, the fake Slack speaking chat.startStream/appendStream/
stopStream with Slack's errors, and the real ``slack.post_message`` posting the final answer
over the streamed message."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from capabilities.budgets.activities import BudgetGuard
from capabilities.task.activities.llm import LlmActivities
from capabilities.task.activities.slack import ChannelPacer, SlackActivities
from capabilities.task.views.stream import StreamText, neutral
from lucy.contracts.errors import ErrorType
from lucy.contracts.llm import ChatMessage, LlmRequest, LlmResponse, StreamTarget
from lucy.contracts.slack import PostMessageRequest
from lucy.settings import Settings, load_settings
from lucy.slack.text import prepare
from tests.activities.test_llm_budget import _rows, _workspace
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack

CHANNEL = "C0STREAM"
SECRET = "sk-or-v1-" + "a1b2c3d4e5f6" * 4
ANSWER = (
    "## Plan\n\nHere is **what I found** about the <!channel> question, cc <@U0BOSS>:\n\n"
    "- first, the [docs](https://example.com/docs) say *yes*\n"
    "- second, `code & more` works\n\n" + "More words follow here. " * 60
)


@pytest.fixture
async def slack(fake_slack: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    yield AsyncWebClient(token=fake_slack.token, base_url=fake_slack.api_url, timeout=5, retry_handlers=[])


def _llm(http: httpx.AsyncClient, fake_llm: FakeLlm, slack: AsyncWebClient, **kw: Any) -> LlmActivities:
    settings = load_settings(openrouter_api_key=fake_llm.api_key, openrouter_base_url=fake_llm.base_url, **kw)
    return LlmActivities(http, settings.llm, slack=slack)


def _request(thread: str, **kw: Any) -> LlmRequest:
    return LlmRequest(
        messages=[ChatMessage(role="user", content="tell me")],
        stream_to=StreamTarget(channel=CHANNEL, thread_ts=thread, recipient_user_id="U0ALICE"),
        **kw,
    )


def _env(attempt: int = 1, details: Any = None) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        workflow_id=f"wf-{uuid.uuid4().hex[:8]}",
        attempt=attempt,
        heartbeat_details=list(details or []),
    )
    return env


async def _post_answer(slack: AsyncWebClient, thread: str, text: str, replace_ts: str | None) -> None:
    """What the task workflow does next: the answer through the output pipeline."""
    acts = SlackActivities(slack, ChannelPacer(0))
    request = PostMessageRequest(
        channel=CHANNEL, text=text, idempotency_key=f"k-{thread}", thread_ts=thread, replace_ts=replace_ts
    )
    await _env().run(acts.post_message, request)


def _thread(fake_slack: FakeSlack, thread: str) -> list[dict[str, Any]]:
    return [m for m in fake_slack.posted(CHANNEL) if m.get("thread_ts") == thread]


def _stream_calls(fake_slack: FakeSlack) -> list[str]:
    return [c.method for c in fake_slack.calls if "Stream" in c.method]


async def test_streamed_answer_is_buffered_and_ends_as_the_non_streamed_answer(
    fake_slack: FakeSlack, fake_llm: FakeLlm, slack: AsyncWebClient
):
    thread = fake_slack.add_message(CHANNEL, "tell me")
    fake_llm.then(content=ANSWER, cost=0.0031, prompt_tokens=40, completion_tokens=400)
    async with httpx.AsyncClient() as http:
        result = await _env().run(_llm(http, fake_llm, slack).chat, _request(thread))
    assert fake_llm.requests[-1]["stream"] is True
    assert result.content == ANSWER
    # Usage and cost come from the final SSE chunk.
    assert (result.prompt_tokens, result.completion_tokens, result.cost_usd) == (40, 400, 0.0031)
    assert result.streamed_ts is not None
    calls = _stream_calls(fake_slack)
    assert calls[0] == "chat.startStream" and calls[-1] == "chat.stopStream"
    chunks = -(-len(ANSWER) // 4)
    assert len(calls) < chunks / 10, f"buffered: {len(calls)} calls for {chunks} chunks"
    # Nothing streamed could ping anyone: every <, > and & arrived escaped.
    for call in fake_slack.calls:
        shown = str(call.params.get("markdown_text") or "")
        assert "<!channel>" not in shown and "<@U0BOSS>" not in shown
    live = _thread(fake_slack, thread)
    assert len(live) == 1 and live[0]["text"] == neutral(ANSWER)  # all of it, once, escaped
    assert "[docs] (https://example.com/docs)" in live[0]["text"]  # a link, but no label

    await _post_answer(slack, thread, result.content, result.streamed_ts)
    final = _thread(fake_slack, thread)
    assert [m["ts"] for m in final] == [result.streamed_ts]  # one message, the streamed one
    assert final[0]["text"] == prepare(ANSWER)[0]  # exactly what the non-streamed path posts
    assert final[0]["metadata"]["event_payload"]["idempotency_key"] == f"k-{thread}"


async def test_a_streamed_link_label_cannot_lie_about_its_target(
    fake_slack: FakeSlack, fake_llm: FakeLlm, slack: AsyncWebClient
):
    thread = fake_slack.add_message(CHANNEL, "tell me")
    text = "Sign in at [https://okta.example.com](https://evil.example/login) or [here][1].\n\n[1]: https://evil.example\n"
    fake_llm.then(content=text + "More words follow here. " * 20)
    async with httpx.AsyncClient() as http:
        await _env().run(_llm(http, fake_llm, slack).chat, _request(thread))
    shown = "".join(str(c.params.get("markdown_text") or "") for c in fake_slack.calls)
    assert "https://okta.example.com] (https://evil.example/login)" in shown
    assert "](" not in shown and "][" not in shown and "]:" not in shown


async def test_an_escaping_heavy_preview_stays_within_slacks_markdown_text_limit(
    fake_slack: FakeSlack, fake_llm: FakeLlm, slack: AsyncWebClient
):
    thread = fake_slack.add_message(CHANNEL, "tell me")
    fake_llm.then(content="&&&& " * 720)  # 3,600 characters, 15,120 once escaped
    async with httpx.AsyncClient() as http:
        result = await _env().run(_llm(http, fake_llm, slack).chat, _request(thread))
    sent = [str(c.params.get("markdown_text") or "") for c in fake_slack.calls if "Stream" in c.method]
    assert sum(len(t) for t in sent) <= 12_000 and sent[0].startswith("&amp;&amp;")
    assert not [c for c in fake_slack.calls if c.method == "chat.update"]  # never refused
    assert result.streamed_ts is not None


async def test_a_long_answer_is_split_after_the_streamed_first_part(
    fake_slack: FakeSlack, fake_llm: FakeLlm, slack: AsyncWebClient
):
    thread = fake_slack.add_message(CHANNEL, "tell me")
    long = "A sentence of the long answer. " * 300
    fake_llm.then(content=long)
    async with httpx.AsyncClient() as http:
        result = await _env().run(_llm(http, fake_llm, slack).chat, _request(thread))
    await _post_answer(slack, thread, result.content, result.streamed_ts)
    assert [m["text"] for m in _thread(fake_slack, thread)] == prepare(long)
    assert len(prepare(long)) > 1


@pytest.mark.parametrize(
    "secret", [SECRET, "xoxb-1234567890-abcdefghijklmnop", "Bearer abcdefghijklmnopqrstuvwxyz0123"]
)
def test_a_secret_split_anywhere_is_never_shown(secret: str):
    text = f"Use this: {secret} and keep it safe.\nThen run it again."
    body = secret.split()[-1][4:]  # what must never be seen, even in part
    for cut in range(1, len(text)):
        for step in (1, 3, 7):
            stream = StreamText()
            shown = ""
            pieces = [text[:cut], *(text[i : i + step] for i in range(cut, len(text), step))]
            for piece in pieces:
                stream.add(piece)
                shown += stream.take()
            shown += stream.take(final=True)
            assert body[:6] not in shown, (cut, step, shown)
            assert shown.endswith("again.") and "[redacted]" in shown


async def test_a_secret_split_across_chunks_never_reaches_slack(
    fake_slack: FakeSlack, fake_llm: FakeLlm, slack: AsyncWebClient
):
    thread = fake_slack.add_message(CHANNEL, "tell me")
    text = f"The key is {SECRET} so use it.\n" + "Padding words here. " * 30
    cut = text.index(SECRET) + 8  # "sk-or-v1" is not yet a key; "sk-or-v1-a1b2..." is
    fake_llm.then(content=text, chunks=[text[:cut], text[cut : cut + 9], text[cut + 9 :]])
    async with httpx.AsyncClient() as http:
        result = await _env().run(_llm(http, fake_llm, slack).chat, _request(thread))
    await _post_answer(slack, thread, result.content, result.streamed_ts)
    for call in fake_slack.calls:
        assert SECRET[:8] not in str(call.params), call
    assert "[redacted]" in _thread(fake_slack, thread)[0]["text"]


async def test_a_retried_attempt_rewrites_the_message_of_the_failed_one(
    fake_slack: FakeSlack, fake_llm: FakeLlm, slack: AsyncWebClient
):
    thread = fake_slack.add_message(CHANNEL, "tell me")
    fake_llm.then(content=ANSWER, drop_after=40).then(content=ANSWER)
    beats: list[Any] = []
    first = _env()
    first.on_heartbeat = lambda *details: beats.extend(details)
    async with httpx.AsyncClient() as http:
        llm = _llm(http, fake_llm, slack)
        with pytest.raises(ApplicationError) as failed:
            await first.run(llm.chat, _request(thread))
        assert failed.value.type == ErrorType.LLM_RETRYABLE
        started = [b for b in beats if isinstance(b, dict) and b.get("stream_ts")]
        assert started, "the stream's ts is in the heartbeat details"
        ts = started[-1]["stream_ts"]
        assert len(_thread(fake_slack, thread)) == 1  # the half answer is there
        result = await _env(attempt=2, details=[started[-1]]).run(llm.chat, _request(thread))
    assert result.streamed_ts == ts
    await _post_answer(slack, thread, result.content, result.streamed_ts)
    final = _thread(fake_slack, thread)
    assert [m["ts"] for m in final] == [ts]  # one answer message, complete
    assert final[0]["text"] == prepare(ANSWER)[0]
    assert len(fake_slack.calls_to("chat.startStream")) == 1


async def test_an_expired_stream_falls_back_to_chat_update(
    fake_slack: FakeSlack, fake_llm: FakeLlm, slack: AsyncWebClient
):
    thread = fake_slack.add_message(CHANNEL, "tell me")
    fake_slack.stream_idle_s = 0.0  # every append finds the stream expired
    fake_llm.tokens_per_s = 400
    try:
        fake_llm.then(content=ANSWER)
        async with httpx.AsyncClient() as http:
            result = await _env().run(_llm(http, fake_llm, slack).chat, _request(thread))
    finally:
        fake_slack.stream_idle_s, fake_llm.tokens_per_s = 300.0, 0.0
    errors = [c for c in fake_slack.calls if c.method == "chat.appendStream"]
    assert errors, "an append was tried and refused"
    assert fake_slack.calls_to("chat.update"), "the same message was updated in place"
    await _post_answer(slack, thread, result.content, result.streamed_ts)
    final = _thread(fake_slack, thread)
    assert [m["ts"] for m in final] == [result.streamed_ts]
    assert final[0]["text"] == prepare(ANSWER)[0]


async def test_a_rate_limited_append_waits_and_loses_nothing(
    fake_slack: FakeSlack, fake_llm: FakeLlm, slack: AsyncWebClient
):
    thread = fake_slack.add_message(CHANNEL, "tell me")
    fake_slack.fail("chat.appendStream", status=429, retry_after=1)
    fake_llm.tokens_per_s = 400  # about a second of answer: an append is due meanwhile
    try:
        fake_llm.then(content=ANSWER)
        async with httpx.AsyncClient() as http:
            result = await _env().run(_llm(http, fake_llm, slack).chat, _request(thread))
    finally:
        fake_llm.tokens_per_s = 0.0
    assert fake_slack.faults[0].times == 0, "an append was rate limited"
    assert not fake_slack.calls_to("chat.update")  # still a live stream, not the fallback
    assert _thread(fake_slack, thread)[0]["text"] == neutral(ANSWER)
    assert result.streamed_ts == _thread(fake_slack, thread)[0]["ts"]


async def test_a_refused_stream_means_no_preview_and_the_answer_posted_whole(
    fake_slack: FakeSlack, fake_llm: FakeLlm, slack: AsyncWebClient
):
    thread = fake_slack.add_message(CHANNEL, "tell me")
    fake_slack.stream_refusal = "not_allowed_token_type"
    fake_llm.then(content=ANSWER)
    async with httpx.AsyncClient() as http:
        result = await _env().run(_llm(http, fake_llm, slack).chat, _request(thread))
    assert result.content == ANSWER and result.streamed_ts is None
    assert _stream_calls(fake_slack) == ["chat.startStream"]  # tried once, then left alone
    await _post_answer(slack, thread, result.content, result.streamed_ts)
    assert [m["text"] for m in _thread(fake_slack, thread)] == [prepare(ANSWER)[0]]


async def test_tool_calls_remove_the_preview(fake_slack: FakeSlack, fake_llm: FakeLlm, slack: AsyncWebClient):
    thread = fake_slack.add_message(CHANNEL, "tell me")
    fake_llm.then(content="Let me look that up for you first. ", tool_calls=[("exec", '{"command": "ls"}')])
    async with httpx.AsyncClient() as http:
        result = await _env().run(_llm(http, fake_llm, slack).chat, _request(thread))
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("exec", '{"command": "ls"}')]
    assert result.streamed_ts is None
    assert fake_slack.calls_to("chat.delete")
    assert _thread(fake_slack, thread) == []


@pytest.mark.parametrize("how", ["setting off", "provider does not stream", "no thread"])
async def test_without_streaming_everything_works_as_before(
    how: str, fake_slack: FakeSlack, fake_llm: FakeLlm, slack: AsyncWebClient
):
    thread = fake_slack.add_message(CHANNEL, "tell me")
    fake_llm.then(content=ANSWER, cost=0.002)
    kw = {"llm_streaming": False} if how == "setting off" else {}
    fake_llm.streaming = how != "provider does not stream"
    request = _request(thread) if how != "no thread" else LlmRequest(messages=[ChatMessage("user", "x")])
    try:
        async with httpx.AsyncClient() as http:
            result = await _env().run(_llm(http, fake_llm, slack, **kw).chat, request)
    finally:
        fake_llm.streaming = True
    assert result == LlmResponse(
        content=ANSWER,
        model=fake_llm.requests[-1]["model"],
        prompt_tokens=12,
        completion_tokens=7,
        cost_usd=0.002,
        finish_reason="stop",
    )
    assert fake_llm.requests[-1].get("stream") is (None if how != "provider does not stream" else True)
    assert _stream_calls(fake_slack) == []


async def test_a_streamed_call_is_reserved_and_settled_to_the_cost_in_the_last_chunk(
    settings: Settings, engine: AsyncEngine, fake_slack: FakeSlack, fake_llm: FakeLlm, slack: AsyncWebClient
):
    ws, user = await _workspace(engine, "5")
    thread = fake_slack.add_message(CHANNEL, "tell me")
    fake_llm.then(content=ANSWER, cost=0.0123, prompt_tokens=80, completion_tokens=20)
    config = load_settings(openrouter_api_key=fake_llm.api_key, openrouter_base_url=fake_llm.base_url)
    async with httpx.AsyncClient() as http:
        acts = LlmActivities(http, config.llm, BudgetGuard(engine, settings.budget), slack=slack)
        answer = await _env().run(
            acts.chat, _request(thread, max_tokens=100, workspace_id=str(ws), user_id=str(user))
        )
    assert answer.cost_usd == pytest.approx(0.0123) and answer.streamed_ts
    held, spend = await _rows(engine, ws)
    assert [(h.status, h.cost_usd) for h in held] == [("settled", Decimal("0.012300"))]
    assert spend == (Decimal("0.012300"), Decimal(0))


async def test_the_last_attempt_failing_mid_stream_removes_its_half_answer(
    fake_slack: FakeSlack, fake_llm: FakeLlm, slack: AsyncWebClient
):
    thread = fake_slack.add_message(CHANNEL, "tell me")
    fake_llm.then(content=ANSWER, drop_after=40)
    env = _env(attempt=3)
    env.info = dataclasses.replace(env.info, retry_policy=RetryPolicy(maximum_attempts=3))
    async with httpx.AsyncClient() as http:
        with pytest.raises(ApplicationError):
            await env.run(_llm(http, fake_llm, slack).chat, _request(thread))
    assert fake_slack.calls_to("chat.startStream") and fake_slack.calls_to("chat.delete")
    assert _thread(fake_slack, thread) == []  # the workflow's next try (or its failure) speaks


async def test_a_stream_cut_off_mid_answer_is_settled_at_its_estimate_not_released(
    settings: Settings, engine: AsyncEngine, fake_slack: FakeSlack, fake_llm: FakeLlm, slack: AsyncWebClient
):
    """The provider was generating (and billing) when the stream broke: its hold is counted."""
    ws, user = await _workspace(engine, "5")
    thread = fake_slack.add_message(CHANNEL, "tell me")
    fake_llm.then(content=ANSWER, drop_after=40)
    config = load_settings(openrouter_api_key=fake_llm.api_key, openrouter_base_url=fake_llm.base_url)
    async with httpx.AsyncClient() as http:
        acts = LlmActivities(http, config.llm, BudgetGuard(engine, settings.budget), slack=slack)
        with pytest.raises(ApplicationError):
            await _env().run(
                acts.chat, _request(thread, max_tokens=100, workspace_id=str(ws), user_id=str(user))
            )
    held, spend = await _rows(engine, ws)
    assert [h.status for h in held] == ["settled"] and held[0].cost_usd == held[0].amount_usd > 0
    assert spend == (held[0].amount_usd, Decimal(0))
