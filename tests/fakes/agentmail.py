"""A fake AgentMail API (v0): a real HTTP server on 127.0.0.1 speaking AgentMail's wire protocol.

* ``POST /v0/inboxes/{inbox_id}/messages/send`` with ``Authorization: Bearer <key>``, JSON body
  ``{to, cc?, bcc?, subject?, text?, html?, labels?, reply_to?}`` (``to`` a string or a list).
* 200 answers ``{"message_id", "thread_id"}``. Errors are ``{"name", "code"?, "message", "fix"?,
  "docs"?}``; a 400 ``ValidationError`` lists ``errors`` (``path`` + ``message`` per field).
  401 without a valid key, 404 for an unknown inbox, 429 with ``Retry-After``.
* ``Idempotency-Key``: a send repeated with a key already used is answered with the first
  send's response and not sent again.
"""

from __future__ import annotations

import base64
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from svix.webhooks import Webhook

from tests.fakes import serve


@dataclass
class MailFault:
    status: int
    retry_after: float | None = None
    name: str | None = None
    message: str | None = None
    times: int = 1


@dataclass
class SentMessage:
    inbox_id: str
    body: dict[str, Any]
    message_id: str
    thread_id: str
    idempotency_key: str | None


@dataclass
class FakeAgentMail:
    api_key: str = "am_fake_agentmail_key_0123"
    inboxes: set[str] = field(default_factory=lambda: {"lucy@agentmail.to"})
    sent: list[SentMessage] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    faults: list[MailFault] = field(default_factory=list)
    _by_key: dict[str, SentMessage] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v0"

    def reset(self) -> None:
        self.sent.clear()
        self.requests.clear()
        self.faults.clear()
        self._by_key.clear()
        self.inboxes = {"lucy@agentmail.to"}

    def fail(self, status: int, **kwargs: Any) -> None:
        self.faults.append(MailFault(status=status, **kwargs))

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/v0/inboxes/{inbox_id}/messages/send", self._send)
        self._runner, self.port = await serve(app, port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def _error(status: int, name: str, message: str, **extra: Any) -> web.Response:
        return web.json_response({"name": name, "message": message, **extra}, status=status)

    async def _send(self, request: web.Request) -> web.Response:
        inbox_id = request.match_info["inbox_id"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.requests.append({"inbox_id": inbox_id, "headers": dict(request.headers), "body": body})
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(
                401, "UnauthorizedError", "The API key was not recognized.", code="unknown_api_key"
            )
        for fault in self.faults:
            if fault.times > 0:
                fault.times -= 1
                response = self._error(
                    fault.status, fault.name or "ServerError", fault.message or "Something went wrong"
                )
                if fault.retry_after is not None:
                    response.headers["Retry-After"] = str(int(fault.retry_after))
                return response
        if inbox_id not in self.inboxes:
            return self._error(404, "NotFoundError", f"Inbox {inbox_id} not found", code="inbox_not_found")
        errors = self._validate(body)
        if errors:
            return self._error(400, "ValidationError", "Invalid request", errors=errors)
        assert isinstance(body, dict)
        key = request.headers.get("Idempotency-Key")
        if key and key in self._by_key:
            first = self._by_key[key]
            return web.json_response({"message_id": first.message_id, "thread_id": first.thread_id})
        n = next(self._ids)
        message = SentMessage(inbox_id, body, f"<msg-{n}@agentmail.to>", f"thread-{n}", key)
        self.sent.append(message)
        if key:
            self._by_key[key] = message
        return web.json_response({"message_id": message.message_id, "thread_id": message.thread_id})

    @staticmethod
    def _validate(body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, dict):
            return [{"path": [], "message": "Expected object"}]
        errors = []
        to = body.get("to")
        if not (isinstance(to, str) or (isinstance(to, list) and all(isinstance(a, str) for a in to))):
            errors.append({"path": ["to"], "message": "Expected string or array of strings"})
        for name in ("subject", "text", "html"):
            if name in body and not isinstance(body[name], str):
                errors.append({"path": [name], "message": "Expected string"})
        return errors


# --------------------------------------------------------------------------- inbound (webhooks)

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"lucy-test-agentmail-webhook-key!").decode()


def message_received(
    *,
    inbox_id: str,
    thread_id: str,
    message_id: str,
    sender: str = "Bob Example <bob@example.com>",
    subject: str = "Q3 report",
    text: str = "Hi Lucy, could you send me the Q3 report?",
    event_type: str = "message.received",
) -> dict[str, Any]:
    """A ``message.received`` event as AgentMail sends it (``MessageReceivedEvent`` in the
    ``agentmail`` SDK: ``type``, ``event_type``, ``event_id``, ``message``, ``thread``)."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "type": "event",
        "event_type": event_type,
        "event_id": f"evt_{uuid.uuid4().hex[:20]}",
        "message": {
            "inbox_id": inbox_id,
            "thread_id": thread_id,
            "message_id": message_id,
            "labels": ["received"],
            "timestamp": now,
            "from": sender,
            "to": [inbox_id],
            "subject": subject,
            "preview": text[:100],
            "text": text,
            "extracted_text": text,
            "size": len(text.encode()) + 600,
            "updated_at": now,
            "created_at": now,
        },
        "thread": {
            "inbox_id": inbox_id,
            "thread_id": thread_id,
            "labels": ["received"],
            "timestamp": now,
            "senders": [sender],
            "recipients": [inbox_id],
            "subject": subject,
            "preview": text[:100],
            "last_message_id": message_id,
            "message_count": 1,
            "size": len(text.encode()) + 600,
            "updated_at": now,
            "created_at": now,
        },
    }


def svix_headers(
    body: bytes, *, secret: str = WEBHOOK_SECRET, msg_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    """Headers exactly as Svix signs a delivery (``v1,`` + HMAC-SHA256 over ``id.timestamp.body``),
    signed with the ``svix`` library itself."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex[:24]}"
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": signature,
        "Content-Type": "application/json",
    }


