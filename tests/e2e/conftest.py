"""Fixtures of the end-to-end tests: a Lucy with the local Slack console, served by uvicorn on a
free port exactly as ``lucy dev`` mounts it (demo model, demo gateway), and a client that does
what the console's page does."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from app.dev import console_overrides, mount_console
from app.devservers import LocalPostgres, free_port, temporal_test_server_path
from app.ingress.app import IngressDeps, create_app
from app.serving import serve_http
from app.worker import lucy_worker
from capabilities.tools.egress import EgressGuard
from lucy.settings import load_settings
from lucy.temporal import ensure_search_attributes
from tests.conftest import PUBLIC_TEST_SITES, eventually

GENERAL = "C0GENERAL"


@dataclass
class Browser:
    """What the page does, over the console's HTTP API."""

    http: httpx.AsyncClient
    port: int = 0

    async def send(
        self, user: str, text: str, *, channel: str = GENERAL, thread_ts: str | None = None
    ) -> dict:
        r = await self.http.post(
            "/console/send", json={"user": user, "channel": channel, "text": text, "thread_ts": thread_ts}
        )
        assert r.status_code == 200, r.text
        return r.json()

    async def feed(self, user: str, channel: str = GENERAL) -> dict[str, Any]:
        r = await self.http.get("/console/feed", params={"user": user, "channel": channel})
        assert r.status_code == 200, r.text
        return r.json()

    async def thread(self, user: str, ts: str) -> list[dict[str, Any]]:
        return [m for m in (await self.feed(user))["messages"] if m["ts"] == ts or m.get("thread_ts") == ts]

    async def click(self, user: str, message: dict[str, Any], label: str, where: str = "message") -> dict:
        block, element = _button(message["html"], label)
        r = await self.http.post(
            "/console/click",
            json={
                "user": user,
                "where": where,
                "channel": GENERAL,
                "ts": message["ts"],
                "block": block,
                "element": element,
            },
        )
        assert r.status_code == 200, r.text
        return r.json()


def _button(html: str, label: str) -> tuple[int, str]:
    for match in re.finditer(
        r'<button type="button" class="[^"]*" data-block="(\d+)" data-el="([^"]+)">([^<]*)<', html
    ):
        if match.group(3) == label:
            return int(match.group(1)), match.group(2)
    raise AssertionError(f"no {label!r} button in {html}")


@pytest.fixture
async def browser(
    postgres: LocalPostgres, temporal_env: WorkflowEnvironment, engine: AsyncEngine
) -> AsyncIterator[Browser]:
    port = free_port()
    base = load_settings(env="test", database_url=postgres.app_url)
    overrides, labels = console_overrides(base, port)
    settings = load_settings(
        env="test",
        database_url=postgres.app_url,
        database_migration_url=postgres.url,
        temporal_task_queue=f"lucy-console-{uuid.uuid4().hex[:10]}",
        slack_channel_min_interval=0.2,
        **overrides,
    )
    assert "DEMO model" in " ".join(labels) and "DEMO gateway" in " ".join(labels)

    async def get_client() -> Any:
        return temporal_env.client

    app = create_app(IngressDeps(settings=settings, engine=engine, temporal=get_client))
    console_http = mount_console(app, settings, port, labels)
    server = asyncio.create_task(serve_http(app, port, host="127.0.0.1"))
    async with (
        lucy_worker(
            settings, temporal_env.client, engine=engine, egress=EgressGuard(resolver=PUBLIC_TEST_SITES)
        ),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15.0) as http,
    ):
        await eventually(lambda: _up(http), "the console's ingress to serve")
        try:
            yield Browser(http, port)
        finally:
            server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server
            await console_http.aclose()


async def _up(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/health")).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping Temporal test server for one test module (timers pass at once)."""
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=temporal_test_server_path())
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()
