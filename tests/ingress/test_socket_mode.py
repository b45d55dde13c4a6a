"""Socket Mode uses the same Bolt listeners as HTTP mode: an envelope becomes the same task."""

from __future__ import annotations

import asyncio

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from sqlalchemy.ext.asyncio import AsyncEngine

from app.ingress.app import IngressDeps, build_bolt_app
from lucy.contracts.ids import task_workflow_id
from tests.conftest import Lucy, dm_event, mention_event, new_team
from tests.fakes.slack import FakeSlack


async def test_mention_over_socket_mode_is_answered(lucy: Lucy, fake_slack: FakeSlack, engine: AsyncEngine):
    async def client():
        return lucy.client

    # Socket Mode needs no signing secret: only the bot token and the app-level token.
    settings = lucy.settings.model_copy(
        update={"slack": lucy.settings.slack.model_copy(update={"slack_signing_secret": None})}
    )
    assert build_bolt_app(IngressDeps(settings=settings, engine=engine, temporal=client)) is None
    bolt = build_bolt_app(IngressDeps(settings=settings, engine=engine, temporal=client), socket_mode=True)
    assert bolt is not None
    handler = AsyncSocketModeHandler(bolt, fake_slack.app_token)
    await handler.connect_async()
    try:
        await fake_slack.wait_for_socket()
        team = new_team()
        event = mention_event(team=team, text="over the socket")
        ack = await fake_slack.send_envelope(event)
        ev = event["event"]
        workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
        # The ack came after the start: the workflow already exists.
        assert ack["envelope_id"].startswith("env-")
        await lucy.client.get_workflow_handle(workflow_id).describe()
        await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 30)
        posts = fake_slack.posted(ev["channel"])
        assert [p["text"] for p in posts] == ["You asked: over the socket"]
        # A redelivery over the socket is acked and starts nothing new.
        await fake_slack.send_envelope(event)
        await asyncio.sleep(0.3)
        assert len(fake_slack.posted(ev["channel"])) == 1
        # Slash commands use the same listener as over HTTP; the ephemeral reply rides on the ack.
        command = {
            "team_id": team,
            "channel_id": "C0GENERAL",
            "user_id": "U0ALICE",
            "command": "/lucy",
            "text": "help",
            "trigger_id": "1.2.3",
            "response_url": "https://hooks.slack.invalid/1",
        }
        ack = await fake_slack.send_envelope(command, kind="slash_commands")
        assert ack["payload"]["response_type"] == "ephemeral"
        assert "/lucy <request>" in ack["payload"]["text"]
        # A DM and opening App Home behave as over HTTP.
        dm = dm_event(team=team, text="dm over the socket")
        await fake_slack.send_envelope(dm)
        await asyncio.wait_for(
            lucy.client.get_workflow_handle(task_workflow_id(team, "D0ALICE", dm["event"]["ts"])).result(), 30
        )
        assert fake_slack.posted("D0ALICE")[-1]["text"] == "You asked: dm over the socket"
        home = {
            "team_id": team,
            "type": "event_callback",
            "event_id": "EvHOMESOCK",
            "event": {"type": "app_home_opened", "user": "U0ALICE", "channel": "D0ALICE", "tab": "home"},
        }
        await fake_slack.send_envelope(home)
        for _ in range(50):
            if "U0ALICE" in fake_slack.views:
                break
            await asyncio.sleep(0.05)
        assert "over the socket" in str(fake_slack.views["U0ALICE"])
    finally:
        await handler.close_async()


