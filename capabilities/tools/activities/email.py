"""Email from Lucy's inbox: the ``send_email`` tool (activity ``tools.email``), through the official
AgentMail SDK (``agentmail``, ``AsyncAgentMail.inboxes.messages.send``).

Wire protocol (AgentMail API v0, spoken by the SDK), as documented at
https://docs.agentmail.to/api-reference/inboxes/messages/send and https://docs.agentmail.to/errors:

* ``POST {origin}/v0/inboxes/{inbox_id}/messages/send`` (``LUCY_AGENTMAIL_BASE_URL`` ends in
  ``/v0``, see ``capabilities.email.agentmail``; the inbox id is its address, ``lucy@{agentmail_domain}``),
  ``Authorization: Bearer <key>``, JSON body ``{"to": [...], "subject", "text", "html"?}``.
* HTTP 200 answers ``{"message_id", "thread_id"}``.
* Errors are ``{"name", "code"?, "message", "fix"?, "docs"?}``; a 400 ``ValidationError`` also
  has ``errors`` (one entry per invalid field). 422 ``UnprocessableError``, 403 (forbidden, a
  rejected message), 404 (no such inbox), 409 ``ConflictError``, 429 with ``Retry-After``.

Idempotency: every send carries an ``Idempotency-Key`` header (the SDK's ``idempotency_key``)
derived from the workflow id and step (AgentMail's "How do I prevent duplicate sends?" page:
``client_id`` dedupes creates, ``Idempotency-Key`` dedupes sends, replies and forwards). A
Temporal retry of the same step sends the same key, so a send whose response was lost is
answered from AgentMail's record instead of being sent again. The guarantee is AgentMail's: it
holds within its replay window (24 hours) and only if the deployment's AgentMail honours the
header; outside it a retry after a lost response could send twice. Retries are few
(``_retry(3)`` in the catalog), a 429 means nothing was sent, and the workflow only sends email
after a human approved the step. The SDK's own retries are off (``NO_RETRIES``).

Errors (``capabilities.email.activities.agentmail_sdk.map_agentmail_error``): 429/5xx/409 (a concurrent
request
with the same key), timeouts and connection errors are retryable; 401 and a missing inbox (404)
mean the deployment is not set up (``ToolNotConfigured``); other 4xx are ``ToolRejected`` with
AgentMail's message and fix.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from temporalio import activity

from capabilities.email.activities.agentmail_sdk import NO_RETRIES, agentmail_client, map_agentmail_error
from capabilities.tools.activities.http_errors import rejected, short
from capabilities.tools.contracts import ToolRequest, ToolResult, truncate_output
from capabilities.tools.deps import ToolDeps
from capabilities.tools.spec import STRING, ToolSpec, high_risk, retry, schema
from lucy.contracts.ids import idempotency_key
from lucy.settings import ToolSettings

if TYPE_CHECKING:
    from agentmail import AsyncAgentMail

INBOX_USERNAME = "lucy"
MAX_RECIPIENTS = 50
MAX_SUBJECT = 500
MAX_BODY = 500_000  # characters of text or html
_ADDR = r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+"
_ADDRESS = re.compile(rf"^(?:{_ADDR}|[^<>@,;\"\r\n]*<{_ADDR}>)$")  # a@b.c or Name <a@b.c>


class EmailActivities:
    """AgentMail sends through the SDK, over an injected ``httpx.AsyncClient`` (no retries)."""

    def __init__(self, http: httpx.AsyncClient, settings: ToolSettings) -> None:
        self._http = http
        self._settings = settings
        self._client: AsyncAgentMail | None = None

    @property
    def inbox_id(self) -> str:
        return f"{INBOX_USERNAME}@{self._settings.agentmail_domain}"

    def _sdk(self) -> AsyncAgentMail:
        if self._client is None:
            self._client = agentmail_client(self._settings, http=self._http)
        return self._client

    @activity.defn(name="tools.email")
    async def send(self, request: ToolRequest) -> ToolResult:
        """Send one email from ``lucy@{agentmail_domain}``, once per workflow step.

        Args:
            request: ``arguments`` = ``{to: str | list[str], subject, text, html?}``; ``to`` may
                list several addresses separated by commas.

        Returns:
            Who it went to and AgentMail's message and thread ids.
        """
        client = self._sdk()  # ToolNotConfigured when email is off or has no key
        payload = _payload(request.arguments)
        try:
            sent = await client.inboxes.messages.send(
                self.inbox_id,
                **payload,
                idempotency_key=idempotency_key(request.workflow_id, str(request.step), "send_email"),
                request_options=NO_RETRIES,
            )
        except Exception as exc:  # every SDK failure is classified, none escapes raw
            raise map_agentmail_error(
                exc,
                what="AgentMail send",
                not_found=f"AgentMail has no inbox {self.inbox_id} (HTTP 404): "
                "create it or set LUCY_AGENTMAIL_DOMAIN",
            ) from None
        text, truncated = truncate_output(
            f"Email sent from {self.inbox_id} to {', '.join(payload['to'])}: {payload['subject']!r} "
            f"(message id {sent.message_id or '?'}, thread id {sent.thread_id or '?'})"
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


# --------------------------------------------------------------------------- the tool


def _build(deps: ToolDeps) -> EmailActivities:
    return EmailActivities(deps.http, deps.settings.tools)


SEND_EMAIL = ToolSpec(
    name="send_email",
    description="Send an email from Lucy's inbox (AgentMail).",
    parameters=schema(
        {"to": STRING, "subject": STRING, "text": STRING, "html": STRING}, ("to", "subject", "text")
    ),
    activity=EmailActivities.send,
    build=_build,
    timeout=timedelta(seconds=60),
    retry=retry(3),
    label="email",
    label_arg="to",
    risk=high_risk,
    requires=("agentmail_enabled", "agentmail_api_key"),
    audit_action="message_send",
)
