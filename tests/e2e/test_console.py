"""The local Slack console end to end, through its HTTP API only: a real ingress served by
uvicorn with the console mounted as ``lucy dev`` mounts it, a real worker, the real Temporal dev
server and PostgreSQL, the demo model and the demo gateway. Lucy reaches the console only as
its Slack Web API; the console reaches Lucy only with signed requests to ``/slack/events``."""

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

from activities.egress import EgressGuard
from ingress.app import IngressDeps, create_app
from lucy.console.web import ConsoleRefused, console_router
from lucy.dev import console_overrides, mount_console
from lucy.devservers import LocalPostgres, free_port
from lucy.serving import serve_http
from lucy.settings import load_settings
from lucy.worker import lucy_worker
from tests.conftest import PUBLIC_TEST_SITES, eventually

ALICE, BOB, GENERAL = "U0ALICE", "U0BOB", "C0GENERAL"


@dataclass
class Browser:
    """What the page does, over the console's HTTP API."""

    http: httpx.AsyncClient

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
            yield Browser(http)
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


async def test_the_page_and_its_assets_are_served_with_a_strict_policy(browser: Browser):
    page = await browser.http.get("/console")
    assert page.status_code == 200 and "console.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    js = await browser.http.get("/console/static/console.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert (await browser.http.get("/console/static/..%2Fweb.py")).status_code == 404
    workspace = (await browser.http.get("/console/workspace")).json()
    assert {m["role"] for m in workspace["members"]} == {"member", "admin", "guest"}
    assert any("DEMO model" in label for label in workspace["labels"])
    # The page's actions take JSON only, so another site's form cannot post them.
    form = await browser.http.post("/console/send", data={"user": ALICE, "channel": GENERAL, "text": "hi"})
    assert form.status_code == 400


async def test_a_mention_is_answered_in_its_thread(browser: Browser):
    sent = await browser.send(ALICE, "@lucy what is the capital of France?")
    assert sent["ok"] and sent["statuses"] == [200, 200]  # app_mention and message.channels, both accepted
    answer = await eventually(
        lambda: _find(browser.thread(ALICE, sent["ts"]), "You asked: what is the capital of France?"),
        "Lucy's answer in the thread",
        timeout=60,
    )
    assert answer["bot"] and answer["thread_ts"] == sent["ts"] and answer["author"] == "Lucy"
    (mine,) = [m for m in (await browser.feed(ALICE))["messages"] if m["ts"] == sent["ts"]]
    assert '<span class="mention" data-user="UBOTLUCY">@Lucy</span>' in mine["html"]


async def test_an_approval_is_decided_by_the_admin_and_updated_in_place(browser: Browser):
    sent = await browser.send(ALICE, "@lucy run uptime")
    approval = await eventually(
        lambda: _find(browser.thread(ALICE, sent["ts"]), ">Approve<"), "the approval message", timeout=60
    )
    assert "uptime" in approval["html"] and ">Reject<" in approval["html"]
    # Bob, an admin, sees the same message and approves it.
    (seen_by_bob,) = [m for m in await browser.thread(BOB, sent["ts"]) if m["ts"] == approval["ts"]]
    assert (await browser.click(BOB, seen_by_bob, "Approve"))["ok"]
    decided = await eventually(
        lambda: _find(browser.thread(BOB, sent["ts"]), "Approved by", ts=approval["ts"]),
        "the approval message updated in place",
        timeout=60,
    )
    assert ">Approve<" not in decided["html"]
    answer = await eventually(
        lambda: _find(browser.thread(ALICE, sent["ts"]), "demo gateway: nothing was executed"),
        "the answer after the approval",
        timeout=60,
    )
    assert answer["ts"] != approval["ts"]


async def test_lucy_help_is_ephemeral_to_whoever_asked(browser: Browser):
    assert (await browser.send(ALICE, "/lucy help"))["ok"]
    mine = await eventually(lambda: _ephemerals(browser, ALICE), "the help, for Alice")
    assert any("/lucy" in e["html"] for e in mine)
    assert not (await browser.feed(BOB))["ephemerals"]
    assert not [m for m in (await browser.feed(ALICE))["messages"] if "/lucy help" in m["html"]]


async def test_a_file_is_shared_in_the_thread_and_downloads(browser: Browser):
    sent = await browser.send(ALICE, "@lucy make a csv of our team")
    shared = await eventually(
        lambda: _with_files(browser.thread(ALICE, sent["ts"])), "the file in the thread", timeout=60
    )
    (f,) = shared["files"]
    download = await browser.http.get(f"/console/files/{f['id']}")
    assert download.status_code == 200 and download.headers["content-disposition"].startswith("attachment")
    assert b"Alice" in download.content and download.headers["content-type"] == "application/octet-stream"


def test_the_console_refuses_outside_development():
    for env in ("production", "staging"):
        with pytest.raises(ConsoleRefused):
            console_router(None, env=env, labels=[])  # type: ignore[arg-type]


async def _find(thread: Any, needle: str, *, ts: str | None = None) -> dict[str, Any] | None:
    for message in await thread:
        if needle in message["html"] and (ts is None or message["ts"] == ts):
            return message
    return None


async def _ephemerals(browser: Browser, user: str) -> list[dict[str, Any]]:
    return (await browser.feed(user))["ephemerals"]


async def _with_files(thread: Any) -> dict[str, Any] | None:
    return next((m for m in await thread if m["files"]), None)


async def test_the_console_answers_only_on_localhost(browser: Browser):
    rebound = await browser.http.get("/console/workspace", headers={"Host": "evil.example:3000"})
    assert rebound.status_code == 403
    assert (
        await browser.http.get("/console/workspace", headers={"Host": "localhost:3000"})
    ).status_code == 200
