"""Email from Lucy's inbox: the ``send_email`` tool (activity ``tools.email``), over AgentMail.

Wire protocol (AgentMail API v0), as documented at
https://docs.agentmail.to/api-reference/inboxes/messages/send and https://docs.agentmail.to/errors:

* ``POST {agentmail_base_url}/inboxes/{inbox_id}/messages/send`` (the base URL ends in ``/v0``;
  the inbox id is its address, ``lucy@{agentmail_domain}``), ``Authorization: Bearer <key>``,
  JSON body ``{"to": [...], "subject", "text", "html"?}``.
* HTTP 200 answers ``{"message_id", "thread_id"}``.
* Errors are ``{"name", "code"?, "message", "fix"?, "docs"?}``; a 400 ``ValidationError`` also
  has ``errors`` (one entry per invalid field). 422 ``UnprocessableError``, 403 (forbidden, a
  rejected message), 404 (no such inbox), 409 ``ConflictError``, 429 with ``Retry-After``.

Idempotency: every send carries an ``Idempotency-Key`` header derived from the workflow id and
step (AgentMail's "How do I prevent duplicate sends?" page: ``client_id`` dedupes creates,
``Idempotency-Key`` dedupes sends, replies and forwards). A Temporal retry of the same step
sends the same key, so a send whose response was lost is answered from AgentMail's record
instead of being sent again. The guarantee is AgentMail's: it holds within its replay window
and only if the deployment's AgentMail honours the header; outside it a retry after a lost
response (a timeout or a 5xx after the send happened) could send twice. Retries are few
(``_retry(3)`` in the catalog), a 429 means nothing was sent, and the workflow only sends email
after a human approved the step.

Errors: 429/5xx/409 (a concurrent request with the same key), timeouts and connection errors
are retryable; 401 and a missing inbox (404) mean the deployment is not set up
(``ToolNotConfigured``); other 4xx are ``ToolRejected`` with AgentMail's message and fix.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http_errors import (
    is_retryable_status,
    not_configured,
    provider_message,
    rejected,
    retry_after,
    short,
    transport_error,
)
from lucy.contracts import ErrorType, ToolRequest, ToolResult, idempotency_key, truncate_output
from lucy.settings import ToolSettings

INBOX_USERNAME = "lucy"
MAX_RECIPIENTS = 50
MAX_SUBJECT = 500
MAX_BODY = 500_000  # characters of text or html
_ADDR = r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+"
_ADDRESS = re.compile(rf"^(?:{_ADDR}|[^<>@,;\"\r\n]*<{_ADDR}>)$")  # a@b.c or Name <a@b.c>
_TIMEOUT = httpx.Timeout(45.0, connect=10.0)


class EmailActivities:
    """AgentMail sends through an injected ``httpx.AsyncClient`` (no retries of its own)."""

    def __init__(self, http: httpx.AsyncClient, settings: ToolSettings) -> None:
        self._http = http
        self._settings = settings

    @property
    def inbox_id(self) -> str:
        return f"{INBOX_USERNAME}@{self._settings.agentmail_domain}"

    @activity.defn(name="tools.email")
    async def send(self, request: ToolRequest) -> ToolResult:
        """Send one email from ``lucy@{agentmail_domain}``, once per workflow step.

        Args:
            request: ``arguments`` = ``{to: str | list[str], subject, text, html?}``; ``to`` may
                list several addresses separated by commas.

        Returns:
            Who it went to and AgentMail's message and thread ids.
        """
        key = self._settings.agentmail_api_key
        if not self._settings.agentmail_enabled or key is None:
            raise not_configured(
                "email is not configured: set LUCY_AGENTMAIL_ENABLED=true and LUCY_AGENTMAIL_API_KEY"
            )
        payload = _payload(request.arguments)
        url = f"{self._settings.agentmail_base_url}/inboxes/{quote(self.inbox_id, safe='@')}/messages/send"
        headers = {
            "Authorization": f"Bearer {key.get_secret_value()}",
            "Idempotency-Key": idempotency_key(request.workflow_id, str(request.step), "send_email"),
        }
        try:
            response = await self._http.post(url, json=payload, headers=headers, timeout=_TIMEOUT)
        except httpx.HTTPError as exc:
            raise transport_error(exc, "AgentMail send") from None

        status = response.status_code
        if status == 401:
            raise not_configured("AgentMail refused the API key (HTTP 401): check LUCY_AGENTMAIL_API_KEY")
        if status == 404:
            raise not_configured(
                f"AgentMail has no inbox {self.inbox_id} (HTTP 404): create it or set LUCY_AGENTMAIL_DOMAIN"
            )
        if is_retryable_status(status):
            raise ApplicationError(
                f"AgentMail unavailable: HTTP {status}: {provider_message(response)}",
                type=ErrorType.TOOL_RETRYABLE,
                next_retry_delay=retry_after(response),
            )
        if status >= 300:
            raise rejected(f"AgentMail refused the email (HTTP {status}): {provider_message(response)}")
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        text, truncated = truncate_output(
            f"Email sent from {self.inbox_id} to {', '.join(payload['to'])}: {payload['subject']!r} "
            f"(message id {body.get('message_id', '?')}, thread id {body.get('thread_id', '?')})"
        )
        return ToolResult(output=text, truncated=truncated)


def _payload(args: dict[str, Any]) -> dict[str, Any]:
    raw_to = args.get("to")
    if isinstance(raw_to, str):
        candidates = [a.strip() for a in re.split(r"[,;\n]+", raw_to) if a.strip()]
    elif isinstance(raw_to, list) and all(isinstance(a, str) for a in raw_to):
        candidates = [a.strip() for a in raw_to if a.strip()]
    else:
        raise rejected("send_email needs 'to': an email address or a list of addresses")
    if not candidates:
        raise rejected("send_email needs at least one recipient in 'to'")
    if len(candidates) > MAX_RECIPIENTS:
        raise rejected(f"send_email takes at most {MAX_RECIPIENTS} recipients, not {len(candidates)}")
    bad = [a for a in candidates if not _ADDRESS.match(a)]
    if bad:
        raise rejected(f"not an email address: {', '.join(short(a, 80) for a in bad[:5])}")
    to = list(dict.fromkeys(candidates))  # de-duplicated, order kept

    subject = args.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        raise rejected("send_email needs a non-empty 'subject'")
    subject = " ".join(subject.split())  # no header injection through line breaks
    if len(subject) > MAX_SUBJECT:
        raise rejected(f"'subject' is too long ({len(subject)} characters, at most {MAX_SUBJECT})")
    text = args.get("text")
    if not isinstance(text, str) or not text.strip():
        raise rejected("send_email needs a non-empty plain-text body in 'text'")
    html = args.get("html")
    if html is not None and not isinstance(html, str):
        raise rejected("'html' must be a string of HTML")
    if len(text) > MAX_BODY or len(html or "") > MAX_BODY:
        raise rejected(f"the email body is too long (at most {MAX_BODY} characters)")
    payload: dict[str, Any] = {"to": to, "subject": subject, "text": text}
    if html and html.strip():
        payload["html"] = html
    return payload
