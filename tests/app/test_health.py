"""Ingress without credentials, health endpoints, malformed bodies."""

from __future__ import annotations

import json

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from app.devservers import LocalPostgres
from app.ingress.app import IngressDeps, create_app
from lucy.db.session import create_engine
from lucy.settings import load_settings
from tests.conftest import Lucy, mention_event, new_team, sign


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://localhost"
    )  # development: localhost only


async def test_health_endpoints_up(lucy: Lucy):
    assert (await lucy.http.get("/health")).json() == {"status": "ok", "service": "lucy"}
    db = await lucy.http.get("/health/db")
    assert db.status_code == 200 and db.json()["status"] == "ok"
    temporal = await lucy.http.get("/health/temporal")
    assert temporal.status_code == 200 and temporal.json()["status"] == "ok"


async def test_health_endpoints_down_say_why(postgres: LocalPostgres):
    settings = load_settings(database_url="postgresql+asyncpg://lucy:lucy@127.0.0.1:1/lucy")
    engine = create_engine(settings.database)

    async def no_temporal() -> Client:
        raise ConnectionRefusedError("temporal is down")

    app = create_app(IngressDeps(settings=settings, engine=engine, temporal=no_temporal))
    async with _client(app) as http:
        assert (await http.get("/health")).status_code == 200
        db = await http.get("/health/db")
        assert db.status_code == 503 and db.json()["reason"]
        t = await http.get("/health/temporal")
        assert t.status_code == 503 and t.json()["reason"] == "ConnectionRefusedError"
    await engine.dispose()


async def test_without_slack_credentials_events_are_refused_clearly(
    engine: AsyncEngine, temporal_env: WorkflowEnvironment, postgres: LocalPostgres
):
    settings = load_settings(database_url=postgres.url, slack_signing_secret=None, slack_bot_token=None)

    async def client() -> Client:
        return temporal_env.client

    app = create_app(IngressDeps(settings=settings, engine=engine, temporal=client))
    async with _client(app) as http:
        assert (await http.get("/health")).status_code == 200
        body = json.dumps(mention_event(team=new_team())).encode()
        r = await http.post(
            "/slack/events", content=body, headers={"Content-Type": "application/json", **sign(body)}
        )
        assert r.status_code == 503
        assert r.json()["error"] == "slack_not_configured"
        assert "LUCY_SLACK_SIGNING_SECRET" in r.json()["message"]


async def test_malformed_bodies_get_400(lucy: Lucy):
    for body, ctype in (
        (b"{not json", "application/json"),
        (b"[1,2]", "application/json"),
        (b"x", "text/plain"),
    ):
        r = await lucy.http.post("/slack/events", content=body, headers={"Content-Type": ctype, **sign(body)})
        assert r.status_code == 400, (body, r.text)
    huge = b"{" + b" " * 1_100_000 + b"}"
    r = await lucy.http.post(
        "/slack/events", content=huge, headers={"Content-Type": "application/json", **sign(huge)}
    )
    assert r.status_code == 413


async def test_event_without_user_is_acknowledged_and_ignored(lucy: Lucy):
    event = mention_event(team=new_team())
    del event["event"]["user"]
    r = await lucy.post_event(event)
    assert r.status_code == 200
