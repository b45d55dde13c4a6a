"""Slack's streaming messages, for :class:`lucy.console.backend.SlackBackend`.

Streaming messages (``chat.startStream`` / ``appendStream`` / ``stopStream``) follow Slack's
rules: a stream belongs to one thread, grows only while it is live, ends with stopStream and
expires after :attr:`SlackBackend.stream_idle_s` without an append; a call on a message that
is not a live stream answers ``message_not_in_streaming_state``. ``stream_refusal`` makes
``chat.startStream`` refuse with that error (a workspace without the streaming API).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

BOT_USER_ID = "UBOTLUCY"  # Lucy in the fake workspace (re-exported by the backend)
BOT_ID = "BBOTLUCY"


@dataclass
class StreamsMixin:
    """``chat.startStream``, ``chat.appendStream``, ``chat.stopStream`` and ``chat.delete``; the
    host class holds ``messages``."""

    # Live streams: (channel, ts) -> when the last append arrived (time.monotonic()).
    streams: dict[tuple[str, str], float] = field(default_factory=dict)
    stream_idle_s: float = 300.0  # a live stream expires after this long without an append
    stream_refusal: str | None = None  # chat.startStream answers this error when set

    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def next_ts(self, suffix: str = "000100") -> str:  # pragma: no cover - the host's
        raise NotImplementedError

    def find(self, channel: str, ts: str) -> dict[str, Any] | None:  # pragma: no cover - the host's
        raise NotImplementedError

    def reset_streams(self) -> None:
        self.streams.clear()
        self.stream_refusal = None

    def edited(self, message: dict[str, Any], p: dict[str, Any]) -> None:
        """After ``chat.update``: its metadata is kept, and an edited stream is a plain message."""
        if p.get("metadata"):
            message["metadata"] = p["metadata"]
        self.streams.pop((str(message["channel"]), str(message["ts"])), None)

    def _m_chat_startStream(self, p: dict[str, Any]) -> dict[str, Any]:
        """A new streaming message in a thread (``markdown_text`` optional, shown at once)."""
        channel, thread_ts = p.get("channel"), p.get("thread_ts")
        if not channel or str(channel).startswith("CGONE"):
            return {"ok": False, "error": "channel_not_found"}
        if not thread_ts:
            return {"ok": False, "error": "invalid_arguments"}
        if self.stream_refusal:
            return {"ok": False, "error": self.stream_refusal}
        ts = self.next_ts()
        message = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "text": str(p.get("markdown_text") or ""),
            "ts": ts,
            "channel": channel,
            "thread_ts": thread_ts,
        }
        self.messages.setdefault(str(channel), []).append(message)
        self.streams[(str(channel), ts)] = time.monotonic()
        return {"ok": True, "channel": channel, "ts": ts}

    def _live_stream(self, p: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """The live streaming message ``p`` names, or the error Slack answers."""
        channel, ts = str(p.get("channel") or ""), str(p.get("ts") or "")
        message = self.find(channel, ts)
        if message is None:
            return None, "message_not_found"
        last = self.streams.get((channel, ts))
        if last is None:
            return None, "message_not_in_streaming_state"
        if time.monotonic() - last > self.stream_idle_s:
            del self.streams[(channel, ts)]  # expired
            return None, "message_not_in_streaming_state"
        return message, None

    def _m_chat_appendStream(self, p: dict[str, Any]) -> dict[str, Any]:
        message, error = self._live_stream(p)
        if message is None:
            return {"ok": False, "error": error}
        if not p.get("markdown_text") and not p.get("chunks"):
            return {"ok": False, "error": "invalid_arguments"}
        message["text"] += str(p.get("markdown_text") or "")
        self.streams[(message["channel"], message["ts"])] = time.monotonic()
        return {"ok": True, "channel": message["channel"], "ts": message["ts"]}

    def _m_chat_stopStream(self, p: dict[str, Any]) -> dict[str, Any]:
        message, error = self._live_stream(p)
        if message is None:
            return {"ok": False, "error": error}
        message["text"] += str(p.get("markdown_text") or "")
        if p.get("metadata"):
            message["metadata"] = p["metadata"]
        del self.streams[(message["channel"], message["ts"])]
        return {"ok": True, "channel": message["channel"], "ts": message["ts"], "message": message}

    def _m_chat_delete(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(p.get("channel") or ""), str(p.get("ts") or "")
        message = self.find(channel, ts)
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        self.messages[channel].remove(message)
        self.streams.pop((channel, ts), None)
        return {"ok": True, "channel": channel, "ts": ts}
