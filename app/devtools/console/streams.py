"""Slack's streaming messages, for :class:`app.devtools.console.backend.SlackBackend`.

Streaming messages (``chat.startStream`` / ``appendStream`` / ``stopStream``) follow Slack's
rules: a stream belongs to one thread, grows only while it is live, ends with stopStream and
expires after :attr:`SlackBackend.stream_idle_s` without an append; a call on a message that
is not a live stream answers ``message_not_in_streaming_state``. ``stream_refusal`` makes
``chat.startStream`` refuse with that error (a workspace without the streaming API).

Chunks (``chunks``: ``markdown_text``, ``plan_update``, ``task_update``, ``blocks``) are checked as
Slack checks them: an unknown type, a missing field or a task status other than ``pending``,
``in_progress``, ``complete`` or ``error`` answers ``invalid_chunks``; ``task_display_mode`` is
``timeline`` or ``plan``. A message's plan (title and tasks by id) is kept in its ``plan``,
and every task update in order in its ``task_updates``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

BOT_USER_ID = "UBOTLUCY"  # Lucy in the fake workspace (re-exported by the backend)
BOT_ID = "BBOTLUCY"

STREAM_IDLE_S = 300.0
_TASK_STATUSES = frozenset({"pending", "in_progress", "complete", "error"})
_CHUNK_FIELDS = {
    "markdown_text": ("text",),
    "plan_update": ("title",),
    "task_update": ("id", "title", "status"),
    "blocks": ("blocks",),
}


def parse_chunks(raw: Any) -> list[dict[str, Any]] | None:
    """The chunks of a call (a list, or JSON text in a form body), or None when Slack would
    answer ``invalid_chunks``."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(raw, list) or not raw:
        return None
    for chunk in raw:
        fields = _CHUNK_FIELDS.get(str(chunk.get("type"))) if isinstance(chunk, dict) else None
        if fields is None or any(not chunk.get(f) for f in fields):
            return None
        if chunk["type"] == "task_update" and chunk["status"] not in _TASK_STATUSES:
            return None
    return raw


def apply_chunks(message: dict[str, Any], chunks: list[dict[str, Any]]) -> None:
    """Show ``chunks`` in ``message``: text is appended, a task with a known id is updated."""
    if not chunks:
        return
    plan = message.setdefault("plan", {"title": "", "tasks": {}})
    for chunk in chunks:
        kind = chunk["type"]
        if kind == "markdown_text":
            message["text"] += str(chunk["text"])
        elif kind == "plan_update":
            plan["title"] = str(chunk["title"])
        elif kind == "task_update":
            task = {k: chunk[k] for k in ("id", "title", "status", "details", "output") if chunk.get(k)}
            plan["tasks"][str(chunk["id"])] = task
            message.setdefault("task_updates", []).append(task)
        else:
            message.setdefault("blocks", []).extend(chunk["blocks"])


@dataclass
class StreamsMixin:
    """``chat.startStream``, ``chat.appendStream``, ``chat.stopStream`` and ``chat.delete``; the
    host class holds ``messages``."""

    # Live streams: (channel, ts) -> when the last append arrived (time.monotonic()).
    streams: dict[tuple[str, str], float] = field(default_factory=dict)
    stream_idle_s: float = STREAM_IDLE_S  # a live stream expires after this long without an append
    stream_refusal: str | None = None  # chat.startStream answers this error when set

    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def next_ts(self, suffix: str = "000100") -> str:  # pragma: no cover - the host's
        raise NotImplementedError

    def find(self, channel: str, ts: str) -> dict[str, Any] | None:  # pragma: no cover - the host's
        raise NotImplementedError

    def post_as_bot(self, channel: str, text: str, **extra: Any) -> dict[str, Any]:
        """A new message from Lucy's bot user in ``channel``, kept in ``messages``."""
        message = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "text": text,
            "ts": self.next_ts(),
            "channel": channel,
            **extra,
        }
        self.messages.setdefault(channel, []).append(message)
        return message

    def reset_streams(self) -> None:
        self.streams.clear()
        self.stream_refusal = None
        self.stream_idle_s = STREAM_IDLE_S

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
        if p.get("task_display_mode") not in (None, "timeline", "plan"):
            return {"ok": False, "error": "invalid_arguments"}
        chunks = parse_chunks(p["chunks"]) if p.get("chunks") is not None else []
        if chunks is None:
            return {"ok": False, "error": "invalid_chunks"}
        message = self.post_as_bot(str(channel), str(p.get("markdown_text") or ""), thread_ts=thread_ts)
        ts = message["ts"]
        if chunks:
            message["task_display_mode"] = p.get("task_display_mode") or "timeline"
            apply_chunks(message, chunks)
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
        chunks = parse_chunks(p["chunks"]) if p.get("chunks") is not None else []
        if chunks is None:
            return {"ok": False, "error": "invalid_chunks"}
        message["text"] += str(p.get("markdown_text") or "")
        apply_chunks(message, chunks)
        self.streams[(message["channel"], message["ts"])] = time.monotonic()
        return {"ok": True, "channel": message["channel"], "ts": message["ts"]}

    def _m_chat_stopStream(self, p: dict[str, Any]) -> dict[str, Any]:
        message, error = self._live_stream(p)
        if message is None:
            return {"ok": False, "error": error}
        chunks = parse_chunks(p["chunks"]) if p.get("chunks") is not None else []
        if chunks is None:
            return {"ok": False, "error": "invalid_chunks"}
        message["text"] += str(p.get("markdown_text") or "")
        apply_chunks(message, chunks)
        if isinstance(p.get("blocks"), list):  # shown under the finished message (feedback buttons)
            message["blocks"] = [*(message.get("blocks") or []), *p["blocks"]]
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
