"""The answer to an email, sent back in its thread (activity ``email.reply``), through the
official ``agentmail`` SDK.

AgentMail's reply endpoint for the received message, ``POST /v0/inboxes/{inbox_id}/messages/
{message_id}/reply`` (SDK ``client.inboxes.messages.reply``), keeps the reply in the same email
thread (``In-Reply-To``/``References`` set by AgentMail). The recipient is given explicitly:
the address the mail came from, never a ``Reply-To`` the mail asked for, so an approver sees
exactly who gets it. The body is the answer with secrets masked, as plain text (the model's
Markdown reads as such) and as simple HTML (:func:`~activities.tools.documents.markdown_to_html`:
everything escaped, no links).

Idempotency: every reply carries an ``Idempotency-Key`` derived from the workflow id and step;
a Temporal retry after a lost response is answered from AgentMail's record instead of sending
a second mail (a key reused with other content is a 409 ``ConflictError``).

The SDK's own retries are off (``max_retries=0``): Temporal retries. Errors are mapped as in
:mod:`activities.http_errors`: 429/5xx/408/409, timeouts and connection errors are retryable;
401 means the deployment is not set up (``ToolNotConfigured``); other 4xx are ``ToolRejected``.

:func:`agentmail_client` and :func:`map_agentmail_error` are small on purpose: they can be
swapped for a shared SDK factory without touching the activity.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from agentmail import AsyncAgentMail
from agentmail.core.api_error import ApiError
from agentmail.core.request_options import RequestOptions
from agentmail.environment import AgentMailEnvironment
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http_errors import (
    MAX_RETRY_AFTER_S,
    is_retryable_status,
    not_configured,
    rejected,
    short,
    transport_error,
)
from activities.tools.documents import markdown_to_html
from lucy.contracts import EmailReplyRequest, EmailReplyResult, ErrorType, redact_secrets
from lucy.settings import ToolSettings

TIMEOUT_S = 45
MAX_REPLY_CHARS = 100_000
NO_RETRIES: RequestOptions = {"max_retries": 0, "timeout_in_seconds": TIMEOUT_S}


def agentmail_client(settings: ToolSettings, http: httpx.AsyncClient | None = None) -> AsyncAgentMail:
    """An SDK client pointed at ``LUCY_AGENTMAIL_BASE_URL`` (its ``/v0`` is the SDK's own path
    prefix), on the worker's shared ``httpx`` client when given."""
    key = settings.agentmail_api_key
    if key is None:
        raise not_configured("email replies need LUCY_AGENTMAIL_API_KEY")
    root = settings.agentmail_base_url.rstrip("/").removesuffix("/v0")
    ws = "wss://" + root.split("://", 1)[-1]
    return AsyncAgentMail(
        api_key=key.get_secret_value(),
        environment=AgentMailEnvironment(http=root, websockets=ws),
        timeout=TIMEOUT_S,
        httpx_client=http,
    )


def _error_text(body: Any) -> str:
    """AgentMail's error body (an SDK model or a dict) in words: message, field errors, fix."""
    if hasattr(body, "model_dump"):
        body = body.model_dump(mode="json", by_alias=True)
    if not isinstance(body, dict):
        return short(str(body or ""), 200)
    parts = [str(body.get("message") or body.get("name") or "")]
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        parts.append(
            "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors[:5])
        )
    if body.get("fix"):
        parts.append(f"fix: {body['fix']}")
    return short(" — ".join(p for p in parts if p), 400)


def _retry_after(headers: dict[str, str] | None) -> timedelta | None:
    raw = {k.lower(): v for k, v in (headers or {}).items()}.get("retry-after")
    try:
        seconds = float(raw) if raw is not None else None
    except ValueError:
        seconds = None
    return None if seconds is None else timedelta(seconds=min(max(seconds, 0.0), MAX_RETRY_AFTER_S))


def map_agentmail_error(exc: ApiError, what: str = "AgentMail") -> ApplicationError:
    """An SDK ``ApiError`` as Lucy's error types (retryable / not configured / rejected)."""
    status = exc.status_code or 0
    message = _error_text(exc.body)
    if status == 401:
        return not_configured(
            f"{what}: AgentMail refused the API key (HTTP 401): check LUCY_AGENTMAIL_API_KEY"
        )
    if is_retryable_status(status):
        return ApplicationError(
            f"{what}: AgentMail unavailable (HTTP {status}): {message}",
            type=ErrorType.TOOL_RETRYABLE,
            next_retry_delay=_retry_after(exc.headers),
        )
    return rejected(f"{what}: AgentMail refused (HTTP {status}): {message}")


class EmailReplyActivities:
    """Replies through the ``agentmail`` SDK on an injected ``httpx`` client."""

    def __init__(self, settings: ToolSettings, http: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._http = http
        self._client: AsyncAgentMail | None = None

    def client(self) -> AsyncAgentMail:
        if self._client is None:
            self._client = agentmail_client(self._settings, self._http)
        return self._client

    @activity.defn(name="email.reply")
    async def reply(self, request: EmailReplyRequest) -> EmailReplyResult:
        """Send ``request.text`` (secrets masked) to ``request.to`` as the reply to the received
        message, once per idempotency key."""
        text = redact_secrets(request.text).strip()
        if not text:
            raise rejected("the email reply is empty")
        if len(text) > MAX_REPLY_CHARS:
            text = text[:MAX_REPLY_CHARS] + "\n[… cut]"
        try:
            sent = await self.client().inboxes.messages.reply(
                request.inbox_id,
                request.message_id,
                to=[request.to],
                text=text,
                html=markdown_to_html(text),
                idempotency_key=request.idempotency_key,
                request_options=NO_RETRIES,
            )
        except ApiError as exc:
            raise map_agentmail_error(exc, "email reply") from None
        except httpx.HTTPError as exc:
            raise transport_error(exc, "AgentMail reply") from None
        activity.logger.info("email reply sent", extra={"message_id": sent.message_id[:200]})
        return EmailReplyResult(message_id=sent.message_id, thread_id=sent.thread_id)
