"""The local Slack console end to end, through its HTTP API only: a real ingress served by
uvicorn with the console mounted as ``lucy dev`` mounts it, a real worker, the real Temporal dev
server and PostgreSQL, the demo model and the demo gateway. Lucy reaches the console only as
its Slack Web API; the console reaches Lucy only with signed requests to ``/slack/events``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.devtools.console.web import ConsoleRefused, console_router
from tests.conftest import eventually
from tests.fixtures.console import Browser

ALICE, BOB, GENERAL = "U0ALICE", "U0BOB", "C0GENERAL"


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


async def test_an_answer_carries_feedback_buttons_and_a_click_is_recorded(
    browser: Browser, admin_engine: AsyncEngine
):
    sent = await browser.send(ALICE, "@lucy how tall is the Eiffel tower?")
    answer = await eventually(
        lambda: _find(browser.thread(ALICE, sent["ts"]), "You asked: how tall"), "the answer", timeout=60
    )
    assert ">Good answer<" in answer["html"] and ">Bad answer<" in answer["html"]
    assert (await browser.click(BOB, answer, "Good answer"))["ok"]

    async def recorded() -> list[Any]:
        async with admin_engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT slack_user_id, feedback FROM task_feedback f JOIN tasks t ON t.id = f.task_id "
                    "WHERE t.slack_thread_ts = :ts"
                ),
                {"ts": sent["ts"]},
            )
            return [tuple(r) for r in rows]

    assert await eventually(recorded, "the feedback recorded") == [(BOB, "good")]


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


async def test_a_modal_opens_submits_and_its_ephemeral_confirmation_is_clickable(browser: Browser):
    assert (await browser.send(ALICE, "/lucy schedule"))["ok"]
    modal = await eventually(lambda: _modal(browser, ALICE), "the schedule modal")
    assert "Schedule a task" in modal["title"] and 'data-input-block="when"' in modal["html"]
    assert (await browser.feed(BOB))["modal"] is None  # only whoever opened it sees it
    values = {
        "what": {"value": "post a summary"},
        "when": {"value": "every day at 18:00"},
        "where": {"value": GENERAL},
    }
    r = await browser.http.post("/console/modal/submit", json={"user": ALICE, "values": values})
    assert r.json()["ok"], r.text
    assert (await browser.feed(ALICE))["modal"] is None
    offer = await eventually(
        lambda: _ephemeral_with(browser, ALICE, "Schedule this task?"), "the confirmation, only for Alice"
    )
    assert not (await browser.feed(BOB))["ephemerals"]
    assert (await browser.click(ALICE, offer, "Create", where="ephemeral"))["ok"]
    await eventually(
        lambda: _ephemeral_with(browser, ALICE, "every day", without="Create"),
        "the confirmation replaced",
        timeout=30,
    )


async def _modal(browser: Browser, user: str) -> dict[str, Any] | None:
    return (await browser.feed(user))["modal"]


async def _ephemeral_with(
    browser: Browser, user: str, needle: str, without: str = ""
) -> dict[str, Any] | None:
    for e in (await browser.feed(user))["ephemerals"]:
        if needle in e["html"] and (not without or f">{without}<" not in e["html"]):
            return e
    return None


async def test_a_dm_is_answered_and_home_opens(browser: Browser):
    dm = "D0ALICE"
    sent = await browser.send(ALICE, "hello there", channel=dm)
    assert sent["ok"] and sent["statuses"] == [200]  # message.im only
    await eventually(
        lambda: _in_feed(browser, ALICE, dm, "You asked: hello there"), "Lucy's answer in the DM", timeout=60
    )
    r = await browser.http.get("/console/feed", params={"user": BOB, "channel": dm})
    assert r.status_code == 400  # Bob cannot read Alice's DM with Lucy
    assert (await browser.http.post("/console/home", json={"user": BOB})).json()["ok"]
    home = await eventually(lambda: _home(browser, BOB), "Bob's Home tab", timeout=30)
    assert "blk" in home


async def _in_feed(browser: Browser, user: str, channel: str, needle: str) -> bool:
    return any(needle in m["html"] for m in (await browser.feed(user, channel))["messages"])


async def _home(browser: Browser, user: str) -> str | None:
    return (await browser.feed(user))["home"]


async def test_changes_arrive_live_over_server_sent_events(browser: Browser):
    async with browser.http.stream("GET", "/console/stream") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()

        async def next_version() -> int:
            while True:
                line = await asyncio.wait_for(anext(lines), 20)
                if line.startswith("data: "):
                    return int(line.removeprefix("data: "))

        first = await next_version()
        await browser.send(ALICE, "just chatting, no mention")
        assert await next_version() > first
