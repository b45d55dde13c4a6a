"""The ingress HTTP app: health endpoints and ``POST /slack/events`` through Slack Bolt.

Bolt runs with ``process_before_response=True``: the listener starts the workflow first and
the 200 goes back only after Temporal accepted it (durable hand-off). If the start fails,
Slack gets a 500 and redelivers; the workflow id makes that redelivery safe.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from ingress.directory import UserDirectory
from ingress.listeners import register
from ingress.tasks import TaskStarter
from lucy.codec import EncryptionCodec, payloads_from_json, payloads_to_json
from lucy.contracts import TASK_WORKFLOW_NAME
from lucy.crypto import CryptoError, KeyRing
from lucy.db.session import create_sessionmaker
from lucy.logging import get_logger
from lucy.metrics import ACK_SECONDS, ACTIVE_TASKS, PENDING_APPROVALS, SLACK_EVENTS, slack_kind
from lucy.settings import Settings

log = get_logger(__name__)

MAX_BODY_BYTES = 1_000_000  # Slack payloads are far smaller; anything bigger is not Slack
HEALTH_TIMEOUT_S = 2.0
GAUGE_TTL_S = 5.0


@dataclass
class IngressDeps:
    """What ingress needs; the composition root (CLI, tests) builds it."""

    settings: Settings
    engine: AsyncEngine
    temporal: Callable[[], Awaitable[Client]]
    sessions: async_sessionmaker[AsyncSession] = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = create_sessionmaker(self.engine)


def lazy_temporal(connect: Callable[[], Awaitable[Client]]) -> Callable[[], Awaitable[Client]]:
    """Connect on first use and keep the client; a failed connect is retried on the next call."""
    client: Client | None = None
    lock = asyncio.Lock()

    async def get() -> Client:
        nonlocal client
        if client is None:
            async with lock:
                if client is None:
                    client = await connect()
        return client

    return get


def build_bolt_app(deps: IngressDeps, *, socket_mode: bool = False) -> AsyncApp | None:
    """The Bolt app with Lucy's listeners, or None when Slack is not configured.

    Socket Mode needs no signing secret (Slack authenticates the WebSocket with the app
    token); over HTTP every request's signature is verified.
    """
    slack = deps.settings.slack
    if slack.slack_bot_token is None or (not socket_mode and slack.slack_signing_secret is None):
        return None
    secret = slack.slack_signing_secret.get_secret_value() if slack.slack_signing_secret else ""
    client = AsyncWebClient(
        token=slack.slack_bot_token.get_secret_value(), base_url=slack.slack_api_url, timeout=10
    )
    app = AsyncApp(
        client=client,
        signing_secret=secret,
        process_before_response=True,
        request_verification_enabled=not socket_mode,
    )

    directory = UserDirectory()

    async def inject(context: Any, next: Callable[[], Awaitable[Any]]) -> Any:
        temporal = await deps.temporal()
        context["lucy_starter"] = TaskStarter(
            temporal=temporal,
            sessions=deps.sessions,
            task_queue=deps.settings.temporal.temporal_task_queue,
            limits=deps.settings.limits,
        )
        context["lucy_temporal"] = temporal
        context["lucy_sessions"] = deps.sessions
        context["lucy_directory"] = directory
        return await next()

    app.middleware(inject)
    register(app)
    return app


def _parse(request: Request, body: bytes) -> tuple[str | None, dict[str, Any] | None]:
    """(problem, parsed body): a problem when the body is not something Slack sends."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            parsed = json.loads(body)
        except ValueError:
            return "body is not valid JSON", None
        if not isinstance(parsed, dict):
            return "body is not a JSON object", None
        return None, parsed
    if ctype == "application/x-www-form-urlencoded":
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        if "payload" in form:  # interactivity: a JSON document in a form field
            try:
                payload = json.loads(form["payload"])
            except ValueError:
                return "payload field is not valid JSON", None
            return None, payload if isinstance(payload, dict) else {}
        return None, form
    return f"unsupported content type {ctype or '(none)'!r}", None


