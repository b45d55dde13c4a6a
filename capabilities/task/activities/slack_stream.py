"""One Slack streaming message that shows a model's answer while it is written.

Used by the LLM activity (``LUCY_LLM_STREAMING``). The answer is buffered (the first words go
out at once, then at most one call every :data:`STREAM_INTERVAL_S` seconds, well inside
Slack's rate tiers), redacted across chunk boundaries and escaped by
:class:`capabilities.task.views.stream.StreamText`, and sent with ``chat.startStream`` /
``chat.appendStream`` / ``chat.stopStream``. The final text is not this module's: the task
workflow posts the answer through the output pipeline over the streamed message
(``PostMessageRequest.replace_ts``), so it is exactly what the non-streamed path posts.

Durability: the message's ts is in the activity's heartbeat details. A retried attempt
(after a crash, a timeout or a dropped model connection) finds it there, stops that stream and
rewrites the same message with ``chat.update`` instead of starting a second one.

Fallbacks, none of which loses anything (the complete answer is posted at the end either way):

* Slack refuses ``chat.startStream`` (a workspace or token without the streaming API): no live
  preview for this call;
* the stream expired or was stopped (``message_not_in_streaming_state``...): the same message
  is updated in place with ``chat.update``;
* any other Slack failure while previewing: the preview stops; the answer is still posted.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio import activity

from capabilities.task.views.stream import StreamText
from capabilities.tools.activities.liveness import beat
from lucy.contracts.llm import StreamTarget
from lucy.slack.text import escape_mrkdwn

STREAM_INTERVAL_S = 0.5  # the least time between two appends (the first words go at once)
UPDATE_INTERVAL_S = 1.0  # the same when falling back to chat.update (Tier 3: ~50 a minute)
# Errors that mean "this message is not (or no longer) a live stream": update it in place.
NOT_STREAMING = frozenset(
    {"message_not_in_streaming_state", "streaming_state_conflict", "message_not_owned_by_app"}
)

STREAM, UPDATE, OFF = "stream", "update", "off"


def _retry_after(exc: SlackApiError) -> float:
    try:
        return min(float(exc.response.headers.get("Retry-After") or 1.0), 30.0)
    except (AttributeError, ValueError):
        return 1.0


def previous_stream(details: Any) -> str | None:
    """The ts of the message an earlier attempt streamed into, from its heartbeat details."""
    for item in details or ():
        if isinstance(item, dict) and isinstance(item.get("stream_ts"), str):
            return item["stream_ts"]
    return None


class SlackStream:
    """The live preview of one model call's answer."""

    def __init__(
        self,
        client: AsyncWebClient,
        target: StreamTarget,
        *,
        previous_ts: str | None = None,
        interval_s: float = STREAM_INTERVAL_S,
        update_interval_s: float = UPDATE_INTERVAL_S,
    ) -> None:
        self._client = client
        self._target = target
        self.text = StreamText()
        self.ts = previous_ts or target.reuse_ts
        self._restarted = previous_ts is not None
        # A message an earlier attempt (or step) left: rewritten in place, never a second one.
        self.mode = UPDATE if self.ts else STREAM
        self._interval = interval_s
        self._update_interval = update_interval_s
        self._last = 0.0
        self.calls = 0

    @property
    def details(self) -> dict[str, Any]:
        """Heartbeat details: where the answer is being shown."""
        return {"stream_ts": self.ts, "channel": self._target.channel, "shown": len(self.text.shown)}

    async def begin(self) -> None:
        """A retried attempt first stops the stream its predecessor left open."""
        if self._restarted and self.ts is not None:
            await self._quiet("chat.stopStream", channel=self._target.channel, ts=self.ts)

    async def add(self, delta: str) -> None:
        """Take a chunk of the answer; show what may be shown when it is time to."""
        self.text.add(delta)
        if self.mode == OFF:
            return
        wait = self._interval if self.mode == STREAM else self._update_interval
        if self.calls and time.monotonic() - self._last < wait:
            return
        await self._flush()

    async def finish(self, *, answered: bool) -> str | None:
        """The call is complete. With an answer (no tool calls), the rest is shown and the
        stream stopped; returns the ts the final answer is to be posted over. Otherwise the
        preview is removed and None returned."""
        if not answered or not self.text.raw.strip():
            await self.discard()
            return None
        if self.mode == STREAM and self.ts is not None:
            rest = self.text.take(final=True)
            kwargs: dict[str, Any] = {"channel": self._target.channel, "ts": self.ts}
            if rest:
                kwargs["markdown_text"] = rest
            await self._quiet("chat.stopStream", **kwargs)  # expired already: still there
            return self.ts
        if self.mode == UPDATE and self.ts is not None:
            return self.ts
        return None

    async def discard(self) -> None:
        """Remove the preview (the call ended in tool calls, or failed for good)."""
        if self.ts is None:
            return
        if self.mode == STREAM:
            await self._quiet("chat.stopStream", channel=self._target.channel, ts=self.ts)
        await self._quiet("chat.delete", channel=self._target.channel, ts=self.ts)
        self.ts = None

    async def _flush(self) -> None:
        chunk = self.text.take()
        if not chunk:
            return
        self._last = time.monotonic()
        self.calls += 1
        target = self._target
        if self.mode == UPDATE:
            if self.ts is None:
                self.mode = OFF
                return
            await self._quiet("chat.update", channel=target.channel, ts=self.ts, text=self._preview())
            return
        try:
            if self.ts is None:
                kwargs: dict[str, Any] = {
                    "channel": target.channel,
                    "thread_ts": target.thread_ts,
                    "markdown_text": chunk,
                }
                if target.recipient_user_id:
                    kwargs["recipient_user_id"] = target.recipient_user_id
                if target.recipient_team_id:
                    kwargs["recipient_team_id"] = target.recipient_team_id
                response = await self._client.chat_startStream(**kwargs)
                self.ts = str(response["ts"])
                beat(self.details)  # from now on a retry rewrites this message
            else:
                await self._client.chat_appendStream(channel=target.channel, ts=self.ts, markdown_text=chunk)
        except SlackApiError as exc:
            code = str(exc.response.get("error") or "") if exc.response is not None else ""
            if code == "ratelimited" or getattr(exc.response, "status_code", 200) == 429:
                # Rate limited: the text waits (the next flush sends it all), after Retry-After.
                self.text.unshow(chunk)
                self._last = time.monotonic() + _retry_after(exc)
                return
            if self.ts is not None and code in NOT_STREAMING:
                activity.logger.info("stream no longer live; updating in place", extra={"error": code})
                self.mode = UPDATE
                await self._quiet("chat.update", channel=target.channel, ts=self.ts, text=self._preview())
            else:
                activity.logger.info("Slack refused the stream; no live preview", extra={"error": code})
                self.mode = UPDATE if self.ts is not None else OFF
        except (aiohttp.ClientError, TimeoutError) as exc:
            activity.logger.info("stream call failed; no live preview", extra={"error": type(exc).__name__})
            self.mode = UPDATE if self.ts is not None else OFF

    def _preview(self) -> str:
        return escape_mrkdwn(self.text.shown) + " …"

    async def _quiet(self, method: str, **kwargs: Any) -> bool:
        """A call whose failure only costs the preview."""
        self.calls += 1
        with contextlib.suppress(SlackApiError, aiohttp.ClientError, TimeoutError):
            await self._client.api_call(method, json=kwargs)
            return True
        return False
