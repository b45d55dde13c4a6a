"""Listener mode end to end: AgentMail's WebSocket API (a fake server speaking its protocol) read
through the official SDK, handed to the same handler as ``POST /webhooks/agentmail``, the task
on the real Temporal worker, deliveries in the real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from app.devservers import LocalPostgres, free_port
from app.devtools.console.channels import DEFAULT_CHANNELS
from app.ingress.app import IngressDeps, create_app
from capabilities.email.listeners.websocket import run_email_listener
from capabilities.email.repository import bound_inboxes
from lucy.contracts.ids import email_workflow_id
from lucy.settings import Settings
from tests.conftest import Lucy, eventually, fake_settings, new_team
from tests.e2e.test_email import BOB, BOB_USER
from tests.fakes.agentmail import WEBHOOK_SECRET, FakeAgentMail, message_received, svix_headers
from tests.fakes.agentmail_socket import FakeAgentMailSocket
from tests.fakes.camofox import FakeCamoFox
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack

TALK = "C0TALKTOLUCY"


@pytest.fixture(scope="module")
async def fake_mail() -> AsyncIterator[FakeAgentMail]:
    """AgentMail's HTTP API (replies) and its WebSocket API (listener) on one local port."""
    server = FakeAgentMail(socket=FakeAgentMailSocket())
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def fake_socket(fake_mail: FakeAgentMail) -> FakeAgentMailSocket:
    assert fake_mail.socket is not None
    return fake_mail.socket


@pytest.fixture
def settings(
    postgres: LocalPostgres,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
    fake_gateway: FakeGateway,
    fake_camofox: FakeCamoFox,
    fake_mail: FakeAgentMail,
) -> Settings:
    return fake_settings(
        postgres,
        fake_slack,
        fake_llm,
        fake_gateway,
        fake_camofox,
        agentmail_webhook_secret=WEBHOOK_SECRET,
        agentmail_api_key=fake_mail.api_key,
        agentmail_base_url=fake_mail.base_url,
    )


@pytest.fixture(autouse=True)
def _channels(fake_slack: FakeSlack) -> Iterator[None]:
    fake_slack.channels.update({TALK: "talk-to-lucy"})
    fake_slack.users[BOB] = dict(BOB_USER)  # the mail's sender, a member found by address
    yield
    fake_slack.channels = dict(DEFAULT_CHANNELS)
    fake_slack.users.pop(BOB, None)


async def _bind(engine: AsyncEngine) -> tuple[str, str]:
    """A workspace whose AgentMail inbox is bound (as ``/lucy email connect`` does)."""
    team = new_team()
    inbox = f"{team.lower()}@agentmail.to"
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO workspaces (slack_team_id, name, settings) VALUES (:t, 'Acme', CAST(:s AS jsonb))"
            ),
            {"t": team, "s": json.dumps({"email_inbox": inbox.upper()})},
        )
    return team, inbox


@contextlib.asynccontextmanager
async def _listening(lucy: Lucy, engine: AsyncEngine, fake: FakeAgentMailSocket) -> AsyncIterator[None]:
    """``lucy email-listener``'s wiring: the ingress app's email handler, the listener task."""

    async def get_client() -> Client:
        return lucy.client

    deps = IngressDeps(settings=lucy.settings, engine=engine, temporal=get_client)
    app = create_app(deps, serve_events=False)
    before = len(fake.subscriptions)
    task = asyncio.create_task(run_email_listener(deps, app.state.email_handler))
    try:
        await eventually(lambda: len(fake.subscriptions) > before and fake.subscribed, "a subscription")
        yield
    finally:
        task.cancel()  # what SIGTERM does through run_until_signal
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled()


async def _deliveries(lucy: Lucy, message_id: str) -> list[Any]:
    async with lucy.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT status, attempt_count FROM webhook_deliveries "
                "WHERE source = 'agentmail' AND external_id = :e"
            ),
            {"e": message_id},
        )
        return list(rows)


def _ids() -> tuple[str, str]:
    return f"thr_{uuid.uuid4().hex}", f"<{uuid.uuid4().hex}@example.com>"


async def test_bound_inboxes_are_listed_without_tenant_data(lucy: Lucy, engine: AsyncEngine):
    _, inbox = await _bind(lucy.engine)
    deps = IngressDeps(settings=lucy.settings, engine=engine, temporal=None)  # type: ignore[arg-type]
    async with deps.sessions.begin() as session:
        listed = await bound_inboxes(session=session)
    assert inbox in listed and listed == sorted(set(listed))


