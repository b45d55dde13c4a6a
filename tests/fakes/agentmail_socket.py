"""AgentMail's WebSocket API (``wss://ws.agentmail.to/v0``) on 127.0.0.1, as the ``agentmail``
SDK's ``client.websockets.connect()`` speaks it.

* The handshake (``GET /v0``, upgraded) carries ``Authorization: Bearer <key>`` or
  ``?api_key=<key>``; without a valid one it is refused with 401, before any upgrade.
* The client sends ``{"type": "subscribe", "event_types"?, "inbox_ids"?, "pod_ids"?}``; the server
  acknowledges with ``{"type": "subscribed", ...}`` and then sends event frames
  (``message.received`` ...) for the subscribed inboxes. Any other frame gets
  ``{"type": "error", "name", "message"}``.

It runs on its own (:meth:`FakeAgentMailSocket.start`) or on the HTTP fake's port
(:meth:`FakeAgentMailSocket.mount` into :class:`tests.fakes.agentmail.FakeAgentMail`'s app), as
``LUCY_AGENTMAIL_BASE_URL`` on any host but AgentMail's own serves both HTTP and WebSocket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes import serve

API_KEY = "am_fake_agentmail_key_0123"


@dataclass
class FakeAgentMailSocket:
    api_key: str = API_KEY
    port: int = 0
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    handshakes: int = 0
    refused: int = 0
    _live: dict[web.WebSocketResponse, set[str] | None] = field(default_factory=dict)
    _requests: dict[web.WebSocketResponse, web.Request] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """What ``LUCY_AGENTMAIL_BASE_URL`` is set to (the SDK then dials ``ws://.../v0``)."""
        return f"http://127.0.0.1:{self.port}/v0"

    def mount(self, app: web.Application) -> None:
        """Serve the WebSocket API on ``app`` (the HTTP fake's), at ``GET /v0``."""
        app.router.add_get("/v0", self._session)

    async def start(self) -> None:
        app = web.Application()
        self.mount(app)
        self._runner, self.port = await serve(app, self.port)

    async def close_all(self) -> None:
        """Close every connection cleanly (the server is going away)."""
        for ws in list(self._requests):
            await ws.close()

    async def stop(self) -> None:
        await self.close_all()
        if self._runner is not None:
            await self._runner.cleanup()

    def _authorized(self, request: web.Request) -> bool:
        keys = {
            request.headers.get("Authorization", ""),
            *(f"Bearer {v}" for v in request.query.getall("api_key", [])),
        }
        return f"Bearer {self.api_key}" in keys

    async def _session(self, request: web.Request) -> web.StreamResponse:
        self.handshakes += 1
        if not self._authorized(request):
            self.refused += 1
            return web.Response(status=401, text="Unauthorized\n")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._requests[ws] = request
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(message.data)
                except ValueError:
                    frame = None
                if not isinstance(frame, dict) or frame.get("type") != "subscribe":
                    await ws.send_str(
                        json.dumps({"type": "error", "name": "ValidationError", "message": "Unknown frame"})
                    )
                    continue
                self.subscriptions.append(frame)
                inboxes = frame.get("inbox_ids")
                self._live[ws] = {i.lower() for i in inboxes} if isinstance(inboxes, list) else None
                ack = {k: frame[k] for k in ("event_types", "inbox_ids", "pod_ids") if k in frame}
                await ws.send_str(json.dumps({"type": "subscribed", **ack}))
        finally:
            self._live.pop(ws, None)
            self._requests.pop(ws, None)
        return ws

    @property
    def subscribed(self) -> int:
        """Connections that are open and subscribed."""
        return len(self._live)

    async def push(self, event: dict[str, Any]) -> int:
        """Send an event frame to every subscribed connection whose inboxes include its inbox."""
        inbox = str((event.get("message") or {}).get("inbox_id") or "").lower()
        sent = 0
        for ws, inboxes in list(self._live.items()):
            if inboxes is None or inbox in inboxes:
                await ws.send_str(json.dumps(event))
                sent += 1
        return sent

    async def send_all(self, frame: dict[str, Any]) -> None:
        """Send any frame (an ``error``, say) to every subscribed connection."""
        for ws in list(self._live):
            await ws.send_str(json.dumps(frame))

    async def drop(self) -> None:
        """Close every connection abnormally (the network went away)."""
        for ws in list(self._live):
            transport = self._requests[ws].transport
            if transport is not None:
                transport.abort()
        self._live.clear()
