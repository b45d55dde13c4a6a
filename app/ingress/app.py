"""The ingress HTTP app: health endpoints, metrics and ``POST /slack/events`` through Slack Bolt.

``POST /slack/events`` handles a request in this order, and nothing from the body is parsed,
bound to the log context or turned into a metric label before the signature is checked:

1. size cap (413), streaming the body and stopping at the cap, Content-Length or not;
2. Slack signature over the raw bytes (401);
3. parse and shape check: UTF-8, a JSON object or form, bounded nesting, envelope fields of
   the types Slack sends (400 with a sentence saying what is wrong);
4. Bolt, handed the bytes already read and the document already parsed.

Steps 1-3 live in :mod:`lucy.guard`; a refusal logs metadata only (sizes, media type,
which headers came, the peer address), never the body or a value taken from it.

Bolt runs with ``process_before_response=True``: the listener starts the workflow first and
the 200 goes back only after Temporal accepted it (durable hand-off). If the start fails,
Slack gets a 500 and redelivers; the workflow id makes that redelivery safe.

``POST /webhooks/agentmail`` (AgentMail's events) checks the Svix signature with the ``svix``
library before it parses anything, then hands the event to :mod:`capabilities.email.listeners.inbound`;
``POST /webhooks/triggers/{id}`` (signed webhook triggers) is :mod:`capabilities.triggers.listeners.webhook`.

``GET /metrics`` needs ``Authorization: Bearer <LUCY_METRICS_TOKEN>`` when that token is set;
without one it is served only in development and test (404 in staging and production).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request, to_starlette_response
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text
from starlette.middleware.trustedhost import TrustedHostMiddleware

from app.ingress.bolt import build_bolt_app
from app.ingress.codec import add_codec_server
from app.serving import shared_slack_session
from capabilities.email.listeners.webhook import add_agentmail_webhook
from capabilities.task.listeners.deps import IngressDeps, lazy_temporal, secret_text
from capabilities.triggers.listeners.webhook import add_webhook_triggers
from lucy import guard, tracing
from lucy.contracts.ids import TASK_WORKFLOW_NAME
from lucy.logging import get_logger
from lucy.metrics import (
    ACK_SECONDS,
    ACTIVE_TASKS,
    DEPENDENCY_UP,
    PENDING_APPROVALS,
    SLACK_EVENTS,
    slack_kind,
)

log = get_logger(__name__)

MAX_BODY_BYTES = guard.MAX_BODY_BYTES
HEALTH_TIMEOUT_S = 2.0
GAUGE_TTL_S = 5.0


def create_app(deps: IngressDeps, *, bolt: AsyncApp | None = None, serve_events: bool = True) -> FastAPI:
    """The FastAPI app: health, DB and Temporal health, metrics and, unless ``serve_events`` is
    off (Socket Mode, where Slack talks over the WebSocket), ``POST /slack/events``."""
    bolt = bolt if bolt is not None else (build_bolt_app(deps) if serve_events else None)
    secret = secret_text(deps.settings.slack.slack_signing_secret)
    verifier = SignatureVerifier(secret) if secret else None
    missing = deps.settings.slack.missing_for_events()
    app = _new_app(deps, missing, bolt)
    _add_liveness(app)
    if deps.settings.temporal.temporal_encrypt_payloads:
        add_codec_server(app, deps.settings)
    _add_dependency_health(app, deps)
    _add_metrics(app, deps)
    add_agentmail_webhook(app, deps)
    add_webhook_triggers(app, deps)
    if serve_events:
        _add_slack_events(app, bolt, verifier, missing)
    return app


def _new_app(deps: IngressDeps, missing: list[str], bolt: AsyncApp | None) -> FastAPI:
    """The bare FastAPI app: its lifespan (a warning while Slack is not connected; Bolt's Slack
    calls over one kept-alive session, ``users.info`` before the ack included), the OpenAPI
    document in development and test only, trusted hosts in development, tracing."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if missing:
            log.warning("Slack is not connected: events will be refused until these are set", missing=missing)
        async with shared_slack_session(bolt.client if bolt is not None else None):
            yield

    # The OpenAPI document (no docs UI) is served in development and test only: a map of the
    # routes helps no one outside.
    openapi_url = "/openapi.json" if deps.settings.core.is_development else None
    app = FastAPI(
        title="Lucy",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=openapi_url,
    )
    app.state.deps = deps
    if deps.settings.core.env == "development":
        # Everything is open in development (/codec, /metrics, the console): a page elsewhere
        # that rebinds its DNS to 127.0.0.1 still names its own host, and is refused (400).
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=deps.settings.core.allowed_hosts)
    tracing.instrument_app(app)  # server spans when tracing is on (lucy.tracing)
    return app


