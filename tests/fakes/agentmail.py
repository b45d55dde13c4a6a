"""A fake AgentMail API (v0): a real HTTP server on 127.0.0.1 speaking AgentMail's wire protocol.

* ``POST /v0/inboxes/{inbox_id}/messages/send`` with ``Authorization: Bearer <key>``, JSON body
  ``{to, cc?, bcc?, subject?, text?, html?, labels?, reply_to?}`` (``to`` a string or a list).
* 200 answers ``{"message_id", "thread_id"}``. Errors are ``{"name", "code"?, "message", "fix"?,
  "docs"?}``; a 400 ``ValidationError`` lists ``errors`` (``path`` + ``message`` per field).
  401 without a valid key, 404 for an unknown inbox, 429 with ``Retry-After``.
* ``POST /v0/inboxes/{inbox_id}/messages/{message_id}/reply``: the reply to a received message
  (one the fake was told about with :meth:`FakeAgentMail.receive`), in its thread; body
  ``{to?, cc?, bcc?, reply_all?, text?, html?, labels?, attachments?, headers?}``. 404
  ``NotFoundError`` for an unknown message; the reply's ``thread_id`` is the message's.
* ``Idempotency-Key``: a send or reply repeated with a key already used is answered with the
  first response and not sent again; the same key with another request is a 409
  ``ConflictError`` (AgentMail's documented behaviour).
* ``GET /v0/inboxes/{inbox_id}/messages/{message_id}/attachments/{attachment_id}``: the
  attachment's metadata with a ``download_url`` (and ``text_url`` when the fake was given
  extracted text) on this server (``GET /files/{name}``); 404 for an unknown attachment.
* ``GET /v0/inboxes/{inbox_id}``: the inbox (``{pod_id, inbox_id, email, ...}``) when it is one of
  this organisation's (``inboxes``), else 404 ``NotFoundError`` (``inbox_not_found``).
* A fault with ``apply_then_fail`` does the work, then answers with the fault (a lost response).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

from aiohttp import web
from svix.webhooks import Webhook

from tests.fakes import serve
from tests.fakes.agentmail_socket import FakeAgentMailSocket


@dataclass
class MailFault:
    status: int
    retry_after: float | None = None
    name: str | None = None
    message: str | None = None
    times: int = 1
    apply_then_fail: bool = False


@dataclass
class SentMessage:
    inbox_id: str
    body: dict[str, Any]
    message_id: str
    thread_id: str
    idempotency_key: str | None
    in_reply_to: str | None = None


@dataclass
class FakeAgentMail:
    api_key: str = "am_fake_agentmail_key_0123"
    inboxes: set[str] = field(default_factory=lambda: {"lucy@agentmail.to"})
    sent: list[SentMessage] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    faults: list[MailFault] = field(default_factory=list)
    received: dict[str, tuple[str, str]] = field(default_factory=dict)  # message id -> (inbox, thread)
    # (message id, attachment id) -> {"filename", "content_type", "content": bytes, "text"?: str}
    attachments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    downloads: list[str] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)  # inbox ids asked for (GET /v0/inboxes/{id})
    _by_key: dict[str, tuple[str, dict[str, Any], SentMessage]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    port: int = 0
    # The WebSocket API on the same port (listener mode), as on any host but AgentMail's own.
    socket: FakeAgentMailSocket | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v0"

    def reset(self) -> None:
        self.sent.clear()
        self.requests.clear()
        self.faults.clear()
        self._by_key.clear()
        self.received.clear()
        self.attachments.clear()
        self.downloads.clear()
        self.lookups.clear()
        self.inboxes = {"lucy@agentmail.to"}

    @property
    def replies(self) -> list[SentMessage]:
        return [m for m in self.sent if m.in_reply_to is not None]

    def receive(self, event: dict[str, Any]) -> None:
        """Know a received message (from :func:`message_received`), so it can be replied to."""
        message = event["message"]
        self.inboxes.add(message["inbox_id"])
        self.received[message["message_id"]] = (message["inbox_id"], message["thread_id"])

    def fail(self, status: int, **kwargs: Any) -> None:
        self.faults.append(MailFault(status=status, **kwargs))

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/v0/inboxes/{inbox_id}/messages/send", self._send)
        app.router.add_post("/v0/inboxes/{inbox_id}/messages/{message_id}/reply", self._reply)
        app.router.add_get("/v0/inboxes/{inbox_id}", self._inbox)
        app.router.add_get(
            "/v0/inboxes/{inbox_id}/messages/{message_id}/attachments/{attachment_id}", self._attachment
        )
        app.router.add_get("/files/{name}", self._file)
        if self.socket is not None:
            self.socket.mount(app)
        self._runner, self.port = await serve(app, port)
        if self.socket is not None:
            self.socket.port = self.port

    async def stop(self) -> None:
        if self.socket is not None:
            await self.socket.close_all()
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def _error(status: int, name: str, message: str, **extra: Any) -> web.Response:
        return web.json_response({"name": name, "message": message, **extra}, status=status)

    def attach(
        self,
        event: dict[str, Any],
        name: str,
        content: bytes,
        content_type: str,
        text: str | None = None,
        *,
        delay: float = 0.0,
        download_url: bool = True,
    ) -> None:
        """Add an attachment to the message of ``event`` (and to the event's ``attachments``).
        ``delay``: seconds its file takes to start downloading; ``download_url=False``: the
        metadata's ``download_url`` is null."""
        message = event["message"]
        attachment_id = f"att_{len(self.attachments) + 1}_{uuid.uuid4().hex[:8]}"
        self.attachments[(message["message_id"], attachment_id)] = {
            "filename": name,
            "content_type": content_type,
            "content": content,
            "delay": delay,
            "download_url": download_url,
            **({"text": text} if text is not None else {}),
        }
        message.setdefault("attachments", []).append(
            {
                "attachment_id": attachment_id,
                "filename": name,
                "size": len(content),
                "content_type": content_type,
                "content_disposition": "attachment",
            }
        )

    async def _attachment(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(401, "UnauthorizedError", "The API key was not recognized.")
        fault = next((f for f in self.faults if f.times > 0), None)
        if fault is not None:
            fault.times -= 1
            return self._fault(fault)
        message_id, attachment_id = request.match_info["message_id"], request.match_info["attachment_id"]
        found = self.attachments.get((message_id, attachment_id))
        if found is None or self.received.get(message_id, ("",))[0] != request.match_info["inbox_id"]:
            return self._error(404, "NotFoundError", "Attachment not found", code="attachment_not_found")
        base = f"http://127.0.0.1:{self.port}/files/{attachment_id}"
        return web.json_response(
            {
                "attachment_id": attachment_id,
                "filename": found["filename"],
                "size": len(found["content"]),
                "content_type": found["content_type"],
                "content_disposition": "attachment",
                "download_url": f"{base}?sig=fake" if found["download_url"] else None,
                "expires_at": datetime.now(UTC).isoformat(),
                **({"text_url": f"{base}.txt?sig=fake"} if "text" in found else {}),
            }
        )

    async def _inbox(self, request: web.Request) -> web.Response:
        """One of the organisation's inboxes, as ``inboxes.get`` reads it."""
        inbox_id = request.match_info["inbox_id"]
        self.lookups.append(inbox_id)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(401, "UnauthorizedError", "The API key was not recognized.")
        fault = next((f for f in self.faults if f.times > 0), None)
        if fault is not None:
            fault.times -= 1
            return self._fault(fault)
        if inbox_id not in self.inboxes:
            return self._error(404, "NotFoundError", f"Inbox {inbox_id} not found", code="inbox_not_found")
        at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return web.json_response(
            {
                "pod_id": "pod_fake",
                "inbox_id": inbox_id,
                "email": inbox_id,
                "updated_at": at,
                "created_at": at,
            }
        )

    async def _file(self, request: web.Request) -> web.Response:
        """The signed CDN URL of an attachment (its bytes, or ``.txt``: its extracted text)."""
        name = request.match_info["name"]
        self.downloads.append(name)
        for (_, attachment_id), found in self.attachments.items():
            if name in (attachment_id, f"{attachment_id}.txt") and found["delay"]:
                await asyncio.sleep(found["delay"])
            if name == attachment_id:
                return web.Response(body=found["content"], content_type="application/octet-stream")
            if name == f"{attachment_id}.txt" and "text" in found:
                return web.Response(text=found["text"], content_type="text/plain")
        return web.Response(status=404, text="NoSuchKey")

    async def _send(self, request: web.Request) -> web.Response:
        return await self._handle(request, None)

    async def _reply(self, request: web.Request) -> web.Response:
        return await self._handle(request, request.match_info["message_id"])

    async def _handle(self, request: web.Request, in_reply_to: str | None) -> web.Response:
        inbox_id = request.match_info["inbox_id"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.requests.append(
            {"inbox_id": inbox_id, "reply_to": in_reply_to, "headers": dict(request.headers), "body": body}
        )
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(
                401, "UnauthorizedError", "The API key was not recognized.", code="unknown_api_key"
            )
        fault = next((f for f in self.faults if f.times > 0), None)
        if fault is not None:
            fault.times -= 1
            if not fault.apply_then_fail:
                return self._fault(fault)
        answer = self._answer(request, inbox_id, body, in_reply_to)
        return self._fault(fault) if fault is not None else answer

    def _fault(self, fault: MailFault) -> web.Response:
        response = self._error(
            fault.status, fault.name or "ServerError", fault.message or "Something went wrong"
        )
        if fault.retry_after is not None:
            response.headers["Retry-After"] = str(int(fault.retry_after))
        return response

    def _answer(
        self, request: web.Request, inbox_id: str, body: Any, in_reply_to: str | None
    ) -> web.Response:
        if inbox_id not in self.inboxes:
            return self._error(404, "NotFoundError", f"Inbox {inbox_id} not found", code="inbox_not_found")
        original = self.received.get(in_reply_to) if in_reply_to is not None else None
        if in_reply_to is not None and (original is None or original[0] != inbox_id):
            return self._error(404, "NotFoundError", "Message not found", code="message_not_found")
        errors = self._validate(body, reply=in_reply_to is not None)
        if errors:
            return self._error(400, "ValidationError", "Invalid request", errors=errors)
        assert isinstance(body, dict)
        key = request.headers.get("Idempotency-Key")
        route = f"{inbox_id} {in_reply_to}"
        if key and key in self._by_key:
            first_route, first_body, first = self._by_key[key]
            if (first_route, first_body) != (route, body):
                return self._error(
                    409, "ConflictError", "Idempotency key reused with a different request", code="conflict"
                )
            return web.json_response({"message_id": first.message_id, "thread_id": first.thread_id})
        n = next(self._ids)
        thread = original[1] if original is not None else f"thread-{n}"
        message = SentMessage(inbox_id, body, f"<msg-{n}@agentmail.to>", thread, key, in_reply_to)
        self.sent.append(message)
        if key:
            self._by_key[key] = (route, body, message)
        return web.json_response({"message_id": message.message_id, "thread_id": message.thread_id})

    @staticmethod
    def _validate(body: Any, *, reply: bool = False) -> list[dict[str, Any]]:
        if not isinstance(body, dict):
            return [{"path": [], "message": "Expected object"}]
        errors = []
        to = body.get("to")
        optional = reply and to is None  # a reply goes to the sender unless told otherwise
        if not optional and not (
            isinstance(to, str) or (isinstance(to, list) and all(isinstance(a, str) for a in to))
        ):
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
    authenticated: bool = True,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A ``message.received`` event as AgentMail sends it (``MessageReceivedEvent`` in the
    ``agentmail`` SDK: ``type``, ``event_type``, ``event_id``, ``message``, ``thread``).

    ``message.headers`` (AgentMail's ``Dict[str, str]``) carries the receiving MTA's aligned
    ``Authentication-Results: ...; dmarc=pass header.from=<the From domain>`` unless
    ``authenticated`` is false (no such header); ``headers`` are added on top."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    domain = parseaddr(sender)[1].rpartition("@")[2].lower()
    mail_headers = {"Message-ID": message_id}
    if authenticated:
        mail_headers["Authentication-Results"] = (
            f"mx.agentmail.to; spf=pass smtp.mailfrom={domain}; dkim=pass header.d={domain}; "
            f"dmarc=pass (p=REJECT) header.from={domain}"
        )
    mail_headers.update(headers or {})
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
            "headers": mail_headers,
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
