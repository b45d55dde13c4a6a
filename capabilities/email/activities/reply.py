"""The answer to an email, sent back in its thread (activity ``email.reply``), through the
official ``agentmail`` SDK.

AgentMail's reply endpoint for the received message, ``POST /v0/inboxes/{inbox_id}/messages/
{message_id}/reply`` (SDK ``client.inboxes.messages.reply``), keeps the reply in the same email
thread (``In-Reply-To``/``References`` set by AgentMail). The recipient is given explicitly:
the address the mail came from, never a ``Reply-To`` the mail asked for, so an approver sees
exactly who gets it. The body is the answer with secrets masked, as plain text (the model's
Markdown reads as such) and as simple HTML (:func:`~capabilities.tools.activities.documents.markdown_to_html`:
everything escaped, no links).

Idempotency: every reply carries an ``Idempotency-Key`` derived from the workflow id and step;
a Temporal retry after a lost response is answered from AgentMail's record instead of sending
a second mail (a key reused with other content is a 409 ``ConflictError``).

The client is the shared one (:mod:`capabilities.email.activities.agentmail_sdk`); the SDK's own retries are
off
(``NO_RETRIES``): Temporal retries. Errors are mapped by
:func:`~capabilities.email.activities.agentmail_sdk.map_agentmail_error`: 429/5xx/408/409, timeouts and
connection
errors are retryable; 401 means the deployment is not set up (``ToolNotConfigured``); other 4xx
are ``ToolRejected``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from temporalio import activity

from capabilities.email.activities.agentmail_sdk import NO_RETRIES, map_agentmail_error
from capabilities.email.agentmail import build_agentmail_client
from capabilities.email.contracts import EmailReplyRequest, EmailReplyResult
from capabilities.tools.activities.documents import markdown_to_html
from capabilities.tools.activities.http_errors import not_configured, rejected
from lucy.redact import redact_secrets
from lucy.settings import ToolSettings

if TYPE_CHECKING:
    from agentmail import AsyncAgentMail

MAX_REPLY_CHARS = 100_000


def agentmail_client(settings: ToolSettings, http: httpx.AsyncClient | None = None) -> AsyncAgentMail:
    """The shared SDK client (:func:`capabilities.email.agentmail.build_agentmail_client`), on the worker's
    ``httpx`` client when given. Replies need only the API key: they answer mail that came in,
    whether or not the ``send_email`` tool is on (``LUCY_AGENTMAIL_ENABLED``)."""
    if settings.agentmail_api_key is None:
        raise not_configured("email replies need LUCY_AGENTMAIL_API_KEY")
    return build_agentmail_client(settings, http=http)


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
        from agentmail.core.api_error import ApiError

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
        except Exception as exc:
            if not isinstance(exc, httpx.HTTPError | ApiError):
                raise
            raise map_agentmail_error(exc, what="email reply") from None
        activity.logger.info("email reply sent", extra={"message_id": sent.message_id[:200]})
        return EmailReplyResult(message_id=sent.message_id, thread_id=sent.thread_id)
