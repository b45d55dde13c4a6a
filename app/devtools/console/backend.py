"""A small Slack workspace that answers Slack's Web API as Slack does: the console's backend and
the test suite's fake Slack (``tests/fakes/slack.py`` serves this same class over aiohttp).

* :meth:`SlackBackend.call` takes a method name, its parameters (form, JSON or query, already
  merged) and the bearer token, and answers ``(status, {"ok": true, ...} | {"ok": false,
  "error"}, headers)``: HTTP 200 with ``ok: false`` for Slack errors, 429 with ``Retry-After``
  when a fault says so.
* It keeps the messages it was sent (with metadata), so ``conversations.replies`` and
  ``conversations.history`` return them as Slack does; ``chat.update`` edits in place and keeps
  every version in ``updates``; ephemerals, Home views and modals are kept per user.
* Files follow Slack's external upload flow (:mod:`app.devtools.console.files`).
* A ``response_url`` post (:meth:`respond`) is recorded and, when the url was handed out for a
  known message (:meth:`response_target`), applied as Slack applies it: ``replace_original``
  edits the message, ``delete_original`` removes it, ``in_channel`` posts, anything else is an
  ephemeral for the user who acted.
* Every change bumps :attr:`version` and wakes :meth:`wait_change` (the console's live feed).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from app.devtools.console.assistant import AssistantMixin
from app.devtools.console.channels import DEFAULT_CHANNELS, ChannelsMixin
from app.devtools.console.files import FilesMixin
from app.devtools.console.people import PeopleMixin
from app.devtools.console.refusals import json_field, payload_refusal
from app.devtools.console.streams import BOT_ID, BOT_USER_ID, StreamsMixin


@dataclass
class Fault:
    """An injected failure: the next ``times`` calls of ``method`` answer it."""

    method: str
    status: int = 200
    error: str | None = None
    retry_after: float | None = None
    times: int = 1
    apply_then_fail: bool = False  # do the work, then answer with the fault (a lost response)


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str | None
    at: float = field(default_factory=time.monotonic)


@dataclass
class SlackBackend(FilesMixin, ChannelsMixin, StreamsMixin, PeopleMixin, AssistantMixin):
    token: str = "xoxb-fake-token"
    app_token: str = "xapp-1-fake-app-token"
    team_id: str = "T000FAKE"
    public_url: str = "http://127.0.0.1/"  # where this server is reached, ending in "/"
    real_time: bool = False  # message ts from the clock (the console) or a counter (tests)
    journal: bool = True  # keep every call, update and response (tests); the console does not
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ephemerals: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)  # chat.update, in order
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    modals: list[dict[str, Any]] = field(default_factory=list)  # views.open: {"trigger_id", "view", "id"}
    faults: list[Fault] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # known people; others by id
    channels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CHANNELS))  # public: id -> name
    # External uploads: file id -> {"filename", "length", "content"?}, then shared files.
    pending_uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    responses: list[dict[str, Any]] = field(default_factory=list)  # posted to a response_url, in order
    response_targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 0
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _last_ts: float = 0.0
    _waiters: list[asyncio.Future[None]] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"{self.public_url}api/"

    def response_url(self, name: str = "1") -> str:
        """A ``response_url`` on this server, as Slack puts in commands and interactions."""
        return f"{self.public_url}response/{name}"

    def reset(self) -> None:
        for store in (self.calls, self.updates, self.ephemerals, self.modals, self.faults, self.responses):
            store.clear()
        for mapping in (self.messages, self.views, self.pending_uploads, self.files):
            mapping.clear()
        self.reset_streams()
        self.reset_assistant()
        self.response_targets.clear()
        self._changed()

    def fail(self, method: str, **kwargs: Any) -> None:
        self.faults.append(Fault(method=method, **kwargs))

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def posted(self, channel: str | None = None) -> list[dict[str, Any]]:
        out = [m for ch, msgs in self.messages.items() for m in msgs if channel is None or ch == channel]
        return sorted(out, key=lambda m: float(m["ts"]))

    def next_ts(self, suffix: str = "000100") -> str:
        """A new message ts, unique on this server."""
        if self.real_time:
            self._last_ts = max(time.time(), self._last_ts + 0.000001)
            return f"{self._last_ts:.6f}"
        return f"{1700000000 + next(self._ts)}.{suffix}"

    def next_id(self) -> int:
        """A number unique on this server (view and file ids)."""
        return next(self._ts)

    def add_message(
        self, channel: str, text: str, *, user: str = "U0ALICE", thread_ts: str | None = None
    ) -> str:
        """Seed a message written by a person (as if it had arrived in Slack); returns its ts."""
        ts = self.next_ts("000300")
        message = {"type": "message", "user": user, "text": text, "ts": ts, "channel": channel}
        if thread_ts:
            message["thread_ts"] = thread_ts
        self.messages.setdefault(channel, []).append(message)
        self._changed()
        return ts

    def find(self, channel: str, ts: str) -> dict[str, Any] | None:
        return next((m for m in self.messages.get(channel, []) if m["ts"] == ts), None)

    async def wait_for_posts(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.posted()) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"expected {count} Slack posts, saw {len(self.posted())}: {self.posted()}"
                )
            await asyncio.sleep(0.05)
        return self.posted()

    # ------------------------------------------------------------------ live changes

    def _changed(self) -> None:
        self.version += 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def notify(self) -> None:
        """Wake the live feed after a change made outside the Web API."""
        self._changed()

    async def wait_change(self, since: int, within_s: float) -> int:
        """Wait until :attr:`version` moves past ``since`` (at most ``within_s`` seconds)."""
        if self.version == since:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, within_s)
        return self.version

    # ------------------------------------------------------------------ dispatch

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    @staticmethod
    def fault_answer(fault: Fault) -> tuple[int, dict[str, Any], dict[str, str]]:
        headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after is not None else {}
        error = fault.error or ("ratelimited" if fault.status == 429 else "internal_error")
        return fault.status, {"ok": False, "error": error}, headers

    def call(
        self, method: str, params: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One Web API call, answered as Slack answers it."""
        for key in ("metadata", "blocks"):
            if isinstance(params.get(key), str):
                params[key] = json_field(params[key])
        if self.journal:
            self.calls.append(Call(method=method, params=params, token=token))
        expected = self.app_token if method == "apps.connections.open" else self.token
        if token != expected:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        fault = self._take_fault(method)
        if fault is not None and not fault.apply_then_fail:
            return self.fault_answer(fault)
        refused = payload_refusal(method, params)
        if refused is not None:
            return 200, refused, {}
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        body = handler(params)
        if body.get("ok"):
            self._changed()
        if fault is not None:
            return self.fault_answer(fault)
        return 200, body, {}

    def respond(self, name: str, body: dict[str, Any]) -> None:
        """A post to ``response_url`` ``name``, applied to its message when the url is known."""
        if self.journal:
            self.responses.append({"name": name, **body})
        target = self.response_targets.get(name)
        if target is not None and target.get("ephemeral_ts"):
            self._respond_to_ephemeral(target, body)
        elif target is not None:
            channel, user, ts = target["channel"], target["user"], target.get("message_ts")
            message = self.find(channel, ts) if ts else None
            if body.get("delete_original") and message is not None:
                self.messages[channel].remove(message)
            elif body.get("replace_original") and message is not None:
                message["text"] = body.get("text", message["text"])
                message["blocks"] = json_field(body.get("blocks")) or []
            elif body.get("response_type") == "in_channel":
                self._m_chat_postMessage({**body, "channel": channel, "thread_ts": target.get("thread_ts")})
            else:
                self.add_ephemeral(channel, user, body)
        self._changed()

    def _respond_to_ephemeral(self, target: dict[str, Any], body: dict[str, Any]) -> None:
        """A response to a click on an ephemeral message: it is replaced, deleted or followed."""
        shown = next((e for e in self.ephemerals if e.get("message_ts") == target["ephemeral_ts"]), None)
        if shown is not None and body.get("delete_original"):
            self.ephemerals.remove(shown)
        elif shown is not None and body.get("replace_original"):
            shown["text"] = body.get("text", shown["text"])
            shown["blocks"] = json_field(body.get("blocks"))
        elif body.get("response_type") == "in_channel":
            self._m_chat_postMessage({**body, "channel": target["channel"]})
        else:
            self.add_ephemeral(target["channel"], target["user"], body)

    def add_ephemeral(self, channel: str, user: str, body: dict[str, Any]) -> str:
        """Show ``body`` (text, blocks, thread_ts) to ``user`` only; returns its ts."""
        answer = self._m_chat_postEphemeral({**body, "channel": channel, "user": user})
        self._changed()
        return str(answer.get("message_ts") or "")

    # ------------------------------------------------------------------ methods

    def _m_apps_connections_open(self, _: dict[str, Any]) -> dict[str, Any]:
        ws = self.public_url.replace("http", "ws", 1)
        return {"ok": True, "url": f"{ws}link"}

    def _m_auth_test(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake",
            "user": "lucy",
            "team_id": self.team_id,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
        }

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel")
        if not channel or str(channel).startswith("CGONE"):
            return {"ok": False, "error": "channel_not_found"}
        if not p.get("text") and not p.get("blocks"):
            return {"ok": False, "error": "no_text"}
        message = self.post_as_bot(channel, p.get("text") or "")
        if p.get("thread_ts"):
            message["thread_ts"] = p["thread_ts"]
        if p.get("metadata"):
            message["metadata"] = p["metadata"]
        if p.get("blocks"):
            message["blocks"] = json_field(p["blocks"])
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        """Edits one of the bot's messages in place; every version is kept in ``updates``."""
        channel, ts = p.get("channel"), p.get("ts")
        message = self.find(str(channel), str(ts))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if not p.get("text") and not p.get("blocks"):
            return {"ok": False, "error": "no_text"}
        message["text"] = p.get("text", message["text"])
        if "blocks" in p:
            message["blocks"] = json_field(p["blocks"])
        self.edited(message, p)
        if self.journal:
            self.updates.append(
                {"channel": channel, "ts": ts, "text": message["text"], "blocks": message.get("blocks")}
            )
        return {"ok": True, "channel": channel, "ts": ts, "text": message["text"]}

    def _m_assistant_threads_setSuggestedPrompts(self, p: dict[str, Any]) -> dict[str, Any]:
        prompts = json_field(p.get("prompts"))
        if not p.get("channel_id") or not prompts:
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True}

    def _m_views_publish(self, p: dict[str, Any]) -> dict[str, Any]:
        view = json_field(p.get("view"))
        if not p.get("user_id") or not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        self.views[p["user_id"]] = view
        return {"ok": True, "view": {"id": f"V{self.next_id()}", **view}}

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel") or not p.get("user"):
            error = "channel_not_found" if not p.get("channel") else "user_not_in_channel"
            return {"ok": False, "error": error}
        ts = self.next_ts("000200")
        self.ephemerals.append(
            {
                "channel": p["channel"],
                "user": p["user"],
                "text": p.get("text", ""),
                "blocks": json_field(p.get("blocks")),
                "thread_ts": p.get("thread_ts"),
                "message_ts": ts,
            }
        )
        return {"ok": True, "message_ts": ts}

    def _m_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        view = json_field(p.get("view"))
        if not p.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        if not isinstance(view, dict) or view.get("type") != "modal":
            return {"ok": False, "error": "invalid_arguments"}
        view_id = f"V{self.next_id()}"
        self.modals.append({"trigger_id": p["trigger_id"], "view": view, "id": view_id})
        return {"ok": True, "view": {"id": view_id, **view}}

    def _m_views_update(self, p: dict[str, Any]) -> dict[str, Any]:
        """Replace an open modal's view (by ``view_id``); earlier versions stay in ``history``."""
        view = json_field(p.get("view"))
        opened = next((m for m in self.modals if m.get("id") == p.get("view_id")), None)
        if opened is None:
            return {"ok": False, "error": "not_found"}
        if not isinstance(view, dict) or view.get("type") != "modal":
            return {"ok": False, "error": "invalid_arguments"}
        opened.setdefault("history", []).append(opened["view"])
        opened["view"] = view
        self._changed()
        return {"ok": True, "view": {"id": opened["id"], **view}}

    def _thread(self, channel: str, ts: str, with_metadata: bool) -> list[dict[str, Any]]:
        msgs = [m for m in self.messages.get(channel, []) if m.get("thread_ts") == ts or m["ts"] == ts]
        return msgs if with_metadata else [_public(m) for m in msgs]

    def _m_conversations_replies(self, p: dict[str, Any]) -> dict[str, Any]:
        with_md = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
        return {"ok": True, "messages": self._thread(p["channel"], p["ts"], with_md), "has_more": False}

    def _m_conversations_history(self, p: dict[str, Any]) -> dict[str, Any]:
        with_md = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
        msgs = list(reversed(self.messages.get(p["channel"], [])))
        return {"ok": True, "messages": msgs if with_md else [_public(m) for m in msgs], "has_more": False}


def _public(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "metadata"}
