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
