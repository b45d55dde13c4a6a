"""LLM activity: OpenAI-compatible ``POST {base_url}/chat/completions``.

httpx is used without retries of its own; Temporal owns retries. Errors are classified:

* 429, 5xx, timeouts, connection errors -> retryable ``LlmRetryable`` (a ``Retry-After`` header
  becomes the next retry delay);
* 400 -> ``LlmRejected``, 401/403 -> ``LlmUnauthorized``, 402 -> ``LlmPaymentRequired``: not
  retryable, since repeating the same request cannot succeed;
* no API key -> ``LlmNotConfigured``; a body that is not a chat completion -> ``LlmBadResponse``.

With a :class:`~capabilities.budgets.activities.BudgetGuard`, every call of a request that names its
workspace is reserved before it (``BudgetExceeded`` / ``BudgetUnpriced``, not retryable, when
it may not run), settled to its actual cost after it. A call that failed after reaching the
provider (a stream cut off, a cancelled or timed-out call, a bad body) is settled too: to the
usage the provider reported so far, else to its estimate; only a call the provider never took
(no connection, an error status) is released. Every call carries ``max_tokens``: the request's,
else ``LUCY_BUDGET_ESTIMATE_MAX_TOKENS``, shrunk to what the room left in the budgets pays for,
the same its hold covers, so no answer outgrows its hold.

Streaming (``LUCY_LLM_STREAMING``, on by default): a request with a ``stream_to`` thread asks
for ``stream: true`` (usage in the final chunk) and shows the answer in one Slack streaming
message as it arrives (:mod:`capabilities.task.activities.slack_stream`); the response says which message
(``streamed_ts``), and the workflow posts the final answer over it. The activity heartbeats
all along (every :data:`HEARTBEAT_EVERY_S` seconds) with the stream's ts in the details, so a
dead worker is noticed within the heartbeat timeout and the next attempt rewrites the same
message. An endpoint that answers a streamed request with a plain JSON completion is read as
one; without a Slack client, or with streaming off, nothing changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from capabilities.budgets.activities import BudgetGuard, Hold
from capabilities.task.activities.llm_stream import read_events
from capabilities.task.activities.llm_wire import (
    check_status,
    completion_payload,
    parse_completion,
    timed_out,
    unreachable,
)
from capabilities.task.activities.slack_stream import SlackStream, previous_stream
from capabilities.tools.activities.liveness import beat
from lucy.contracts.errors import ErrorType
from lucy.contracts.llm import LlmProvider, LlmRequest, LlmResponse
from lucy.metrics import LLM_COST, LLM_FALLBACK, LLM_SECONDS
from lucy.settings import LlmSettings

if TYPE_CHECKING:
    from pydantic import SecretStr
    from slack_sdk.web.async_client import AsyncWebClient

HEARTBEAT_EVERY_S = 2.0
DEFAULT_MAX_TOKENS = 4_096  # without a budget guard (the same as LUCY_BUDGET_ESTIMATE_MAX_TOKENS' default)


@dataclass
class Billing:
    """Whether a call reached the provider (so it may have been billed) and the usage it reported."""

    reached: bool = False
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Call:
    """One chat-completion call: what is asked, where, with which key, under which hold."""

    request: LlmRequest
    base_url: str
    payload: dict[str, Any]
    key: str = field(repr=False)
    model: str
    hold: Hold | None

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    @property
    def provider(self) -> str:
        return urlsplit(self.base_url).hostname or "unknown"


class LlmActivities:
    """Chat completions against OpenRouter or any OpenAI-compatible endpoint."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: LlmSettings,
        budgets: BudgetGuard | None = None,
        slack: AsyncWebClient | None = None,
    ) -> None:
        self._http = http
        self._settings = settings
        self._budgets = budgets
        self._slack = slack

    @activity.defn(name="llm.chat")
    async def chat(self, request: LlmRequest) -> LlmResponse:
        """One chat completion: the model of ``request.tier`` on the primary provider, or the
        configured fallback model on the fallback provider."""
        base_url, key, model = self._endpoint(request)
        if request.max_tokens is None:  # capped at what its hold assumes: no unbounded overshoot
            cap = self._budgets.default_max_tokens if self._budgets is not None else DEFAULT_MAX_TOKENS
            request = dataclasses.replace(request, max_tokens=cap)
        payload = completion_payload(request, model, base_url)
        # OpenRouter (the primary provider) reports each call's cost; any other provider is
        # priced from LUCY_LLM_PRICES.
        hold = (
            await self._budgets.reserve(
                request, model=model, reports_cost=request.provider != LlmProvider.FALLBACK
            )
            if self._budgets is not None
            else None
        )
        # The hold's: the request's cap, or fewer when the budgets' room left is short.
        payload["max_tokens"] = hold.max_tokens if hold is not None else request.max_tokens
        call = _Call(request, base_url, payload, key.get_secret_value(), model, hold)
        result, reported = await self._measured(call, self._open_stream(request, payload))
        result = dataclasses.replace(result, provider=request.provider)
        if hold is not None and self._budgets is not None:
            result = await self._settle(hold, result, reported)
        if result.cost_usd > 0:
            LLM_COST.labels(call.provider, model).inc(result.cost_usd)
        return result

    def _endpoint(self, request: LlmRequest) -> tuple[str, SecretStr, str]:
        """The base URL, key and model of the request's provider; not retryable when unset."""
        if request.provider == LlmProvider.FALLBACK:
            if not self._settings.fallback_configured:
                raise ApplicationError(
                    "no fallback LLM is configured (LUCY_LLM_FALLBACK_BASE_URL, _API_KEY, _MODEL)",
                    type=ErrorType.LLM_NOT_CONFIGURED,
                    non_retryable=True,
                )
            base_url = str(self._settings.llm_fallback_base_url)
            key = self._settings.llm_fallback_api_key
            model = str(self._settings.llm_fallback_model)
        else:
            base_url = self._settings.openrouter_base_url
            key = self._settings.openrouter_api_key
            model = self._settings.model_for_tier(request.tier)
        if key is None:
            raise ApplicationError(
                "no LLM is configured: set LUCY_OPENROUTER_API_KEY (and LUCY_OPENROUTER_BASE_URL "
                "for a provider other than OpenRouter)",
                type=ErrorType.LLM_NOT_CONFIGURED,
                non_retryable=True,
            )
        return base_url, key, model

    def _open_stream(self, request: LlmRequest, payload: dict[str, Any]) -> SlackStream | None:
        """The Slack message the answer streams into (asking the provider to stream), if any."""
        if request.stream_to is None or not self._settings.llm_streaming or self._slack is None:
            return None
        stream = SlackStream(
            self._slack,
            request.stream_to,
            previous_ts=previous_stream(activity.info().heartbeat_details),
        )
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
        return stream

    async def _measured(self, call: _Call, stream: SlackStream | None) -> tuple[LlmResponse, float | None]:
        """The call, heartbeating all along and timed; a failure closes its hold."""
        started = time.perf_counter()
        outcome = "error"
        billing = Billing()
        beat = asyncio.create_task(_heartbeat(stream))
        try:
            if stream is not None:
                await stream.begin()
                answer = await self._call_streamed(
                    call.url, call.payload, call.key, call.model, stream, billing
                )
            else:
                answer = await self._call(call.url, call.payload, call.key, call.model, billing)
            outcome = "ok"
        except BaseException as exc:
            if call.hold is not None:
                await self._close_failed(call.hold, billing)
            if stream is not None and _last_attempt(exc):
                await stream.discard()  # no retry of this activity will rewrite it
            raise
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            LLM_SECONDS.labels(call.provider, call.model, outcome).observe(time.perf_counter() - started)
            if call.request.provider == LlmProvider.FALLBACK:
                LLM_FALLBACK.labels(outcome).inc()
        return answer

    async def _settle(self, hold: Hold, result: LlmResponse, reported: float | None) -> LlmResponse:
        """Settle the hold to the call's actual cost; the cost recorded when the table priced it."""
        assert self._budgets is not None
        cost = self._budgets.actual_cost(
            hold,
            reported=reported,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
        )
        try:
            await self._budgets.settle(hold, cost)
        except Exception as exc:  # the call was made and paid for: never make it again for this
            activity.logger.warning(
                "budget hold not settled; it stays held until the sweep",
                extra={"error": type(exc).__name__},
            )
        if reported is None and hold.price is not None:  # priced by the table: recorded so
            result = dataclasses.replace(result, cost_usd=float(cost))
        return result

    async def _close_failed(self, hold: Hold, billing: Billing) -> None:
        """A failed call's hold: settled to what the provider reported so far (else the
        estimate) when the call reached it, given back when it never did; if even that fails,
        the sweep gives it back later."""
        assert self._budgets is not None
        try:
            if billing.reached:
                await self._budgets.settle(hold, self._budgets.failed_cost(hold, billing.usage))
            else:
                await self._budgets.release(hold)
        except Exception as exc:  # never hide the call's own error behind this one
            activity.logger.warning(
                "budget hold not closed; the sweep will", extra={"error": type(exc).__name__}
            )

    async def _call(
        self, url: str, payload: dict[str, Any], key: str, model: str, billing: Billing
    ) -> tuple[LlmResponse, float | None]:
        billing.reached = True  # from here on the provider may be generating (and billing)
        try:
            response = await self._http.post(
                url,
                json=payload,
                headers={"Authorization": f"Bearer {key}"},
                timeout=httpx.Timeout(self._settings.llm_read_timeout, connect=10.0),
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            billing.reached = False
            raise unreachable(exc) from None
        except httpx.TimeoutException as exc:
            raise timed_out(exc) from None
        except httpx.TransportError as exc:
            raise unreachable(exc) from None
        billing.reached = response.is_success
        check_status(response)
        return parse_completion(response, model)

    async def _call_streamed(
        self, url: str, payload: dict[str, Any], key: str, model: str, stream: SlackStream, billing: Billing
    ) -> tuple[LlmResponse, float | None]:
        """The same call with ``stream: true``: the answer is shown in Slack as it arrives."""
        billing.reached = True
        try:
            async with self._http.stream(
                "POST",
                url,
                json=payload,
                headers={"Authorization": f"Bearer {key}"},
                timeout=httpx.Timeout(self._settings.llm_read_timeout, connect=10.0),
            ) as response:
                if response.status_code != 200 or "text/event-stream" not in response.headers.get(
                    "content-type", ""
                ):
                    await response.aread()  # an error, or a provider that does not stream
                    billing.reached = response.is_success
                    check_status(response)
                    result, reported = parse_completion(response, model)
                else:
                    result, reported = await read_events(response, model, stream, billing.usage)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            billing.reached = False
            raise unreachable(exc) from None
        except httpx.TimeoutException as exc:
            raise timed_out(exc) from None
        except httpx.TransportError as exc:
            raise unreachable(exc) from None
        streamed = await stream.finish(answered=not result.tool_calls)
        return dataclasses.replace(result, streamed_ts=streamed), reported


async def _heartbeat(stream: SlackStream | None) -> None:
    """Heartbeat while the call runs (a dead worker is noticed within the heartbeat timeout),
    with where the answer is being streamed."""
    if not activity.in_activity():
        return
    while True:
        if stream is not None:
            beat(stream.details)
        else:
            beat()
        await asyncio.sleep(HEARTBEAT_EVERY_S)


def _last_attempt(exc: BaseException) -> bool:
    """Whether no attempt of this activity follows ``exc``: not retryable, out of attempts, or
    cancelled (the task was cancelled, or the worker is shutting down: a later attempt then
    streams afresh)."""
    if isinstance(exc, asyncio.CancelledError):
        return True
    if isinstance(exc, ApplicationError) and exc.non_retryable:
        return True
    if not activity.in_activity():
        return False
    info = activity.info()
    policy = info.retry_policy
    return policy is not None and 0 < policy.maximum_attempts <= info.attempt
