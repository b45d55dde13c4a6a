"""``lucy dev``: everything on one machine (embedded PostgreSQL with migrations, the Temporal dev
server and UI, a worker and the HTTP ingress), in one process that Ctrl-C stops. A composition
root, like :mod:`app.cli` and :mod:`app.worker`."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import dev_ports
from app.serving import fail, payload_keyring_or_exit, run_until_signal, serve_http, settings_or_exit
from lucy.db import admin
from lucy.logging import get_logger
from lucy.settings import Settings

if TYPE_CHECKING:
    from temporalio.client import Client

    from app.devservers import LocalPostgres

log = get_logger("lucy")
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def what_is_missing(settings: Settings) -> list[str]:
    lines = []
    missing_slack = settings.slack.missing_for_events()
    if missing_slack:
        lines.append(
            f"Slack is not connected: set {', '.join(missing_slack)} (see README 'Connect a Slack workspace')"
        )
    if settings.llm.openrouter_api_key is None:
        lines.append(
            "No model is connected: set LUCY_OPENROUTER_API_KEY "
            "(and LUCY_OPENROUTER_BASE_URL for another OpenAI-compatible endpoint)"
        )
    return lines


def console_overrides(settings: Settings, port: int) -> tuple[dict[str, Any], list[str]]:
    """Settings that point Lucy at the local Slack console on the ingress (a fresh signing secret
    and bot token per run), and at the demo model and gateway where no real one is configured;
    with the labels the banner and the console show."""
    import secrets

    from app.devtools.console.demo import DEMO_GATEWAY_KEY, DEMO_MODEL_KEY

    base = f"http://127.0.0.1:{port}/console"
    overrides: dict[str, Any] = {
        "slack_api_url": f"{base}/api/",
        "slack_bot_token": f"xoxb-console-{secrets.token_hex(12)}",
        "slack_signing_secret": secrets.token_hex(24),
    }
    labels = ["Slack: the local console (no workspace is connected)"]
    if settings.llm.openrouter_api_key is None:
        overrides.update(openrouter_base_url=f"{base}/demo/llm/v1", openrouter_api_key=DEMO_MODEL_KEY)
        labels.append(
            "Model: the built-in DEMO model (scripted answers; set LUCY_OPENROUTER_API_KEY for a real one)"
        )
    if settings.tools.openclaw_api_key is None:
        overrides.update(openclaw_base_url=f"{base}/demo/gateway", openclaw_api_key=DEMO_GATEWAY_KEY)
        labels.append(
            "Gateway: the DEMO gateway (never executes anything; set LUCY_OPENCLAW_API_KEY for a real one)"
        )
    return overrides, labels


def mount_console(app: Any, settings: Settings, port: int, labels: list[str]) -> Any:
    """The console (and the demo model and gateway) on the ingress app; refuses outside
    development. Returns the console's HTTP client, to close at the end."""
    import httpx

    from app.devtools.console.backend import SlackBackend
    from app.devtools.console.deliver import Deliverer
    from app.devtools.console.demo import demo_router
    from app.devtools.console.web import console_router
    from app.devtools.console.workspace import Console

    token, secret = settings.slack.slack_bot_token, settings.slack.slack_signing_secret
    assert token is not None and secret is not None
    backend = SlackBackend(
        token=token.get_secret_value(),
        public_url=f"http://127.0.0.1:{port}/console/",
        real_time=True,
        journal=False,  # a long session keeps its messages, not every call
    )
    http = httpx.AsyncClient()
    deliverer = Deliverer(
        events_url=f"http://127.0.0.1:{port}/slack/events",
        signing_secret=secret.get_secret_value(),
        http=http,
    )
    app.include_router(console_router(Console(backend, deliverer), env=settings.core.env, labels=labels))
    app.include_router(demo_router())
    return http


