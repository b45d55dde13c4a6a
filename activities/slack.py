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
from datetime import timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio import activity
from temporalio.exceptions import ApplicationError

from lucy.contracts import ErrorType, PostMessageRequest, PostMessageResult

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

    def __init__(self, client: AsyncWebClient | None, pacer: ChannelPacer | None = None) -> None:
        self._client = client
        self._pacer = pacer or ChannelPacer()

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
        """Post ``request.text`` (in ``request.thread_ts`` if set), exactly once per idempotency key."""
        client = self._require_client()
        if activity.info().attempt > 1:
            found = await self._find_posted(client, request)
            if found is not None:
                activity.logger.info("message already posted by an earlier attempt", extra={"ts": found})
                return PostMessageResult(ts=found, channel=request.channel, already_posted=True)
        kwargs: dict[str, Any] = {
            "channel": request.channel,
            "text": request.text,
            "metadata": {
                "event_type": METADATA_EVENT_TYPE,
                "event_payload": {"idempotency_key": request.idempotency_key},
            },
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if request.thread_ts:
            kwargs["thread_ts"] = request.thread_ts
        await self._pacer.wait(request.channel)
        try:
            response = await client.chat_postMessage(**kwargs)
        except SlackApiError as exc:
            raise slack_error(exc, "chat.postMessage") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(exc, "chat.postMessage") from None
        return PostMessageResult(
            ts=str(response["ts"]), channel=str(response.get("channel") or request.channel)
        )

    async def _find_posted(self, client: AsyncWebClient, request: PostMessageRequest) -> str | None:
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
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if (
                metadata.get("event_type") == METADATA_EVENT_TYPE
                and payload.get("idempotency_key") == request.idempotency_key
            ):
                return str(message["ts"])
        return None
