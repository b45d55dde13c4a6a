"""Schemathesis over the ingress's OpenAPI operations: health, metrics and the codec server.

The schema under test is the one the app serves at ``/openapi.json`` in development and test
(FastAPI's ``app.openapi()``), which declares the codec's body and every answer. Every case runs
against the real app in-process (ASGI), on the session's real PostgreSQL and Temporal dev
server, with payload encryption on (so ``/codec/*`` exists) and a bearer token for ``/metrics``
and the codec. Checks: never a 5xx, and responses conform to the schema.

Left out: ``POST /slack/events`` (signed bodies only; ``test_hostile.py`` covers it).
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from starlette.types import ASGIApp
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from app.devservers import LocalPostgres
from app.ingress.app import IngressDeps, create_app, lazy_temporal
from lucy.crypto import KeyRing
from lucy.settings import Settings, load_settings

TOKEN = "schema-test-token-0123456789abcdef"  # both the metrics and the codec (decode) bearer token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENCODE_TOKEN = "schema-test-encode-token-0123456789"  # /codec/encode's own token
CHECKS = [not_a_server_error, response_schema_conformance]
FAST = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
PROTECTED = {("GET", "/metrics"), ("POST", "/codec/encode"), ("POST", "/codec/decode")}


def _settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "env": "test",
        "database_url": "postgresql+asyncpg://lucy:lucy@127.0.0.1:1/lucy",  # replaced by the fixture
        "temporal_encrypt_payloads": True,
        "encryption_keys": KeyRing.new_key("schema"),
        "metrics_token": TOKEN,
        "temporal_codec_token": TOKEN,
        "temporal_codec_encode_token": ENCODE_TOKEN,
    }
    return load_settings(**{**base, **overrides})


async def _no_temporal() -> Client:
    raise RuntimeError("reading the schema connects to nothing")


def _served_document() -> dict[str, Any]:
    """What the app serves at ``/openapi.json`` (it connects to nothing to build it)."""
    settings = _settings()
    engine = create_async_engine(settings.database.async_url, poolclass=NullPool)
    return create_app(IngressDeps(settings=settings, engine=engine, temporal=_no_temporal)).openapi()


SERVED = _served_document()
schema = schemathesis.openapi.from_dict(SERVED).include(path_regex=r"^/(health|metrics|codec)")


def _call(case: schemathesis.Case, app: ASGIApp, headers: dict[str, str] | None = None) -> Any:
    return case.call_and_validate(app=app, headers=headers, checks=CHECKS)


@pytest.fixture(scope="module")
def ingress_app(postgres: LocalPostgres, temporal_env: WorkflowEnvironment) -> Iterator[ASGIApp]:
    """The real ingress app on the session's PostgreSQL and Temporal dev server.

    Schemathesis runs ASGI apps on an event loop of its own (in another thread), so the app
    gets its own engine (no pool: no connection outlives the request that opened it) and its
    own Temporal client (connected on first use, on that loop) rather than the session's,
    which belong to pytest's loop.
    """
    settings = _settings(
        database_url=postgres.app_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"lucy-schema-{uuid.uuid4().hex[:8]}",
    )
    engine = create_async_engine(settings.database.async_url, poolclass=NullPool)
    address, namespace = settings.temporal.temporal_address, settings.temporal.temporal_namespace
    app = create_app(
        IngressDeps(
            settings=settings,
            engine=engine,
            temporal=lazy_temporal(lambda: Client.connect(address, namespace=namespace)),
        )
    )
    # Connect to Temporal once, on Schemathesis's loop, before any timed health check: on a busy
    # machine a first connect inside /health/temporal's 2 s budget would be a (correct) 503.
    probe = schema["/health/temporal"]["GET"]
    deadline = time.monotonic() + 30
    while probe.Case().call(app=app).status_code != 200:
        assert time.monotonic() < deadline, "Temporal never became healthy through the app"
        time.sleep(0.2)
    yield app


async def test_the_app_serves_the_schema_under_test(ingress_app: ASGIApp) -> None:
    """``/openapi.json`` is served and is the document fuzzed here, with every operation."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ingress_app), base_url="http://t") as http:
        served = await http.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == SERVED
    assert {"/health", "/health/db", "/health/temporal", "/metrics", "/codec/encode", "/codec/decode"} <= set(
        SERVED["paths"]
    )
    operations = {
        (r.ok().method.upper(), r.ok().path) for r in schema.get_all_operations() if isinstance(r, Ok)
    }
    assert {("GET", "/health/db"), ("POST", "/codec/decode"), ("OPTIONS", "/codec/decode")} <= operations
    assert not any(path.startswith("/slack") for _, path in operations)


@schema.parametrize()
@FAST
def test_operations_never_5xx_and_match_the_schema(case: schemathesis.Case, ingress_app: ASGIApp) -> None:
    _call(case, ingress_app, AUTH)


@schema.parametrize()
@settings(FAST, max_examples=8)
def test_without_the_token_nothing_protected_answers(case: schemathesis.Case, ingress_app: ASGIApp) -> None:
    response = _call(case, ingress_app)
    if (case.method.upper(), case.path) in PROTECTED:
        assert response.status_code in (401, 405), (case.method, case.path, response.status_code)


async def test_codec_round_trip_through_the_real_app(ingress_app: ASGIApp) -> None:
    """A positive control for the fuzzing: what ``encode`` returns, ``decode`` gives back."""
    original = {"payloads": [{"metadata": {"encoding": _b64(b"json/plain")}, "data": _b64(b'{"a": 1}')}]}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ingress_app), base_url="http://t", headers=AUTH
    ) as http:
        sealed = await http.post(
            "/codec/encode", json=original, headers={"Authorization": f"Bearer {ENCODE_TOKEN}"}
        )
        assert sealed.status_code == 200 and sealed.json() != original
        opened = await http.post("/codec/decode", json=sealed.json())
    assert opened.status_code == 200 and opened.json() == original


@pytest.mark.parametrize(
    "body",
    [
        '{"payloads": [1]}',
        "[]",
        '{"payloads": [{"data": 5}]}',
        '{"payloads": [{"metadata": [null, null], "data": ""}]}',
        '{"payloads": "ab"}',
        '{"payloads": [{"data": "not base64!"}]}',
        "{not json",
    ],
)
async def test_codec_refuses_wrongly_shaped_json_with_400(ingress_app: ASGIApp, body: str) -> None:
    """The counterexamples Schemathesis found (each was a 500), kept deterministic: each is a
    400 that says what is wrong."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ingress_app, raise_app_exceptions=False),
        base_url="http://t",
        headers={**AUTH, "Content-Type": "application/json"},
    ) as http:
        response = await http.post("/codec/decode", content=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
