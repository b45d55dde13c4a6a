"""Slack Web API activities.

Posting is idempotent across activity retries: every message Lucy posts carries Slack
message metadata with an idempotency key (derived from workflow id + step). A retry
(attempt > 1) first looks in the thread for a message with that key and returns it instead
of posting again. The first attempt skips the look-up: nothing can have been posted before it.

slack-sdk's own retry handlers are off; Temporal retries. A 429 becomes a retryable error
whose next delay is Slack's ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio import activity
from temporalio.exceptions import ApplicationError

from capabilities.feedback.views import answer_blocks
from capabilities.task.activities.slack_plan import PlanMessages
from capabilities.task.views.blocks import progress_blocks, progress_text
from lucy.contracts.errors import ErrorType
from lucy.contracts.slack import PostMessageRequest, PostMessageResult, UpdateMessageRequest
from lucy.slack.text import prepare

METADATA_EVENT_TYPE = "lucy_message"
_RETRYABLE_SLACK_ERRORS = {
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
}
_MAX_RETRY_AFTER = 300.0


def slack_error(exc: SlackApiError, what: str) -> ApplicationError:
    """Map a Slack API error to a Temporal error: retryable or not, with Slack's own code."""
    response = exc.response
    code = str(response.get("error") or "unknown_error") if response is not None else "unknown_error"
    status = getattr(response, "status_code", 200)
    if status == 429 or code == "ratelimited":
        delay: timedelta | None = None
        raw = response.headers.get("Retry-After") or response.headers.get("retry-after")
        if raw is not None:
            try:
                delay = timedelta(seconds=min(float(raw), _MAX_RETRY_AFTER))
            except ValueError:
                delay = None
        return ApplicationError(
            f"Slack {what}: rate limited", code, type=ErrorType.SLACK_RETRYABLE, next_retry_delay=delay
        )
    if status >= 500 or code in _RETRYABLE_SLACK_ERRORS:
        return ApplicationError(f"Slack {what}: {code} (HTTP {status})", code, type=ErrorType.SLACK_RETRYABLE)
    return ApplicationError(f"Slack {what}: {code}", code, type=ErrorType.SLACK_REJECTED, non_retryable=True)


async def without_refused_blocks(
    call: Callable[..., Awaitable[Any]], kwargs: dict[str, Any], *, builder: str, clear: bool = False
) -> Any:
    """``call(**kwargs)``; when Slack answers ``invalid_blocks``, log which builder made the
    blocks and send the text alone (``clear``: with ``blocks=[]``, so an edited message loses
    its old blocks) rather than lose the message."""
    try:
        return await call(**kwargs)
    except SlackApiError as exc:
        refused = exc.response is not None and exc.response.get("error") == "invalid_blocks"
        if not refused or not kwargs.get("blocks"):
            raise
    activity.logger.warning(
        "Slack refused the blocks; sending the text alone", extra={"builder": builder or "unnamed"}
    )
    plain = {k: v for k, v in kwargs.items() if k != "blocks"}
    return await call(**plain, **({"blocks": []} if clear else {}))


def _transport_error(exc: BaseException, what: str) -> ApplicationError:
    return ApplicationError(
        f"Slack {what}: unreachable ({exc.__class__.__name__})", type=ErrorType.SLACK_RETRYABLE
    )


class ChannelPacer:
    """Keeps posts to one channel at least ``interval_s`` apart (Slack allows about one message
    per second per channel). A wait longer than ``max_wait_s`` becomes a retryable error whose
    next retry is after the wait, so a crowded channel never holds an activity slot for long."""

    def __init__(self, interval_s: float = 1.0, max_wait_s: float = 10.0) -> None:
        self._interval = interval_s
        self._max_wait = max_wait_s
        self._next: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def wait(self, channel: str) -> None:
        if self._interval <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            at = max(now, self._next.get(channel, 0.0))
            if at - now > self._max_wait:
                raise ApplicationError(
                    "Slack channel busy: waiting for its turn",
                    type=ErrorType.SLACK_RETRYABLE,
                    next_retry_delay=timedelta(seconds=at - now),
                )
            self._next[channel] = at + self._interval
            if len(self._next) > 10_000:  # forget channels whose turn has long passed
                self._next = {c: t for c, t in self._next.items() if t > now}
        if at > now:
            await asyncio.sleep(at - now)