async def test_socket_mode_http_side_serves_no_events(engine: AsyncEngine, settings):
    import httpx

    from app.ingress.app import create_app

    async def client():
        raise AssertionError("not needed")

    app = create_app(IngressDeps(settings=settings, engine=engine, temporal=client), serve_events=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
        assert (await http.get("/health")).status_code == 200
        assert (await http.post("/slack/events", json={"type": "event_callback"})).status_code == 404


async def test_buttons_and_assistant_threads_over_socket_mode(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm, fake_gateway, engine: AsyncEngine
):
    """Approve, a refused click and Cancel, and an assistant thread, all through envelopes:
    the same listeners as over HTTP."""
    from tests.conftest import block_actions_payload

    async def client():
        return lucy.client

    settings = lucy.settings.model_copy(
        update={"slack": lucy.settings.slack.model_copy(update={"slack_signing_secret": None})}
    )
    bolt = build_bolt_app(IngressDeps(settings=settings, engine=engine, temporal=client), socket_mode=True)
    assert bolt is not None
    handler = AsyncSocketModeHandler(bolt, fake_slack.app_token)
    await handler.connect_async()
    try:
        await fake_slack.wait_for_socket()
        team = new_team()
        fake_llm.then(tool_calls=[("exec", '{"command": "uptime"}')])
        fake_llm.then(content="Up 3 days.")
        event = mention_event(team=team, text="how long has the box been up?")
        await fake_slack.send_envelope(event)
        ev = event["event"]
        handle = lucy.client.get_workflow_handle(task_workflow_id(team, ev["channel"], ev["ts"]))

        async def approval_message() -> dict:
            for _ in range(200):
                for m in fake_slack.posted(ev["channel"]):
                    if "lucy_approve" in str(m.get("blocks")):
                        return dict(m)
                await asyncio.sleep(0.05)
            raise AssertionError("no approval message")

        message = await approval_message()
        ack = await fake_slack.send_envelope(
            block_actions_payload(message, "lucy_approve", team=team, user="U0MALLORY"), kind="interactive"
        )
        assert ack["envelope_id"].startswith("env-")
        for _ in range(100):
            if any(e["user"] == "U0MALLORY" for e in fake_slack.ephemerals):
                break
            await asyncio.sleep(0.05)
        assert "You can't decide this one" in next(
            e["text"] for e in fake_slack.ephemerals if e["user"] == "U0MALLORY"
        )
        await fake_slack.send_envelope(
            block_actions_payload(message, "lucy_approve", team=team, user="UADMIN3"), kind="interactive"
        )
        result = await asyncio.wait_for(handle.result(), 30)
        assert result["status"] == "completed"
        assert fake_gateway.commands() == ["uptime"]

        # Cancel, over the socket, on the next task's progress message.
        fake_llm.then(tool_calls=[("exec", '{"command": "sleep 999"}')])
        second = mention_event(team=team, text="wait forever")
        await fake_slack.send_envelope(second)
        ev2 = second["event"]
        handle2 = lucy.client.get_workflow_handle(task_workflow_id(team, ev2["channel"], ev2["ts"]))
        progress = None
        for _ in range(200):
            progress = next(
                (
                    m
                    for m in fake_slack.posted(ev2["channel"])
                    if m.get("thread_ts") == ev2["ts"] and "lucy_cancel" in str(m.get("blocks"))
                ),
                None,
            )
            if progress:
                break
            await asyncio.sleep(0.05)
        assert progress is not None
        await fake_slack.send_envelope(
            block_actions_payload(dict(progress), "lucy_cancel", team=team, user="U0ALICE"),
            kind="interactive",
        )
        result = await asyncio.wait_for(handle2.result(), 30)
        assert result["status"] == "cancelled"

        # An assistant thread: suggested prompts when it opens.
        started = {
            "team_id": team,
            "type": "event_callback",
            "event_id": "EvASSISTSOCK",
            "event": {
                "type": "assistant_thread_started",
                "assistant_thread": {
                    "user_id": "U0ALICE",
                    "channel_id": "D0ALICE",
                    "thread_ts": "1795300001.000100",
                },
            },
        }
        await fake_slack.send_envelope(started)
        for _ in range(100):
            if fake_slack.calls_to("assistant.threads.setSuggestedPrompts"):
                break
            await asyncio.sleep(0.05)
        (prompts,) = fake_slack.calls_to("assistant.threads.setSuggestedPrompts")
        assert prompts.params["thread_ts"] == "1795300001.000100"
    finally:
        await handler.close_async()