def listen_host(host: str, *, console: bool) -> str:
    """Where the dev ingress listens: ``host``, but the console (which lets whoever reaches it act
    as anyone) only ever on this machine."""
    if console and host not in LOOPBACK:
        fail(
            f"--host {host}: the local Slack console is served on this machine only; connect a Slack "
            "workspace (LUCY_SLACK_SIGNING_SECRET, LUCY_SLACK_BOT_TOKEN) to listen elsewhere"
        )
    return host


async def run_dev(
    settings: Settings, *, port: int, pg_port: int, console: bool = False, host: str = dev_ports.HOST
) -> None:
    from app.devservers import DevServerError

    t0 = time.perf_counter()
    use_console = console or bool(settings.slack.missing_for_events())
    console_settings, labels = _console_settings(settings, port) if use_console else ({}, [])
    host = listen_host(host, console=use_console)
    data_dir = settings.core.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    _refuse_ports_in_use(port)
    pg = await _start_postgres(data_dir, pg_port)
    stack = contextlib.AsyncExitStack()
    try:
        settings = await _prepare_database(pg, console_settings)
        client = await _start_temporal(settings, data_dir, port, stack)
        ready = _Ready(pg, port, host, t0, labels if use_console else None)
        await _serve(settings, client, stack, ready)
    except DevServerError as exc:
        fail(str(exc))
    finally:
        print("lucy dev: stopping…", file=sys.stderr)
        await stack.aclose()
        await asyncio.to_thread(pg.stop)
        print("lucy dev: stopped", file=sys.stderr)


@dataclass(frozen=True)
class _Ready:
    """What the dev ingress serves on and the banner says once it runs."""

    pg: LocalPostgres
    port: int
    host: str
    t0: float
    console: list[str] | None  # the console's labels, None without it


def _console_settings(settings: Settings, port: int) -> tuple[dict[str, Any], list[str]]:
    """The console's settings and labels; exits outside development."""
    from app.devtools.console.web import ConsoleRefused, refuse_outside_development

    try:
        refuse_outside_development(settings.core.env)
    except ConsoleRefused as exc:
        fail(str(exc))
    return console_overrides(settings, port)


def _refuse_ports_in_use(port: int) -> None:
    from app.devservers import port_in_use

    for p, what in ((dev_ports.TEMPORAL, "Temporal"), (dev_ports.UI, "Temporal UI"), (port, "ingress")):
        if port_in_use(p):
            fail(f"port {p} ({what}) is already in use; is another `lucy dev` or Temporal running?")


async def _start_postgres(data_dir: Path, pg_port: int) -> LocalPostgres:
    from app.devservers import DevServerError, LocalPostgres

    try:
        pg = LocalPostgres(data_dir / "postgres", port=pg_port)
    except DevServerError as exc:
        fail(str(exc))
    log.info("starting PostgreSQL", data_dir=str(pg.data_dir), port=pg_port)
    try:
        await asyncio.to_thread(pg.start)
    except DevServerError as exc:
        fail(str(exc))
    return pg


async def _prepare_database(pg: LocalPostgres, console_settings: dict[str, Any]) -> Settings:
    """Migrate, settle the settings on the local database, create the coming partitions."""
    from lucy import migrate

    await asyncio.to_thread(migrate.upgrade, pg.url)
    settings = settings_or_exit(database_url=pg.app_url, database_migration_url=pg.url, **console_settings)
    await admin.run(settings, "partitions", 3)
    return settings