def _add_liveness(app: FastAPI) -> None:
    """``GET /health``: the process answers."""

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "lucy"}


def _add_dependency_health(app: FastAPI, deps: IngressDeps) -> None:
    """``GET /health/db`` and ``GET /health/temporal``: 200, or 503 with the reason."""

    @app.get("/health/db", responses={503: {"description": "PostgreSQL did not answer in time"}})
    async def health_db() -> JSONResponse:
        reason = await _database_down(deps)
        if reason is not None:
            return JSONResponse({"status": "down", "service": "db", "reason": reason}, status_code=503)
        return JSONResponse({"status": "ok", "service": "db"})

    @app.get("/health/temporal", responses={503: {"description": "Temporal did not answer in time"}})
    async def health_temporal() -> JSONResponse:
        reason = await _temporal_down(deps)
        if reason is not None:
            return JSONResponse({"status": "down", "service": "temporal", "reason": reason}, status_code=503)
        return JSONResponse(
            {"status": "ok", "service": "temporal", "namespace": deps.settings.temporal.temporal_namespace}
        )


async def _temporal_down(deps: IngressDeps) -> str | None:
    """Why Temporal did not answer a health check in time ("timed out" or an exception's class
    name), or None."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            client = await deps.temporal()
            await client.service_client.check_health()
    except Exception as exc:
        return "timed out" if isinstance(exc, TimeoutError) else exc.__class__.__name__
    return None


def _add_slack_events(
    app: FastAPI, bolt: AsyncApp | None, verifier: SignatureVerifier | None, missing: list[str]
) -> None:
    """``POST /slack/events``, timed, counted and logged (metadata only) per request."""

    @app.post("/slack/events")
    async def slack_events(request: Request) -> Response:
        started = time.perf_counter()
        structlog.contextvars.clear_contextvars()
        request.state.slack_kind = "unknown"  # until the body is verified and parsed
        response = await _slack_events(request, bolt, verifier, missing)
        _record_slack_request(request, response, time.perf_counter() - started)
        return response


def _record_slack_request(request: Request, response: Response, elapsed: float) -> None:
    """The ack-time and events metrics and the log line for one handled Slack request."""
    kind = request.state.slack_kind
    ACK_SECONDS.labels(kind).observe(elapsed)
    outcome = "ok" if response.status_code < 400 else str(response.status_code)
    SLACK_EVENTS.labels(kind, outcome).inc()
    retry = request.headers.get("x-slack-retry-num", "")  # headers are not signed
    log.info(
        "slack request handled",
        kind=kind,
        status=response.status_code,
        retry_num=int(retry) if retry.isascii() and retry.isdigit() and len(retry) < 4 else None,
        ack_ms=round(elapsed * 1000, 1),
    )


async def _slack_events(
    request: Request, bolt: AsyncApp | None, verifier: SignatureVerifier | None, missing: list[str]
) -> Response:
    """503 while Slack is not configured; else the guarded body handed to Bolt."""
    if bolt is None or verifier is None:
        return JSONResponse(
            {
                "error": "slack_not_configured",
                "message": "Lucy is not connected to Slack yet; set " + " and ".join(missing),
            },
            status_code=503,
        )
    body: bytes | None = None
    try:
        body = await guard.read_body(request)
        guard.verify_signature(verifier, request.headers, body)
        document = guard.parse(request.headers, body)
    except guard.Refusal as refusal:
        log.warning(
            "Slack request refused",
            status=refusal.status,
            reason=refusal.message,
            **guard.request_metadata(request, None if body is None else len(body)),
        )
        return JSONResponse({"error": refusal.error, "message": refusal.message}, status_code=refusal.status)
    return await _dispatch_to_bolt(request, bolt, body, document)


async def _dispatch_to_bolt(
    request: Request, bolt: AsyncApp, body: bytes, document: dict[str, Any]
) -> Response:
    """Bind who and what the verified request is about to the log context, then run Bolt on
    the bytes already read and the document already parsed."""
    request.state.slack_kind = slack_kind(document)
    structlog.contextvars.bind_contextvars(  # every later log line says who and what it is about
        slack_team_id=_team_id(document),
        slack_event_id=document.get("event_id") or document.get("trigger_id"),
    )
    bolt_request = to_async_bolt_request(request, body)
    if bolt_request.body != document:
        # Bolt reads any form body containing the word "payload" as interactivity and finds
        # nothing (``/lucy explain this payload``): give it the document we parsed.
        bolt_request.body = document
        bolt_request.context = build_async_context(AsyncBoltContext(), document)
    return to_starlette_response(await bolt.async_dispatch(bolt_request))


def _team_id(document: dict[str, Any]) -> str | None:
    """The Slack team a verified, shape-checked payload is about (for the log context)."""
    team = document.get("team")
    if isinstance(team, dict):
        team = team.get("id")
    return document.get("team_id") or team


async def _database_down(deps: IngressDeps) -> str | None:
    """Why PostgreSQL did not answer ``SELECT 1`` in time (an exception's class name), or None;
    sets ``lucy_dependency_up{dependency="database"}`` either way."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S), deps.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        DEPENDENCY_UP.labels("database").set(0)
        return exc.__class__.__name__
    DEPENDENCY_UP.labels("database").set(1)
    return None


def _add_metrics(app: FastAPI, deps: IngressDeps) -> None:
    """``GET /metrics``: with ``LUCY_METRICS_TOKEN`` set, only for ``Authorization: Bearer
    <token>`` (401 otherwise); without it, only in development and test (no route, so 404,
    in staging and production)."""
    token = secret_text(deps.settings.security.metrics_token)
    if token is None and not deps.settings.core.is_development:
        return
    expected = f"Bearer {token}".encode() if token is not None else None
    gauges_at = 0.0

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={
            200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
            401: {"description": "no or the wrong bearer token"},
        },
    )
    async def metrics(request: Request) -> Response:
        nonlocal gauges_at
        given = request.headers.get("authorization", "").encode()
        if expected is not None and not hmac.compare_digest(given, expected):
            return JSONResponse(
                {"error": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        if time.monotonic() - gauges_at > GAUGE_TTL_S:  # visibility counts, at most every few seconds
            gauges_at = time.monotonic()
            try:
                async with asyncio.timeout(HEALTH_TIMEOUT_S):
                    client = await deps.temporal()
                    for gauge, status in ((ACTIVE_TASKS, "running"), (PENDING_APPROVALS, "pending_approval")):
                        count = await client.count_workflows(
                            f"WorkflowType = '{TASK_WORKFLOW_NAME}' AND ExecutionStatus = 'Running' "
                            f"AND LucyStatus = '{status}'"
                        )
                        gauge.set(count.count)
                DEPENDENCY_UP.labels("temporal").set(1)
            except Exception as exc:
                DEPENDENCY_UP.labels("temporal").set(0)
                log.warning("could not count workflows for /metrics", error=exc.__class__.__name__)
            await _database_down(deps)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


__all__ = ["IngressDeps", "build_bolt_app", "create_app", "lazy_temporal"]