# --------------------------------------------------------------------------- inbound (WebSocket)


@dataclass
class FakeAgentMailSocket:
    """AgentMail's WebSocket API (``wss://ws.agentmail.to/v0``) on 127.0.0.1, as the ``agentmail``
    SDK's ``client.websockets.connect()`` speaks it: the handshake carries ``Authorization:
    Bearer <key>`` (or ``?api_key=``; 401 without a valid one), the client sends ``{"type":
    "subscribe", "event_types"?, "inbox_ids"?, "pod_ids"?}``, the server acknowledges with
    ``{"type": "subscribed", ...}`` and then sends event frames (``message.received`` ...) for the
    subscribed inboxes; an unknown frame type gets ``{"type": "error", "name", "message"}``."""

    api_key: str = "am_fake_agentmail_key_0123"
    port: int = 0
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    handshakes: int = 0
    refused: int = 0
    _live: dict[Any, set[str] | None] = field(default_factory=dict)
    _server: Any = None

    @property
    def base_url(self) -> str:
        """What ``LUCY_AGENTMAIL_BASE_URL`` is set to (the SDK then dials ``ws://.../v0``)."""
        return f"http://127.0.0.1:{self.port}/v0"

    async def start(self) -> None:
        from websockets.asyncio.server import serve

        self._server = await serve(self._session, "127.0.0.1", self.port, process_request=self._auth)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _auth(self, connection: Any, request: Any) -> Any:
        self.handshakes += 1
        query = request.path.partition("?")[2]
        keys = {request.headers.get("Authorization", ""), *(f"Bearer {v}" for v in _query_keys(query))}
        if request.path.partition("?")[0] != "/v0":
            return connection.respond(404, "Not Found\n")
        if f"Bearer {self.api_key}" not in keys:
            self.refused += 1
            return connection.respond(401, "Unauthorized\n")
        return None

    async def _session(self, connection: Any) -> None:
        import json

        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in connection:
                try:
                    frame = json.loads(raw)
                except ValueError:
                    frame = None
                if not isinstance(frame, dict) or frame.get("type") != "subscribe":
                    await connection.send(
                        json.dumps({"type": "error", "name": "ValidationError", "message": "Unknown frame"})
                    )
                    continue
                self.subscriptions.append(frame)
                inboxes = frame.get("inbox_ids")
                self._live[connection] = {i.lower() for i in inboxes} if isinstance(inboxes, list) else None
                ack = {k: frame[k] for k in ("event_types", "inbox_ids", "pod_ids") if k in frame}
                await connection.send(json.dumps({"type": "subscribed", **ack}))
        except ConnectionClosed:
            pass
        finally:
            self._live.pop(connection, None)

    @property
    def subscribed(self) -> int:
        """Connections that are open and subscribed."""
        return len(self._live)

    async def push(self, event: dict[str, Any]) -> int:
        """Send an event frame to every subscribed connection whose inboxes include its inbox."""
        import json

        inbox = str((event.get("message") or {}).get("inbox_id") or "").lower()
        sent = 0
        for connection, inboxes in list(self._live.items()):
            if inboxes is None or inbox in inboxes:
                await connection.send(json.dumps(event))
                sent += 1
        return sent

    async def send_all(self, frame: dict[str, Any]) -> None:
        """Send any frame (an ``error``, say) to every subscribed connection."""
        import json

        for connection in list(self._live):
            await connection.send(json.dumps(frame))

    async def drop(self) -> None:
        """Close every connection abnormally (the network went away)."""
        for connection in list(self._live):
            connection.transport.abort()
        self._live.clear()


def _query_keys(query: str) -> list[str]:
    from urllib.parse import parse_qs

    return parse_qs(query).get("api_key", [])
