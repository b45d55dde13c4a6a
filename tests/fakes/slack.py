"""A fake Slack Web API: a real HTTP server on 127.0.0.1 that speaks Slack's wire protocol.

The workspace itself (methods, messages, files, faults) is :class:`app.devtools.console.backend.
SlackBackend`, the same code the local console serves under ``lucy dev``; this module only
serves it over aiohttp, plus Slack's Socket Mode WebSocket:

* ``POST|GET /api/<method>`` with form, JSON or query parameters, ``Authorization: Bearer``.
* ``POST /upload/v1/<file id>``: the external upload URL (raw bytes or multipart ``file``).
* ``POST /response/<name>``: a ``response_url``.
* ``GET /link``: Socket Mode (hello, then envelopes the app acks by ``envelope_id``).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from app.devtools.console.backend import BOT_ID, BOT_USER_ID, Call, Fault, SlackBackend
from tests.fakes import serve

__all__ = ["BOT_ID", "BOT_USER_ID", "Call", "FakeSlack", "Fault"]


@dataclass
class FakeSlack(SlackBackend):
    _runner: web.AppRunner | None = None
    port: int = 0
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _acks: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    # Calls Slack carries out at once but answers late: (method, which calls, answer when set).
    _holds: list[tuple[str, Callable[[dict[str, Any]], bool], asyncio.Event]] = field(default_factory=list)
    # (method, the client's TCP port) of every Web API call: which calls shared a connection.
    connections: list[tuple[str, int]] = field(default_factory=list)

    def hold_answer(self, method: str, when: Callable[[dict[str, Any]], bool]) -> asyncio.Event:
        """The next ``method`` call matching ``when`` is carried out (recorded, posted) at once
        but answered only when the returned event is set: the window between Slack acting and
        the caller learning it, made as wide as a test needs."""
        release = asyncio.Event()
        self._holds.append((method, when, release))
        return release

    def with_actions(self, channel: str, action_id: str) -> dict[str, Any] | None:
        """The first message in ``channel`` with the button ``action_id``, as the user saw it
        (a copy: the fake edits its own)."""
        for message in self.posted(channel):
            for block in message.get("blocks") or []:
                if block.get("type") == "actions" and any(
                    e.get("action_id") == action_id for e in block["elements"]
                ):
                    return copy.deepcopy(message)
        return None

    async def _held(self, method: str, params: dict[str, Any]) -> None:
        for hold in self._holds:
            if hold[0] == method and hold[1](params):
                self._holds.remove(hold)
                await hold[2].wait()
                return

    async def start(self, port: int = 0) -> None:
        app = web.Application(client_max_size=2**20)
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_get("/link", self._socket)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        app.router.add_post("/response/{name}", self._response)
        app.router.add_get("/files-pri/{file_id}/{name}", self._download)
        self._runner, self.port = await serve(app, port)
        self.public_url = f"http://127.0.0.1:{self.port}/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _response(self, request: web.Request) -> web.Response:
        """A ``response_url`` post (JSON: text, blocks, response_type, replace_original...)."""
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        self.respond(request.match_info["name"], body)
        return web.Response(text="ok")

    async def _download(self, request: web.Request) -> web.Response:
        """files.slack.com's private download URL: the bytes, for the bot token only."""
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.Response(status=302, headers={"Location": f"{self.public_url}login"})
        content = self.file_content(request.match_info["file_id"])
        return web.Response(status=404) if content is None else web.Response(body=content)

    async def _handle(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        self.connections.append((request.match_info["method"], int(peer[1]) if peer else 0))
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(dict(await request.post()))
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("token")
        status, body, headers = self.call(request.match_info["method"], params, token)
        await self._held(request.match_info["method"], params)
        return web.json_response(body, status=status, headers=headers)

    async def _upload(self, request: web.Request) -> web.Response:
        """files.slack.com's upload URL: the raw bytes (or a multipart ``file``), no token."""
        file_id = request.match_info["file_id"]
        if file_id not in self.pending_uploads:
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
        self.upload_bytes(file_id, data)
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
        envelope_id = f"env-{self.next_id()}"
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
