"""A fake Slack Web API: a real HTTP server on 127.0.0.1 that speaks Slack's wire protocol.

* ``POST|GET /api/<method>`` with form, JSON or query parameters, ``Authorization: Bearer``.
* Answers ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}`` (HTTP 200), and 429 with
  ``Retry-After`` when told to.
* Keeps the messages it was sent (with metadata) so ``conversations.replies`` and
  ``conversations.history`` return them, as Slack does.
* Files through Slack's external upload flow: ``files.getUploadURLExternal`` hands out an upload
  URL on this server (``POST /upload/v1/<file id>`` takes the raw bytes and answers
  ``OK - <length>`` as text, like files.slack.com), ``files.completeUploadExternal`` shares the
  file in the channel/thread as a message with ``files`` (visible to ``conversations.replies``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import serve

BOT_USER_ID = "UBOTLUCY"
BOT_ID = "BBOTLUCY"


@dataclass
class Fault:
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
class FakeSlack:
    token: str = "xoxb-fake-token"
    app_token: str = "xapp-1-fake-app-token"
    team_id: str = "T000FAKE"
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ephemerals: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)  # chat.update, in order
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    modals: list[dict[str, Any]] = field(default_factory=list)  # views.open: {"trigger_id", "view"}
    faults: list[Fault] = field(default_factory=list)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    port: int = 0
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _acks: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    # External uploads: file id -> {"filename", "length", "content"?}, then shared files.
    pending_uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    responses: list[dict[str, Any]] = field(default_factory=list)  # posted to a response_url, in order

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str = "1") -> str:
        """A ``response_url`` on this server, as Slack puts in commands and interactions."""
        return f"http://127.0.0.1:{self.port}/response/{name}"

    def reset(self) -> None:
        self.calls.clear()
        self.messages.clear()
        self.updates.clear()
        self.ephemerals.clear()
        self.views.clear()
        self.modals.clear()
        self.faults.clear()
        self.pending_uploads.clear()
        self.files.clear()
        self.responses.clear()

    def fail(self, method: str, **kwargs: Any) -> None:
        self.faults.append(Fault(method=method, **kwargs))

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def posted(self, channel: str | None = None) -> list[dict[str, Any]]:
        out = [m for ch, msgs in self.messages.items() for m in msgs if channel is None or ch == channel]
        return sorted(out, key=lambda m: float(m["ts"]))

    def shared_files(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Files shared by ``files.completeUploadExternal`` (with their bytes in ``content``)."""
        return [f for f in self.files.values() if channel is None or f["channel"] == channel]

    def add_message(
        self, channel: str, text: str, *, user: str = "U0ALICE", thread_ts: str | None = None
    ) -> str:
        """Seed a message written by a person (as if it had arrived in Slack); returns its ts."""
        ts = f"{1700000000 + next(self._ts)}.000300"
        message = {"type": "message", "user": user, "text": text, "ts": ts, "channel": channel}
        if thread_ts:
            message["thread_ts"] = thread_ts
        self.messages.setdefault(channel, []).append(message)
        return ts

    async def wait_for_posts(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.posted()) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"expected {count} Slack posts, saw {len(self.posted())}: {self.posted()}"
                )
            await asyncio.sleep(0.05)
        return self.posted()

    # ------------------------------------------------------------------ server

    async def start(self, port: int = 0) -> None:
        app = web.Application(client_max_size=2**20)
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_get("/link", self._socket)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        app.router.add_post("/response/{name}", self._response)
        self._runner, self.port = await serve(app, port)

    async def _response(self, request: web.Request) -> web.Response:
        """A ``response_url`` post (JSON: text, blocks, response_type, replace_original...)."""
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        self.responses.append({"name": request.match_info["name"], **body})
        return web.Response(text="ok")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(dict(await request.post()))
        for key in ("metadata", "blocks"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    @staticmethod
    def _fault_response(fault: Fault) -> web.Response:
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(int(fault.retry_after))
        body = {
            "ok": False,
            "error": fault.error or ("ratelimited" if fault.status == 429 else "internal_error"),
        }
        return web.json_response(body, status=fault.status, headers=headers)

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("token")
        self.calls.append(Call(method=method, params=params, token=token))
        expected = self.app_token if method == "apps.connections.open" else self.token
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        fault = self._take_fault(method)
        if fault is not None and not fault.apply_then_fail:
            return self._fault_response(fault)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        body = handler(params)
        if fault is not None:
            return self._fault_response(fault)
        return web.json_response(body)

    async def _upload(self, request: web.Request) -> web.Response:
        """files.slack.com's upload URL: the raw bytes (or a multipart ``file``), no token."""
        file_id = request.match_info["file_id"]
        pending = self.pending_uploads.get(file_id)
        if pending is None:
            return web.Response(status=404, text="Not Found", content_type="text/plain")
        fault = self._take_fault("upload")
        if fault is not None:
            return web.Response(status=fault.status, text="Internal Server Error", content_type="text/plain")
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = form.get("file") or form.get("filename")
            data = part.file.read() if isinstance(part, web.FileField) else str(part or "").encode()
        else:
            data = await request.content.read()  # may exceed client_max_size, as Slack allows
        pending["content"] = data
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    # ------------------------------------------------------------------ Socket Mode

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """Slack's Socket Mode: hello, then envelopes; the app acks each with its envelope_id."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0LUCY"}})
        async for msg in ws:
            if msg.type.name != "TEXT":
                continue
            data = json.loads(msg.data)
            future = self._acks.pop(str(data.get("envelope_id")), None)
            if future is not None and not future.done():
                future.set_result(data)
        if ws in self.sockets:
            self.sockets.remove(ws)
        return ws

    async def wait_for_socket(self, within_s: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + within_s
        while not self.sockets:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("no Socket Mode connection")
            await asyncio.sleep(0.05)

    async def send_envelope(
        self, payload: dict[str, Any], kind: str = "events_api", within_s: float = 10.0
    ) -> dict:
        """Deliver one envelope over Socket Mode and wait for the app's ack."""
        envelope_id = f"env-{next(self._ts)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        await self.sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
                "payload": payload,
            }
        )
        return await asyncio.wait_for(future, within_s)

    # ------------------------------------------------------------------ methods

    def _m_apps_connections_open(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link"}

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
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not p.get("text") and not p.get("blocks"):
            return {"ok": False, "error": "no_text"}
        if channel.startswith("CGONE"):
            return {"ok": False, "error": "channel_not_found"}
        ts = f"{1700000000 + next(self._ts)}.000100"
        message = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "text": p["text"],
            "ts": ts,
            "channel": channel,
        }
        if p.get("thread_ts"):
            message["thread_ts"] = p["thread_ts"]
        if p.get("metadata"):
            message["metadata"] = p["metadata"]
        if p.get("blocks"):
            message["blocks"] = _json_field(p["blocks"])
        self.messages.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        """Edits one of the bot's messages in place; every version is kept in ``updates``."""
        channel, ts = p.get("channel"), p.get("ts")
        message = next((m for m in self.messages.get(str(channel), []) if m["ts"] == ts), None)
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if not p.get("text") and not p.get("blocks"):
            return {"ok": False, "error": "no_text"}
        message["text"] = p.get("text", message["text"])
        if "blocks" in p:
            message["blocks"] = _json_field(p["blocks"])
        self.updates.append(
            {"channel": channel, "ts": ts, "text": message["text"], "blocks": message.get("blocks")}
        )
        return {"ok": True, "channel": channel, "ts": ts, "text": message["text"]}

    def _m_assistant_threads_setStatus(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel_id") or not p.get("thread_ts"):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True}

    def _m_assistant_threads_setSuggestedPrompts(self, p: dict[str, Any]) -> dict[str, Any]:
        prompts = p.get("prompts")
        if isinstance(prompts, str):
            prompts = json.loads(prompts)
        if not p.get("channel_id") or not prompts:
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True}

    def _m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        uid = p.get("user")
        if not uid:
            return {"ok": False, "error": "user_not_found"}
        return {
            "ok": True,
            "user": {
                "id": uid,
                "name": uid.lower(),
                "deleted": uid.startswith("UGONE"),
                "is_admin": uid.startswith("UADMIN"),
                "is_owner": uid.startswith("UOWNER"),
                "is_restricted": uid.startswith("UGUEST"),
                # Slack Connect: a person whose home team is another organisation's
                **({"team_id": "TOTHERORG"} if uid.startswith("UEXT") else {}),
                "is_bot": False,
                "tz": "Europe/Paris",
                "profile": {"display_name": f"name-{uid.lower()}", "real_name": f"Real {uid}"},
            },
        }

    def _m_views_publish(self, p: dict[str, Any]) -> dict[str, Any]:
        view = p.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not p.get("user_id") or not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        self.views[p["user_id"]] = view
        return {"ok": True, "view": {"id": f"V{next(self._ts)}", **view}}

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel") or not p.get("user"):
            return {
                "ok": False,
                "error": "channel_not_found" if not p.get("channel") else "user_not_in_channel",
            }
        blocks = p.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        self.ephemerals.append(
            {
                "channel": p["channel"],
                "user": p["user"],
                "text": p.get("text", ""),
                "blocks": blocks,
                "thread_ts": p.get("thread_ts"),
            }
        )
        return {"ok": True, "message_ts": f"{1700000000 + next(self._ts)}.000200"}

    def _m_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        view = p.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not p.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        if not isinstance(view, dict) or view.get("type") != "modal":
            return {"ok": False, "error": "invalid_arguments"}
        self.modals.append({"trigger_id": p["trigger_id"], "view": view})
        return {"ok": True, "view": {"id": f"V{next(self._ts)}", **view}}

    def _thread(self, channel: str, ts: str, with_metadata: bool) -> list[dict[str, Any]]:
        msgs = [m for m in self.messages.get(channel, []) if m.get("thread_ts") == ts or m["ts"] == ts]
        if not with_metadata:
            msgs = [{k: v for k, v in m.items() if k != "metadata"} for m in msgs]
        return msgs

    def _m_conversations_replies(self, p: dict[str, Any]) -> dict[str, Any]:
        with_md = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
        return {"ok": True, "messages": self._thread(p["channel"], p["ts"], with_md), "has_more": False}

    def _m_conversations_history(self, p: dict[str, Any]) -> dict[str, Any]:
        with_md = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
        msgs = list(reversed(self.messages.get(p["channel"], [])))
        if not with_md:
            msgs = [{k: v for k, v in m.items() if k != "metadata"} for m in msgs]
        return {"ok": True, "messages": msgs, "has_more": False}

    # ------------------------------------------------------------------ files (external upload)

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        try:
            length = int(p.get("length", ""))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not p.get("filename") or length <= 0:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ts):08d}"
        self.pending_uploads[file_id] = {"filename": p["filename"], "length": length}
        return {
            "ok": True,
            "upload_url": f"http://127.0.0.1:{self.port}/upload/v1/{file_id}",
            "file_id": file_id,
        }

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        try:
            items = json.loads(p["files"]) if isinstance(p.get("files"), str) else p.get("files")
        except (KeyError, ValueError):
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(items, list) or not items:
            return {"ok": False, "error": "invalid_arguments"}
        channel = p.get("channel_id") or p.get("channels") or None
        thread_ts = p.get("thread_ts") or None
        if channel and channel.startswith("CGONE"):
            return {"ok": False, "error": "channel_not_found"}
        shared: list[dict[str, Any]] = []
        for item in items:
            pending = self.pending_uploads.get(str(item.get("id")))
            if pending is None or "content" not in pending:
                return {"ok": False, "error": "file_not_found"}
            if len(pending["content"]) != pending["length"]:
                return {"ok": False, "error": "file_upload_size_mismatch"}
        for item in items:
            pending = self.pending_uploads.pop(str(item["id"]))
            name = pending["filename"]
            record = {
                "id": str(item["id"]),
                "name": name,
                "title": item.get("title") or name,
                "filetype": name.rsplit(".", 1)[-1] if "." in name else "",
                "size": len(pending["content"]),
                "content": pending["content"],
                "channel": channel,
                "thread_ts": thread_ts,
            }
            self.files[record["id"]] = record
            shared.append(record)
        if channel:
            public = [
                {k: v for k, v in f.items() if k not in ("content", "channel", "thread_ts")} for f in shared
            ]
            message: dict[str, Any] = {
                "type": "message",
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "text": p.get("initial_comment") or "",
                "ts": f"{1700000000 + next(self._ts)}.000100",
                "channel": channel,
                "files": public,
                "upload": True,
            }
            if thread_ts:
                message["thread_ts"] = thread_ts
            self.messages.setdefault(channel, []).append(message)
        return {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in shared]}


def _json_field(value: Any) -> Any:
    """Slack accepts JSON fields (blocks, metadata) as objects or as JSON text in a form body."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
