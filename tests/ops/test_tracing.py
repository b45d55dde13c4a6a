"""One Slack mention is one OpenTelemetry trace: ingress request -> StartWorkflow -> RunWorkflow
-> every RunActivity -> the LLM's HTTP call, the Slack post and the database calls, all with one
trace id; Lucy's attributes are ids, never message text or secrets; log lines carry the ids."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from lucy import tracing
from lucy.contracts.ids import task_workflow_id
from lucy.logging import configure_logging
from lucy.settings import Settings
from tests.conftest import SIGNING_SECRET, Lucy, mention_event, new_team, running_lucy
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack

SECRET_WORDS = "the launch code is swordfish-42"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.uninstall()
        provider.shutdown()


@pytest.fixture
async def traced_lucy(
    spans: InMemorySpanExporter,
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    engine: AsyncEngine,
    admin_engine: AsyncEngine,
) -> AsyncIterator[Lucy]:
    # The client as `lucy.temporal.connect` builds it with tracing on: with its interceptors,
    # which the worker built on it inherits.
    config = temporal_env.client.config()
    config["interceptors"] = tracing.temporal_interceptors()
    client = Client(**config)
    async with running_lucy(settings, client, engine, admin_engine) as running:
        yield running


def _by_trace(spans: tuple[ReadableSpan, ...], trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and s.context.trace_id == trace_id]


async def test_a_mention_is_one_trace_from_ingress_to_the_slack_post(
    traced_lucy: Lucy,
    spans: InMemorySpanExporter,
    fake_llm: FakeLlm,
    fake_slack: FakeSlack,
    capsys: pytest.CaptureFixture[str],
):
    configure_logging("INFO", json_output=True)
    team = new_team()
    fake_llm.then(content="Noted.", prompt_tokens=5, completion_tokens=2, cost=0.0001)
    event = mention_event(team=team, text=SECRET_WORDS)
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])

    response = await traced_lucy.post_event(event)
    assert response.status_code == 200
    handle = traced_lucy.client.get_workflow_handle(workflow_id)
    await asyncio.wait_for(handle.result(), timeout=60)
    assert fake_slack.posted(ev["channel"]), "the answer was posted"

    finished = spans.get_finished_spans()
    ingress = [s for s in finished if s.name == "POST /slack/events" and s.parent is None]
    assert len(ingress) == 1, [s.name for s in finished]
    trace_id = ingress[0].context.trace_id
    assert ingress[0].attributes is not None
    assert ingress[0].attributes["lucy.workspace"] == team
    assert ingress[0].attributes["lucy.task"] == workflow_id

    one = _by_trace(finished, trace_id)
    names = [s.name for s in one]
    assert "StartWorkflow:LucyTaskWorkflow" in names, names
    assert "RunWorkflow:LucyTaskWorkflow" in names, names
    assert "RunActivity:llm.chat" in names, names
    assert "RunActivity:slack.post_message" in names, names
    # The outgoing calls, inside their activities: the LLM over httpx, the post over aiohttp
    # (the Slack SDK), and the database over asyncpg.
    by_id = {s.context.span_id: s for s in one}

    def under(span: ReadableSpan, activity: str) -> bool:
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            if span.name == f"RunActivity:{activity}":
                return True
        return False

    client_spans = [s for s in one if s.kind.name == "CLIENT"]
    assert any(under(s, "llm.chat") and s.name.startswith("POST") for s in client_spans), names
    assert any(under(s, "slack.post_message") and s.name.startswith("POST") for s in client_spans), names
    assert any((s.attributes or {}).get("db.system") == "postgresql" for s in one), names
    # Every RunActivity of the task is in this trace, tagged with the task and the workspace.
    activities = [s for s in finished if s.name.startswith("RunActivity:")]
    task_activities = [s for s in activities if (s.attributes or {}).get("lucy.task") == workflow_id]
    assert task_activities and all(s.context.trace_id == trace_id for s in task_activities)
    assert all((s.attributes or {}).get("lucy.workspace") == team for s in task_activities)

    # No message text and no secret in any attribute of any span.
    forbidden = [
        "swordfish",
        "launch code",
        "Noted.",
        SIGNING_SECRET,
        traced_lucy.settings.slack.slack_bot_token.get_secret_value(),  # type: ignore[union-attr]
        traced_lucy.settings.llm.openrouter_api_key.get_secret_value(),  # type: ignore[union-attr]
    ]
    for span in finished:
        for key, value in (span.attributes or {}).items():
            for word in forbidden:
                assert word not in str(value), f"{span.name} {key} carries {word!r}"

    # The ingress's request log line carries the trace and span ids.
    hex_id = format(trace_id, "032x")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    traced = [line for line in lines if line.get("trace_id") == hex_id]
    assert traced, lines
    assert all(len(line["span_id"]) == 16 for line in traced)


def test_tracing_is_off_unless_the_otel_variables_ask():
    assert not tracing.tracing_configured({})
    assert not tracing.tracing_configured({"OTEL_SERVICE_NAME": "lucy"})
    assert tracing.tracing_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.tracing_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert tracing.tracing_configured({"OTEL_TRACES_EXPORTER": "console"})
    assert not tracing.tracing_configured(
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"}
    )
    assert not tracing.tracing_configured({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"})
    assert not tracing.configure_tracing("worker", {})
    assert not tracing.active()
    assert tracing.temporal_interceptors() == []
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER"):
        tracing.configure_tracing("worker", {"OTEL_TRACES_EXPORTER": "zipkin"})


def test_activity_attributes_are_ids_only():
    attrs = tracing.activity_attributes("tools.gateway", "lucy-task-T0ACME-C0GENERAL-1700000000.000100")
    assert attrs == {
        "lucy.activity": "tools.gateway",
        "lucy.tool": "gateway",
        "lucy.task": "lucy-task-T0ACME-C0GENERAL-1700000000.000100",
        "lucy.workspace": "T0ACME",
    }
    assert tracing.activity_attributes("maintenance.partitions", None) == {
        "lucy.activity": "maintenance.partitions"
    }


PRESIGNED = "X-Amz-Signature=0f3a9c-presigned-secret&X-Amz-Credential=AKIAEXAMPLE"


def _url_attributes(spans: tuple[ReadableSpan, ...]) -> list[str]:
    return [
        str(value)
        for span in spans
        for key, value in (span.attributes or {}).items()
        if key in ("url.full", "http.url", "http.target", "url.path", "url.query")
    ]


async def test_span_urls_keep_no_query_string(
    spans: InMemorySpanExporter, settings: Settings, engine: AsyncEngine, fake_llm: FakeLlm
):
    """Presigned URLs (an S3 download, a Slack file) carry their credential in the query string:
    the httpx, aiohttp-client and FastAPI spans keep the URL without it."""
    import aiohttp
    import httpx

    from app.ingress.app import IngressDeps, create_app

    target = f"{fake_llm.base_url}/files/report.csv?{PRESIGNED}"
    async with httpx.AsyncClient() as http:
        await http.get(target)
    async with aiohttp.ClientSession() as session, session.get(target) as response:
        await response.read()

    async def no_temporal() -> Client:
        raise ConnectionRefusedError("not needed")

    app = create_app(IngressDeps(settings=settings, engine=engine, temporal=no_temporal))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as http:
        await http.post(f"/slack/events?{PRESIGNED}", content=b"{}")

    finished = spans.get_finished_spans()
    urls = _url_attributes(finished)
    assert sum("/files/report.csv" in u for u in urls) >= 2, urls  # the httpx and aiohttp spans
    assert any("/slack/events" in u for u in urls), urls  # the server span
    everything = json.dumps([dict(s.attributes or {}) for s in finished] + [s.name for s in finished])
    assert "presigned-secret" not in everything and "X-Amz" not in everything, everything
