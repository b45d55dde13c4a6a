"""The console reaches Lucy only as Slack does: every delivery is signed and passes Bolt's own
signature check; the shape of each request is Slack's."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx
from slack_sdk.signature import SignatureVerifier

from app.devtools.console import deliver
from app.devtools.console.backend import SlackBackend
from app.devtools.console.workspace import Console

SECRET = "console-test-secret"


async def test_every_delivery_passes_bolts_signature_check():
    seen: list[httpx.Request] = []

    def app(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"response_type": "ephemeral", "text": "help text"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(app)) as http:
        console = Console(
            SlackBackend(token="xoxb-t", real_time=True),
            deliver.Deliverer(events_url="http://lucy/slack/events", signing_secret=SECRET, http=http),
        )
        await console.send("U0ALICE", "C0GENERAL", "hello @lucy & <friends>")
        await console.send("U0ALICE", "D0ALICE", "in a DM")
        await console.command("U0BOB", "C0GENERAL", "help")
        await console.open_home("U0BOB")
        ts = console.backend.call(
            "chat.postMessage",
            {
                "channel": "C0GENERAL",
                "text": "t",
                "blocks": [
                    {
                        "type": "actions",
                        "block_id": "b",
                        "elements": [
                            {
                                "type": "button",
                                "action_id": "lucy_approve",
                                "value": "v1",
                                "text": {"type": "plain_text", "text": "Approve"},
                            }
                        ],
                    }
                ],
            },
            "xoxb-t",
        )[1]["ts"]
        await console.click("U0BOB", "message", block=0, element="0", channel="C0GENERAL", ts=ts)

    verifier = SignatureVerifier(SECRET)
    assert len(seen) == 6  # mention + message.channels, message.im, command, app_home_opened, click
    for request in seen:
        assert verifier.is_valid_request(request.content, dict(request.headers)), request.content
        assert not SignatureVerifier("another-secret").is_valid_request(
            request.content, dict(request.headers)
        )
    mention = json.loads(seen[0].content)
    assert mention["event"]["type"] == "app_mention"
    assert mention["event"]["text"] == "hello <@UBOTLUCY> &amp; &lt;friends&gt;"  # encoded as Slack stores it
    assert json.loads(seen[1].content)["event"]["channel_type"] == "channel"
    assert json.loads(seen[2].content)["event"]["channel_type"] == "im"
    command = parse_qs(seen[3].content.decode())
    assert command["command"] == ["/lucy"] and command["text"] == ["help"] and command["user_id"] == ["U0BOB"]
    click = json.loads(parse_qs(seen[5].content.decode())["payload"][0])
    assert click["type"] == "block_actions" and click["user"]["id"] == "U0BOB"
    assert click["actions"][0]["value"] == "v1" and click["actions"][0]["block_id"] == "b"
    assert click["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": "C0GENERAL",
        "is_ephemeral": False,
    }
    # The command's acknowledgement is shown only to whoever ran it.
    assert [(e["user"], e["text"]) for e in console.backend.ephemerals] == [("U0BOB", "help text")]


async def test_a_click_names_a_position_and_the_action_comes_from_the_server():
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as http:
        console = Console(
            SlackBackend(token="xoxb-t"), deliver.Deliverer("http://lucy/slack/events", SECRET, http)
        )
        try:
            await console.click("U0BOB", "message", block=0, element="0", channel="C0GENERAL", ts="1.0")
        except ValueError as exc:
            assert "no such message" in str(exc)
        else:
            raise AssertionError("a click on nothing was delivered")


def test_the_web_api_answers_with_slacks_envelopes():
    backend = SlackBackend(token="xoxb-t")
    assert backend.call("chat.postMessage", {"channel": "C1", "text": "x"}, "xoxb-wrong")[1] == {
        "ok": False,
        "error": "invalid_auth",
    }
    assert backend.call("nope.method", {}, "xoxb-t")[1] == {"ok": False, "error": "unknown_method"}
    backend.fail("chat.postMessage", status=429, retry_after=3)
    assert backend.call("chat.postMessage", {"channel": "C1", "text": "x"}, "xoxb-t") == (
        429,
        {"ok": False, "error": "ratelimited"},
        {"Retry-After": "3"},
    )
    status, body, _ = backend.call("chat.postMessage", {"channel": "C1", "text": "x"}, "xoxb-t")
    assert status == 200 and body["ok"] and body["message"]["text"] == "x"
