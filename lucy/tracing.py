"""OpenTelemetry tracing through the maintained integrations: off unless configured.

One Slack event is one trace: the FastAPI instrumentation opens the ingress request's span,
Temporal's ``TracingInterceptor`` (``temporalio.contrib.opentelemetry``) carries the context
through StartWorkflow, RunWorkflow and every RunActivity in Temporal headers, and the httpx,
aiohttp-client (the Slack SDK) and asyncpg instrumentations add every outgoing HTTP and database
call. Nothing here propagates context by hand.

It is configured with the standard ``OTEL_*`` variables (read by the SDK and its OTLP
exporter, never by activities): tracing is on when ``OTEL_TRACES_EXPORTER`` is ``otlp`` or
``console``, or when ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is
set (and ``OTEL_SDK_DISABLED`` is not ``true``). Otherwise nothing is instrumented, no
interceptor is added and no span is made: the cost is one ``is None`` check per request.

Lucy's own span attributes are ids only (``lucy.workspace``, ``lucy.task``, ``lucy.tool``,
``lucy.activity``): never message text or secrets. URLs in spans keep no query string
(:class:`StripUrlQueries`): presigned URLs carry their credential there (``X-Amz-Signature``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from temporalio import activity, client, worker
from temporalio.contrib.opentelemetry import TracingInterceptor

# Requests that are not work: probes and scrapes would drown the traces that matter.
EXCLUDED_URLS = "/health,/health/db,/health/temporal,/metrics"
_TASK_ID = re.compile(r"^lucy-task-(T[A-Z0-9]+)-")

# Span attributes that hold a URL or its query, in the old and the stable HTTP conventions.
URL_ATTRIBUTES = ("url.full", "http.url", "http.target")
QUERY_ATTRIBUTES = ("url.query",)

_provider: TracerProvider | None = None


def without_query(url: str) -> str:
    """``url`` without its query string and fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.partition("?")[0].partition("#")[0]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def strip_url_queries(span: Any, _scope: Any = None) -> None:
    """Drop the query string from ``span``'s URL attributes (also the FastAPI instrumentation's
    ``server_request_hook``: the ASGI middleware sets them again after the span started)."""
    if not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for key in URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and ("?" in value or "#" in value):
            span.set_attribute(key, without_query(value))
    for key in QUERY_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, "")


class StripUrlQueries(SpanProcessor):
    """Drops query strings from the URL attributes the HTTP client instrumentations (httpx,
    aiohttp-client) set when they start a span, before any exporter sees it."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        strip_url_queries(span)


def tracing_configured(environ: Mapping[str, str]) -> bool:
    """Whether the ``OTEL_*`` variables in ``environ`` ask for traces to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER")
    if exporter is not None and exporter.strip():
        return exporter.strip().lower() != "none"
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_tracing(role: str, environ: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on for this process when the ``OTEL_*`` variables ask for it.

    Args:
        role: ``worker``, ``ingress`` or ``dev``; the service is ``lucy-<role>`` unless
            ``OTEL_SERVICE_NAME`` names it.
        environ: the variables (default: the process environment).

    Returns:
        True when tracing is now on.

    Raises:
        ValueError: ``OTEL_TRACES_EXPORTER`` names an exporter Lucy does not ship.
    """
    env = os.environ if environ is None else environ
    if not tracing_configured(env):
        return False
    kind = (env.get("OTEL_TRACES_EXPORTER") or "otlp").strip().lower()
    exporter: SpanExporter
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # OTEL_EXPORTER_OTLP_* (endpoint, headers, timeout...)
    elif kind == "console":
        exporter = ConsoleSpanExporter()
    else:
        raise ValueError(f"OTEL_TRACES_EXPORTER: {kind!r} is not supported (otlp, console or none)")
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: f"lucy-{role}"}
    provider = TracerProvider(resource=Resource.create(attributes))  # + OTEL_RESOURCE_ATTRIBUTES
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    install(provider)
    return True


def install(provider: TracerProvider) -> None:
    """Instrument the HTTP and database clients and route Lucy's spans to ``provider`` (tests
    pass one with an in-memory exporter; :func:`uninstall` undoes it)."""
    global _provider
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    _provider = provider
    provider.add_span_processor(StripUrlQueries())
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    AioHttpClientInstrumentor().instrument(tracer_provider=provider)
    AsyncPGInstrumentor().instrument(tracer_provider=provider)


def uninstall() -> None:
    """Undo :func:`install` (spans stop; already-built clients and apps keep their wiring)."""
    global _provider
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    _provider = None
    HTTPXClientInstrumentor().uninstrument()
    AioHttpClientInstrumentor().uninstrument()
    AsyncPGInstrumentor().uninstrument()


def active() -> bool:
    """Whether tracing is on in this process."""
    return _provider is not None


def instrument_app(app: Any) -> None:
    """Give a FastAPI app server spans (probes and scrapes excluded); a no-op when tracing is off."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=_provider, excluded_urls=EXCLUDED_URLS, server_request_hook=strip_url_queries
    )


def temporal_interceptors() -> list[Any]:
    """The interceptors for a Temporal client (a worker built on it inherits them): Temporal's
    tracing interceptor and Lucy's attributes; none when tracing is off."""
    if _provider is None:
        return []
    return [TracingInterceptor(_provider.get_tracer("temporalio")), SpanAttributes()]


def tag(*, workspace: str | None = None, task: str | None = None) -> None:
    """Put Lucy's ids on the current span (a no-op without one)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    if workspace:
        span.set_attribute("lucy.workspace", workspace)
    if task:
        span.set_attribute("lucy.task", task)


def activity_attributes(activity_type: str, workflow_id: str | None) -> dict[str, str]:
    """``lucy.activity``, ``lucy.tool`` (tool activities), ``lucy.task`` and ``lucy.workspace``
    (from a task workflow's id) for an activity's span."""
    attributes = {"lucy.activity": activity_type}
    if activity_type.startswith("tools."):
        attributes["lucy.tool"] = activity_type.removeprefix("tools.")
    if workflow_id:
        attributes["lucy.task"] = workflow_id
        found = _TASK_ID.match(workflow_id)
        if found:
            attributes["lucy.workspace"] = found.group(1)
    return attributes


class SpanAttributes(client.Interceptor, worker.Interceptor):
    """Puts :func:`activity_attributes` on each RunActivity span (it runs inside Temporal's
    tracing interceptor, so the current span is the activity's)."""

    def intercept_activity(
        self, next: worker.ActivityInboundInterceptor
    ) -> worker.ActivityInboundInterceptor:
        return _ActivityAttributes(next)


class _ActivityAttributes(worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: worker.ExecuteActivityInput) -> Any:
        span = trace.get_current_span()
        if span.is_recording():
            info = activity.info()
            span.set_attributes(activity_attributes(info.activity_type, info.workflow_id))
        return await super().execute_activity(input)