async def test_an_event_over_the_socket_starts_exactly_one_task(
    lucy: Lucy,
    engine: AsyncEngine,
    fake_socket: FakeAgentMailSocket,
    fake_mail: FakeAgentMail,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
):
    team, inbox = await _bind(lucy.engine)
    fake_llm.then(content="Listener answer: the Q3 report is attached.")
    thread, message = _ids()
    async with _listening(lucy, engine, fake_socket):
        subscription = fake_socket.subscriptions[-1]
        assert subscription["type"] == "subscribe" and subscription["event_types"] == ["message.received"]
        assert inbox in subscription["inbox_ids"]  # lower-cased, only bound inboxes
        event = message_received(inbox_id=inbox, thread_id=thread, message_id=message)
        fake_mail.receive(event)
        assert await fake_socket.push(event) == 1
        await fake_socket.push(event)  # the same frame again: nothing new starts
        await eventually(lambda: _done(lucy, message), "the frames handled", timeout=30)
        workflow_id = email_workflow_id(team, thread)
        result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), timeout=60)
        assert result["status"] == "completed"
    announcements = [p for p in fake_slack.posted(TALK) if "thread_ts" not in p]
    assert len(announcements) == 1 and "Q3 report" in announcements[0]["text"]
    answers = [p for p in fake_slack.posted(TALK) if p.get("thread_ts") == announcements[0]["ts"]]
    assert len(answers) == 1 and "Listener answer" in answers[0]["text"]
    assert len(fake_llm.task_requests) == 1
    # Bob is a member: the answer also went back by email, once, in the same thread.
    [reply] = [m for m in fake_mail.replies if m.in_reply_to == message]
    assert reply.thread_id == thread and reply.body["to"] == ["bob@example.com"]
    assert "Listener answer" in reply.body["text"]


async def _done(lucy: Lucy, message: str) -> bool:
    rows = await _deliveries(lucy, message)
    return len(rows) == 1 and rows[0].status == "completed"


async def test_the_same_message_by_webhook_and_socket_starts_one_task(
    lucy: Lucy,
    engine: AsyncEngine,
    fake_socket: FakeAgentMailSocket,
    fake_mail: FakeAgentMail,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
):
    team, inbox = await _bind(lucy.engine)
    fake_llm.then(content="One answer for both copies.")
    thread, message = _ids()
    event = message_received(inbox_id=inbox, thread_id=thread, message_id=message)
    fake_mail.receive(event)
    body = json.dumps(event).encode()
    async with _listening(lucy, engine, fake_socket):
        webhook = await lucy.http.post("/webhooks/agentmail", content=body, headers=svix_headers(body))
        assert webhook.status_code == 200 and webhook.json()["status"] == "started"
        assert await fake_socket.push(event) == 1
        workflow_id = email_workflow_id(team, thread)
        await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), timeout=60)
        await asyncio.sleep(0.5)  # the socket's copy has been read and handled by now
    rows = await _deliveries(lucy, message)
    assert [(r.status, r.attempt_count) for r in rows] == [("completed", 1)]
    assert len([p for p in fake_slack.posted(TALK) if "thread_ts" not in p]) == 1
    assert len(fake_llm.task_requests) == 1


async def test_a_dropped_connection_reconnects_and_mail_still_arrives(
    lucy: Lucy,
    engine: AsyncEngine,
    fake_socket: FakeAgentMailSocket,
    fake_mail: FakeAgentMail,
    fake_llm: FakeLlm,
):
    team, inbox = await _bind(lucy.engine)
    fake_llm.then(content="Arrived after the reconnect.")
    thread, message = _ids()
    event = message_received(inbox_id=inbox, thread_id=thread, message_id=message)
    fake_mail.receive(event)
    async with _listening(lucy, engine, fake_socket):
        handshakes = fake_socket.handshakes
        await fake_socket.drop()
        await eventually(
            lambda: fake_socket.handshakes > handshakes and fake_socket.subscribed, "a new subscription"
        )
        assert await fake_socket.push(event)
        await eventually(lambda: _done(lucy, message), "the mail handled", timeout=30)
        workflow_id = email_workflow_id(team, thread)
        result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), timeout=60)
        assert result["status"] == "completed"
    assert [r.status for r in await _deliveries(lucy, message)] == ["completed"]


@pytest.mark.parametrize("argv", [["email-listener"], ["ingress", "--socket"]])
async def test_the_commands_subscribe_and_stop_cleanly_on_sigterm(
    argv: list[str],
    lucy: Lucy,
    postgres: LocalPostgres,
    fake_slack: FakeSlack,
    fake_socket: FakeAgentMailSocket,
    tmp_path: Path,
):
    """``lucy email-listener`` and ``lucy ingress --socket`` as processes: they subscribe to the
    bound inboxes and end with status 0 on SIGTERM."""
    await _bind(lucy.engine)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(Path(__file__).parents[2]),
        "LUCY_ENV": "test",
        "LUCY_DATABASE_URL": postgres.app_url,
        "LUCY_TEMPORAL_ADDRESS": lucy.client.service_client.config.target_host,
        "LUCY_AGENTMAIL_API_KEY": fake_socket.api_key,
        "LUCY_AGENTMAIL_BASE_URL": fake_socket.base_url,
        "LUCY_AGENTMAIL_ENABLED": "true",
        "LUCY_SLACK_BOT_TOKEN": fake_slack.token,
        "LUCY_SLACK_APP_TOKEN": fake_slack.app_token,
        "LUCY_SLACK_API_URL": fake_slack.api_url,
    }
    if argv[0] == "ingress":
        argv = [*argv, "--port", str(free_port())]
    before = len(fake_socket.subscriptions)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *argv,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await eventually(lambda: len(fake_socket.subscriptions) > before, "the process to subscribe", 60)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, (out + err).decode()[-2000:]
    assert b"Traceback" not in err and b"email listener subscribed" in out + err
    await eventually(lambda: fake_socket.subscribed == 0, "the connection closed")
