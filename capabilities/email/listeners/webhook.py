"""``POST /webhooks/agentmail``: AgentMail's events, signed with Svix, handed to
:class:`capabilities.email.listeners.inbound.EmailIngress` once the signature holds."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from slack_sdk.web.async_client import AsyncWebClient
from svix.webhooks import Webhook, WebhookVerificationError

from capabilities.email.auth import trusted_ids
from capabilities.email.listeners.inbound import EmailIngress
from capabilities.email.sender import AttachmentLimits
from capabilities.task.listeners.deps import IngressDeps, secret_text
from capabilities.task.listeners.start import TaskStarter
from lucy import guard
from lucy.logging import get_logger

log = get_logger(__name__)

MAX_WEBHOOK_BYTES = 5 * 2**20  # an AgentMail event carries the mail's text and HTML
SVIX_HEADERS = ("svix-id", "svix-timestamp", "svix-signature")

EmailHandler = Callable[[], Awaitable[EmailIngress]]


def add_agentmail_webhook(app: FastAPI, deps: IngressDeps) -> None:
    """``POST /webhooks/agentmail``: AgentMail's events, signed with Svix.

    In order: the body is read up to ``MAX_WEBHOOK_BYTES`` (413); the Svix signature
    (``svix-id``, ``svix-timestamp``, ``svix-signature`` over the raw bytes, under
    ``LUCY_AGENTMAIL_WEBHOOK_SECRET``, 5 minutes of tolerance) is checked with the ``svix``
    library (401, nothing recorded); only then is the body parsed and handed to
    :class:`capabilities.email.listeners.inbound.EmailIngress`, which records the delivery. 200 once the
    delivery is
    recorded and any task start was accepted; 409 while another copy of the same message is
    being handled (a copy abandoned for 2 minutes is taken over); 500 when it failed (recorded
    ``failed``: AgentMail delivers again and the attempt is counted). Without the secret: 503.
    """
    verifier = _svix_verifier(deps)
    handler = _email_handler(deps)
    app.state.email_handler = handler  # the listener mode uses the same handler

    @app.post(
        "/webhooks/agentmail",
        responses={
            401: {"description": "missing, bad or stale Svix signature"},
            409: {"description": "another delivery of this message is being handled"},
            413: {"description": "body too large"},
            503: {"description": "LUCY_AGENTMAIL_WEBHOOK_SECRET is not set"},
        },
    )
    async def agentmail_webhook(request: Request) -> Response:
        return await _receive(request, verifier, handler)


def _svix_verifier(deps: IngressDeps) -> Webhook | None:
    """The Svix verifier under ``LUCY_AGENTMAIL_WEBHOOK_SECRET``, or None when it is not set."""
    secret = secret_text(deps.settings.tools.agentmail_webhook_secret)
    try:
        return Webhook(secret) if secret else None
    except Exception as exc:  # not a whsec_... base64 secret
        raise ValueError("LUCY_AGENTMAIL_WEBHOOK_SECRET is not a Svix endpoint secret (whsec_...)") from exc


def _email_handler(deps: IngressDeps) -> EmailHandler:
    """Builds the :class:`EmailIngress` for one delivery (Temporal is connected on first use)."""
    slack_token = secret_text(deps.settings.slack.slack_bot_token)
    slack = (
        AsyncWebClient(token=slack_token, base_url=deps.settings.slack.slack_api_url, timeout=10)
        if slack_token
        else None
    )

    async def handler() -> EmailIngress:
        starter = TaskStarter(
            temporal=await deps.temporal(),
            sessions=deps.sessions,
            task_queue=deps.settings.temporal.temporal_task_queue,
            limits=deps.settings.limits,
            budgets=deps.settings.budget,
        )
        tools = deps.settings.tools
        limits = AttachmentLimits(
            per_file=tools.email_attachment_max_bytes, total=tools.email_attachments_total_max_bytes
        )
        return EmailIngress(
            starter=starter,
            slack=slack,
            sessions=deps.sessions,
            attachments=limits,
            trusted_authserv_ids=trusted_ids(tools.email_trusted_authserv_ids),
        )

    return handler


async def _receive(request: Request, verifier: Webhook | None, handler: EmailHandler) -> Response:
    """One webhook request: configured, size-capped, signed, then handled."""
    structlog.contextvars.clear_contextvars()
    if verifier is None:
        return JSONResponse(
            {
                "error": "agentmail_not_configured",
                "message": "set LUCY_AGENTMAIL_WEBHOOK_SECRET to receive AgentMail webhooks",
            },
            status_code=503,
        )
    try:
        body = await guard.read_body(request, limit=MAX_WEBHOOK_BYTES)
    except guard.Refusal as refusal:
        log.warning("AgentMail webhook refused", status=refusal.status, reason=refusal.message)
        return JSONResponse({"error": refusal.error, "message": refusal.message}, status_code=refusal.status)
    headers = {k: request.headers.get(k, "") for k in SVIX_HEADERS}
    refused = _refuse_bad_signature(request, verifier, body, headers)
    if refused is not None:
        return refused
    return await _handle(handler, body, delivery_id=headers["svix-id"])


def _refuse_bad_signature(
    request: Request, verifier: Webhook, body: bytes, headers: dict[str, str]
) -> Response | None:
    """The 401 for a missing, wrong or stale Svix signature, or None when it holds."""
    try:
        verifier.verify(body, headers)
    except WebhookVerificationError as exc:
        log.warning(
            "AgentMail webhook refused: bad signature",
            reason=str(exc)[:80],
            **guard.request_metadata(request, len(body)),
        )
        return JSONResponse(
            {"error": "invalid_signature", "message": "the Svix signature is missing, wrong or too old"},
            status_code=401,
        )
    return None


async def _handle(handler: EmailHandler, body: bytes, *, delivery_id: str) -> Response:
    """Parse the verified body (None when it is not JSON) and hand it to the email ingress."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        document = None
    try:
        outcome = await (await handler()).handle(document, delivery_id=delivery_id)
    except Exception as exc:
        log.warning("AgentMail webhook failed", error=exc.__class__.__name__)
        return JSONResponse({"error": "failed", "message": "not handled; deliver again"}, status_code=500)
    return JSONResponse(
        {"status": outcome.status, "workflow_id": outcome.workflow_id, "reason": outcome.reason},
        status_code=409 if outcome.status == "busy" else 200,
    )