async def _start_temporal(
    settings: Settings, data_dir: Path, port: int, stack: contextlib.AsyncExitStack
) -> Client:
    """The Temporal dev server (stopped by ``stack``) and a client connected to it."""
    from temporalio.client import Client

    from app.devservers import LocalTemporal
    from lucy.codec import data_converter
    from lucy.contracts.ids import SEARCH_ATTRIBUTES
    from lucy.tracing import temporal_interceptors

    log.info("starting Temporal dev server", db=str(data_dir / "temporal.db"))
    temporal = LocalTemporal(
        data_dir / "temporal.db",
        port=dev_ports.TEMPORAL,
        ui_port=dev_ports.UI,
        namespace=settings.temporal.temporal_namespace,
        search_attributes=[k.name for k in SEARCH_ATTRIBUTES],
        # With encrypted payloads, the UI decodes them through the ingress's codec endpoint.
        ui_codec_endpoint=f"http://localhost:{port}/codec"
        if settings.temporal.temporal_encrypt_payloads
        else None,
    )
    stack.callback(temporal.stop)
    temporal.start()
    await temporal.wait_ready()
    return await Client.connect(
        temporal.address,
        namespace=settings.temporal.temporal_namespace,
        data_converter=data_converter(payload_keyring_or_exit(settings)),
        interceptors=temporal_interceptors(),  # tracing, when OTEL_* turned it on
    )


async def _serve(settings: Settings, client: Client, stack: contextlib.AsyncExitStack, ready: _Ready) -> None:
    """The worker and the ingress (with the console when asked), until a signal."""
    from app.ingress.app import IngressDeps, create_app
    from app.worker import lucy_worker
    from lucy.db.session import create_engine

    engine = create_engine(settings.database)
    stack.push_async_callback(engine.dispose)

    async def get_client() -> Client:
        return client

    deps = IngressDeps(settings=settings, engine=engine, temporal=get_client)
    async with lucy_worker(settings, client, engine=engine):
        from capabilities.memory.upkeep_schedule import ensure_memory_upkeep_schedule
        from capabilities.proactive.maintenance_schedule import (
            ensure_maintenance_schedule,
            ensure_patterns_schedule,
        )

        await ensure_maintenance_schedule(client, settings.temporal.temporal_task_queue, run_now=True)
        await ensure_memory_upkeep_schedule(client, settings.temporal.temporal_task_queue)
        await ensure_patterns_schedule(client, settings.temporal.temporal_task_queue)
        app = create_app(deps)
        if ready.console is not None:
            stack.push_async_callback(mount_console(app, settings, ready.port, ready.console).aclose)
        _print_banner(settings, ready.pg, ready.port, time.perf_counter() - ready.t0, ready.console)
        await run_until_signal(serve_http(app, ready.port, host=ready.host))


def _print_banner(settings: Settings, pg: Any, port: int, seconds: float, console: list[str] | None) -> None:
    print(banner(settings, pg, port, seconds, console=console), file=sys.stderr, flush=True)


def banner(
    settings: Settings, pg: Any, port: int, seconds: float, *, console: list[str] | None = None
) -> str:
    """What ``lucy dev`` says once everything runs: where each part is, what is shared, what is
    missing (never a secret)."""
    lines = [
        "",
        f"Lucy is running (ready in {seconds:.1f}s). Ctrl-C stops everything.",
        f"  Ingress        http://localhost:{port}  (Slack events: POST /slack/events, health: GET /health)",
        f"  Temporal UI    http://localhost:{dev_ports.UI}",
        f"  Temporal       localhost:{dev_ports.TEMPORAL}  namespace {settings.temporal.temporal_namespace}, "
        f"task queue {settings.temporal.temporal_task_queue}",
        f"  PostgreSQL     postgresql://{pg.APP_USER}:***@127.0.0.1:{pg.port}/{pg.database} "
        f" (owner {pg.user})",
        f"  Data           {settings.core.data_dir.resolve()}",
    ]
    if console is not None:
        lines[2:2] = [
            f"  Console        http://localhost:{port}/console  (open it in a browser: a local Slack)"
        ]
        lines.extend(f"  * {label}" for label in console)
    if settings.tools.openclaw_api_key is not None and not settings.tools.openclaw_base_url.endswith(
        "/demo/gateway"
    ):
        lines.append(
            f"  Gateway        {settings.tools.openclaw_base_url}  (shared: every workspace and user runs "
            "exec, files and web_fetch there as one account)"
        )
    for missing in what_is_missing(settings):
        lines.append(f"  ! {missing}")
    return "\n".join(lines) + "\n"