def _add_codec_server(app: FastAPI, settings: Settings) -> None:
    """``POST /codec/encode`` and ``/codec/decode``: the Temporal codec-server protocol, so the
    Temporal UI and CLI can show encrypted payloads to people allowed to see them. A bearer
    token (``LUCY_TEMPORAL_CODEC_TOKEN``) is required outside development and tests."""
    codec = EncryptionCodec(KeyRing.parse(_secret(settings.security.encryption_keys)))
    token = _secret(settings.temporal.temporal_codec_token)
    origins = {o.strip() for o in settings.temporal.temporal_codec_cors_origins.split(",") if o.strip()}
    open_without_token = settings.core.env in ("development", "test")

    def cors(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin", "")
        if origin not in origins:
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Namespace",
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }

    @app.options("/codec/{action}")
    async def codec_preflight(action: str, request: Request) -> Response:
        return Response(status_code=204, headers=cors(request))

    @app.post("/codec/{action}")
    async def codec_endpoint(action: str, request: Request) -> JSONResponse:
        headers = cors(request)
        if action not in ("encode", "decode"):
            return JSONResponse({"error": "unknown codec action"}, status_code=404, headers=headers)
        if token is None and not open_without_token:
            return JSONResponse(
                {"error": "set LUCY_TEMPORAL_CODEC_TOKEN to serve the codec endpoint"},
                status_code=403,
                headers=headers,
            )
        given = request.headers.get("authorization", "")
        if token is not None and not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return JSONResponse({"error": "unauthorized"}, status_code=401, headers=headers)
        try:
            payloads = payloads_from_json(await request.json())
            done = await (codec.encode(payloads) if action == "encode" else codec.decode(payloads))
        except (ValueError, CryptoError, binascii.Error) as exc:
            return JSONResponse({"error": str(exc)[:200]}, status_code=400, headers=headers)
        return JSONResponse(payloads_to_json(done), headers=headers)


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def create_app(deps: IngressDeps, *, bolt: AsyncApp | None = None, serve_events: bool = True) -> FastAPI:
    """The FastAPI app: health, DB and Temporal health, metrics and, unless ``serve_events`` is
    off (Socket Mode, where Slack talks over the WebSocket), ``POST /slack/events``."""
    bolt = bolt if bolt is not None else (build_bolt_app(deps) if serve_events else None)
    handler = AsyncSlackRequestHandler(bolt) if bolt is not None else None
    missing = deps.settings.slack.missing_for_events()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if missing:
            log.warning("Slack is not connected: events will be refused until these are set", missing=missing)
        yield

    app = FastAPI(title="Lucy", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.deps = deps

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "lucy"}

    if deps.settings.temporal.temporal_encrypt_payloads:
        _add_codec_server(app, deps.settings)

    @app.get("/health/db")
    async def health_db() -> JSONResponse:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S), deps.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse(
                {"status": "down", "service": "db", "reason": f"{exc.__class__.__name__}"}, status_code=503
            )
        return JSONResponse({"status": "ok", "service": "db"})

    @app.get("/health/temporal")
    async def health_temporal() -> JSONResponse:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                client = await deps.temporal()
                await client.service_client.check_health()
        except Exception as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else exc.__class__.__name__
            return JSONResponse({"status": "down", "service": "temporal", "reason": reason}, status_code=503)
        return JSONResponse(
            {"status": "ok", "service": "temporal", "namespace": deps.settings.temporal.temporal_namespace}
        )

    gauges_at = 0.0

    @app.get("/metrics")
    async def metrics() -> Response:
        nonlocal gauges_at
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
            except Exception as exc:
                log.warning("could not count workflows for /metrics", error=exc.__class__.__name__)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if not serve_events:
        return app

    @app.post("/slack/events")
    async def slack_events(request: Request) -> Response:
        started = time.perf_counter()
        structlog.contextvars.clear_contextvars()
        response = await _slack_events(request)
        elapsed = time.perf_counter() - started
        kind = request.state.slack_kind if hasattr(request.state, "slack_kind") else "unknown"
        ACK_SECONDS.labels(kind).observe(elapsed)
        outcome = "ok" if response.status_code < 400 else str(response.status_code)
        SLACK_EVENTS.labels(kind, outcome).inc()
        log.info(
            "slack request handled",
            kind=kind,
            status=response.status_code,
            retry_num=request.headers.get("x-slack-retry-num"),
            ack_ms=round(elapsed * 1000, 1),
        )
        return response

    async def _slack_events(request: Request) -> Response:
        if handler is None:
            return JSONResponse(
                {
                    "error": "slack_not_configured",
                    "message": "Lucy is not connected to Slack yet; set " + " and ".join(missing),
                },
                status_code=503,
            )
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return JSONResponse({"error": "payload_too_large"}, status_code=413)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "payload_too_large"}, status_code=413)
        problem, parsed = _parse(request, body)
        if problem:
            log.warning("malformed Slack request refused", reason=problem)
            return JSONResponse({"error": "bad_request", "message": problem}, status_code=400)
        request.state.slack_kind = slack_kind(parsed)
        if parsed:  # every log line of this request carries who and what it is about
            structlog.contextvars.bind_contextvars(
                slack_team_id=parsed.get("team_id") or (parsed.get("team") or {}).get("id"),
                slack_event_id=parsed.get("event_id") or parsed.get("trigger_id"),
            )
        return await handler.handle(request)

    return app
