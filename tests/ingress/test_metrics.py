"""GET /metrics: Prometheus text with Slack, start, LLM and visibility figures."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlencode

import httpx
import pytest
from temporalio.client import Client

from app.devservers import LocalPostgres
from app.ingress.app import IngressDeps, create_app
from lucy.contracts.ids import task_workflow_id
from lucy.db.session import create_engine
from lucy.metrics import SLACK_KINDS, slack_kind
from lucy.settings import load_settings
from tests.conftest import Lucy, mention_event, new_team, sign


def _value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_metrics_count_events_starts_and_llm_calls(lucy: Lucy):
    before = (await lucy.http.get("/metrics")).text
    team = new_team()
    event = mention_event(team=team, text="metrics please")
    assert (await lucy.post_event(event)).status_code == 200
    assert (await lucy.post_event(event, headers={"X-Slack-Retry-Num": "1"})).status_code == 200
    assert (await lucy.post_event(event, signed=False)).status_code == 401
    ev = event["event"]
    await asyncio.wait_for(
        lucy.client.get_workflow_handle(task_workflow_id(team, ev["channel"], ev["ts"])).result(), 30
    )
    response = await lucy.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("lucy_slack_events_total", type="event:app_mention", outcome="ok") == 2
    # An unsigned request is refused before its body is read for a label.
    assert delta("lucy_slack_events_total", type="unknown", outcome="401") == 1
    assert delta("lucy_workflow_starts_total", outcome="started") == 1
    assert delta("lucy_workflow_starts_total", outcome="duplicate") == 1
    assert delta("lucy_slack_ack_seconds_count", type="event:app_mention") == 2
    # the intent classification and the answer
    assert delta("lucy_llm_request_seconds_count", provider="127.0.0.1", outcome="ok") == 2
    assert re.search(r"^lucy_active_tasks \d", after, re.M)
    assert re.search(r"^lucy_pending_approvals \d", after, re.M)


async def test_label_values_come_from_an_allow_list(lucy: Lucy):
    """Whatever ``type`` a (signed) request claims, it cannot create a new time series."""
    junk = f"zz{uuid.uuid4().hex}"
    team = new_team()
    payloads = [
        {"type": "event_callback", "team_id": team, "event": {"type": junk}},
        {"type": junk, "team_id": team},
        {
            "type": "event_callback",
            "team_id": team,
            "event": {"type": "app_mention", "user": "B0T", "bot_id": "B"},
        },
    ]
    for payload in payloads:
        assert (await lucy.post_event(payload)).status_code in (200, 404)
    body = urlencode({"command": f"/{junk}", "team_id": team, "user_id": "U1", "channel_id": "C1"}).encode()
    h = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
    assert (await lucy.http.post("/slack/events", content=body, headers=h)).status_code == 404
    # Unsigned and malformed: refused before anything in them could become a label.
    assert (await lucy.post_event({"type": junk}, signed=False)).status_code == 401
    text = (await lucy.http.get("/metrics")).text
    assert junk not in text
    labels = set(re.findall(r'^lucy_slack_(?:events_total|ack_seconds_\w+)\{.*?type="([^"]*)"', text, re.M))
    assert labels <= SLACK_KINDS, labels - SLACK_KINDS
    assert {"other", "unknown", "event:app_mention"} <= labels


def test_slack_kind_maps_any_payload_onto_the_allow_list():
    payloads = [
        None,
        {},
        {"type": ["event_callback"]},
        {"type": {"a": 1}},
        {"type": "event_callback", "event": {"type": ["app_mention"]}},
        {"type": "event_callback", "event": "app_mention"},
        {"type": "event_callback", "event": {"type": "app_mention"}},
        {"type": "block_actions"},
        {"command": "/lucy"},
        {"command": ["/lucy"]},
        {"ssl_check": "1"},
        {"type": "x" * 1000},
    ]
    kinds = [slack_kind(p) for p in payloads]
    assert set(kinds) <= SLACK_KINDS
    assert kinds[0] == "unknown" and kinds[6] == "event:app_mention" and kinds[8] == "command"
    assert kinds[1:6] == ["other"] * 5 and kinds[9] == "other"


async def _no_temporal() -> Client:
    raise ConnectionRefusedError("not needed")


@asynccontextmanager
async def _ingress(
    postgres: LocalPostgres, *, env: str, metrics_token: str | None
) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(database_url=postgres.app_url, env=env, metrics_token=metrics_token)
    engine = create_engine(settings.database)
    app = create_app(IngressDeps(settings=settings, engine=engine, temporal=_no_temporal))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost"
        ) as http:
            yield http
    finally:
        await engine.dispose()


@pytest.mark.parametrize("env", ["development", "test"])
async def test_metrics_without_a_token_are_open_only_in_development_and_test(
    postgres: LocalPostgres, env: str
):
    async with _ingress(postgres, env=env, metrics_token=None) as http:
        r = await http.get("/metrics")
    assert r.status_code == 200
    assert "lucy_slack_events_total" in r.text


@pytest.mark.parametrize("env", ["staging", "production"])
async def test_metrics_without_a_token_are_not_served_in_staging_and_production(
    postgres: LocalPostgres, env: str
):
    async with _ingress(postgres, env=env, metrics_token=None) as http:
        r = await http.get("/metrics")
        assert (await http.get("/metrics", headers={"Authorization": "Bearer "})).status_code == 404
        assert (await http.get("/health")).status_code == 200
    assert r.status_code == 404
    assert "lucy_" not in r.text


@pytest.mark.parametrize("env", ["production", "test"])
async def test_metrics_with_a_token_need_it_as_a_bearer(postgres: LocalPostgres, env: str):
    token = f"metrics-{uuid.uuid4().hex}"
    async with _ingress(postgres, env=env, metrics_token=token) as http:
        for headers in (
            [],
            [("Authorization", f"Bearer {token}x")],
            [("Authorization", f"Bearer {token[:-1]}")],
            [("Authorization", token)],
            [("Authorization", f"Basic {token}")],
            [("Authorization", "Bearer é".encode("latin-1"))],  # not ASCII
        ):
            r = await http.get("/metrics", headers=headers)
            assert r.status_code == 401, headers
            assert r.headers["www-authenticate"] == "Bearer"
            assert "lucy_" not in r.text
        ok = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    assert "lucy_slack_events_total" in ok.text