class SlackActivities:
    """Activities that talk to the Slack Web API through an injected ``AsyncWebClient``."""

    def __init__(
        self, client: AsyncWebClient | None, pacer: ChannelPacer | None = None, *, plans: bool = False
    ) -> None:
        """``plans``: show the progress message as a live plan (a streaming message) where
        Slack allows it (:mod:`capabilities.task.activities.slack_plan`); otherwise the plain progress
        message."""
        self._client = client
        self._pacer = pacer or ChannelPacer()
        self._plans = PlanMessages(client) if plans and client is not None else None

    @property
    def client(self) -> AsyncWebClient | None:
        """The injected Web API client (None when Slack is not configured)."""
        return self._client

    def _require_client(self) -> AsyncWebClient:
        if self._client is None:
            raise ApplicationError(
                "Slack is not configured: set LUCY_SLACK_BOT_TOKEN",
                type=ErrorType.SLACK_NOT_CONFIGURED,
                non_retryable=True,
            )
        return self._client

    @activity.defn(name="slack.post_message")
    async def post_message(self, request: PostMessageRequest) -> PostMessageResult:
        """Post ``request.text`` (in ``request.thread_ts`` if set), exactly once per idempotency key.

        Text from a model goes through the output pipeline first (redact, mrkdwn, split); each
        part of a split message has its own key (``key``, ``key:1``, ...), so a retry after a
        partial failure posts only the parts that are missing, in order. With ``replace_ts``
        (the message a streamed answer was shown in), the first part replaces that message's
        text (``chat.update``, with the key in its metadata) instead of being posted; if that
        message is gone, the first part is posted.
        """
        client = self._require_client()
        if request.progress is not None and self._plans is not None:
            try:
                plan_ts = await self._plans.post(request)
            except SlackApiError as exc:
                raise slack_error(exc, "chat.startStream") from None
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _transport_error(exc, "chat.startStream") from None
            if plan_ts is not None:
                return PostMessageResult(ts=plan_ts, channel=request.channel)
        if request.progress is not None:  # the progress message: Lucy's sentence and its blocks
            request = replace(
                request,
                text=progress_text(request.progress),
                blocks=progress_blocks(request.progress),
                format=False,
                builder="progress_blocks",
            )
        parts = prepare(request.text) if request.format else [request.text]
        posted: dict[str, str] = {}
        if activity.info().attempt > 1:
            posted = await self._find_posted(client, request)
        first_ts: str | None = None
        reused = 0
        for i, part in enumerate(parts):
            key = request.idempotency_key if i == 0 else f"{request.idempotency_key}:{i}"
            ts = posted.get(key)
            # An answer's last message carries the feedback buttons (its text then in sections).
            last = request.feedback_for and i == len(parts) - 1
            blocks = answer_blocks(part, request.feedback_for) if last else None
            if i == 0 and request.replace_ts:  # the streamed answer becomes the final text
                if await self._replace(client, request, request.replace_ts, part, key, blocks):
                    first_ts = ts = request.replace_ts
                    continue
            if ts is None:
                ts = await self._post_one(client, request, part, key, blocks)
            else:
                reused += 1
            first_ts = first_ts or ts
        if reused:
            activity.logger.info("parts already posted by an earlier attempt", extra={"reused": reused})
        assert first_ts is not None
        if request.progress is not None and self._plans is not None:
            self._plans.posted_plain(first_ts)
        return PostMessageResult(
            ts=first_ts, channel=request.channel, already_posted=reused == len(parts), parts=len(parts)
        )

    async def _post_one(
        self,
        client: AsyncWebClient,
        request: PostMessageRequest,
        text: str,
        key: str,
        blocks: list[dict[str, Any]] | None = None,
    ) -> str:
        kwargs: dict[str, Any] = {
            "channel": request.channel,
            "text": text,
            "metadata": {"event_type": METADATA_EVENT_TYPE, "event_payload": {"idempotency_key": key}},
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if request.thread_ts:
            kwargs["thread_ts"] = request.thread_ts
        if blocks is not None:
            kwargs["blocks"] = blocks
        elif request.blocks and key == request.idempotency_key:
            kwargs["blocks"] = request.blocks  # blocks go with the first part; the text is the fallback
        await self._pacer.wait(request.channel)
        try:
            builder = "answer_blocks" if blocks is not None else request.builder
            response = await without_refused_blocks(client.chat_postMessage, kwargs, builder=builder)
        except SlackApiError as exc:
            raise slack_error(exc, "chat.postMessage") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc, "chat.postMessage") from None
        return str(response["ts"])

    async def _replace(
        self,
        client: AsyncWebClient,
        request: PostMessageRequest,
        ts: str,
        text: str,
        key: str,
        blocks: list[dict[str, Any]] | None = None,
    ) -> bool:
        """The first part of an answer over the message it was streamed into; False when that
        message is gone (or no longer Lucy's to edit)."""
        try:
            await without_refused_blocks(
                client.chat_update,
                {
                    "channel": request.channel,
                    "ts": ts,
                    "text": text,
                    "blocks": blocks or [],
                    "metadata": {
                        "event_type": METADATA_EVENT_TYPE,
                        "event_payload": {"idempotency_key": key},
                    },
                },
                builder="answer_blocks",
                clear=True,
            )
        except SlackApiError as exc:
            error = slack_error(exc, "chat.update")
            if error.details and error.details[0] in ("message_not_found", "cant_update_message"):
                activity.logger.info(
                    "streamed message is gone; posting the answer", extra={"error": error.details[0]}
                )
                return False
            raise error from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc, "chat.update") from None
        return True

    @activity.defn(name="slack.update_message")
    async def update_message(self, request: UpdateMessageRequest) -> bool:
        """``chat.update`` of one of Lucy's messages (idempotent by nature: the same text twice is
        the same message). Returns False when the message is gone (deleted in Slack)."""
        client = self._require_client()
        if request.progress is not None and self._plans is not None:
            try:
                if await self._plans.update(request):
                    return True
            except SlackApiError as exc:
                raise slack_error(exc, "chat.appendStream") from None
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _transport_error(exc, "chat.appendStream") from None
        text, blocks, builder = request.text, request.blocks, request.builder
        if request.progress is not None:
            text, blocks = progress_text(request.progress), progress_blocks(request.progress)
            builder = "progress_blocks"
        kwargs: dict[str, Any] = {"channel": request.channel, "ts": request.ts, "text": text}
        if blocks is not None:
            kwargs["blocks"] = blocks
        try:
            await without_refused_blocks(client.chat_update, kwargs, builder=builder, clear=True)
        except SlackApiError as exc:
            error = slack_error(exc, "chat.update")
            if error.details and error.details[0] in ("message_not_found", "cant_update_message"):
                activity.logger.info("message to update is gone", extra={"error": error.details[0]})
                return False
            raise error from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc, "chat.update") from None
        return True

    async def _find_posted(self, client: AsyncWebClient, request: PostMessageRequest) -> dict[str, str]:
        """Idempotency key -> ts of Lucy's messages already in the thread (or channel)."""
        try:
            if request.thread_ts:
                response = await client.conversations_replies(
                    channel=request.channel, ts=request.thread_ts, include_all_metadata=True, limit=200
                )
            else:
                response = await client.conversations_history(
                    channel=request.channel, include_all_metadata=True, limit=50
                )
        except SlackApiError as exc:
            raise slack_error(exc, "conversations.replies") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(exc, "conversations.replies") from None
        found: dict[str, str] = {}
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            key = (metadata.get("event_payload") or {}).get("idempotency_key")
            if metadata.get("event_type") == METADATA_EVENT_TYPE and key:
                found[str(key)] = str(message["ts"])
        return found
