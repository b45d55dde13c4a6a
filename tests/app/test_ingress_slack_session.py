"""The ingress's Slack calls before the ack (``users.info`` for a requester not yet cached, the
assistant status of a DM) go over one kept-alive session while the app runs (its lifespan, as
uvicorn runs it): without one, slack_sdk opened a new session and connection, against slack.com
a TLS handshake, for every call, and Slack waits for the ack."""

from __future__ import annotations

import json

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from app.ingress.app import create_app
from capabilities.task.listeners.deps import IngressDeps
from lucy.settings import Settings
from tests.conftest import mention_event, new_team, sign
from tests.fakes.slack import FakeSlack


async def test_users_info_before_the_ack_reuses_one_connection(
    settings: Settings, temporal_env: WorkflowEnvironment, engine: AsyncEngine, fake_slack: FakeSlack
):
    async def get_client() -> Client:
        return temporal_env.client

    app = create_app(IngressDeps(settings=settings, engine=engine, temporal=get_client))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://ingress") as http,
    ):
        before = len(fake_slack.connections)
        for user in ("U0SESSIONA", "U0SESSIONB", "U0SESSIONC"):  # three look-ups, one at a time
            body = json.dumps(mention_event(team=new_team(), user=user, text="hello")).encode()
            response = await http.post(
                "/slack/events", content=body, headers={**sign(body), "Content-Type": "application/json"}
            )
            assert response.status_code == 200, response.text
    looked_up = [port for method, port in fake_slack.connections[before:] if method == "users.info"]
    assert len(looked_up) == 3, fake_slack.connections[before:]
    assert len(set(looked_up)) == 1, looked_up
