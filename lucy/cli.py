"""The ``lucy`` command: dev, worker, ingress, db. A composition root: it wires the packages."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from lucy.logging import configure_logging, get_logger
from lucy.settings import Settings, SettingsError, load_settings

log = get_logger("lucy")

DEV_POSTGRES_PORT = 55432
DEV_TEMPORAL_PORT = 7233
DEV_UI_PORT = 8233
DEFAULT_INGRESS_PORT = 3000


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        print(f"lucy: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _fail(message: str) -> None:
    print(f"lucy: {message}", file=sys.stderr)
    raise SystemExit(1)


def _what_is_missing(settings: Settings) -> list[str]:
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


# --------------------------------------------------------------------------- serving helpers


async def _serve_http(app: Any, port: int, host: str = "0.0.0.0") -> None:
    """Serve ``app`` until cancelled; on cancel, uvicorn shuts down gracefully (lifespan included)."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # lucy owns SIGINT/SIGTERM
    serving = asyncio.create_task(server.serve())
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, timeout=10)
        raise
    if server.started is False and serving.done():
        raise SystemExit(f"lucy: could not serve HTTP on port {port}")


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _run_until_signal(*coros: Any) -> None:
    """Run ``coros`` until SIGINT/SIGTERM or until one of them ends (then re-raise its error)."""
    tasks = [asyncio.create_task(c) for c in coros]
    waiter = asyncio.create_task(_until_signalled())
    done, _ = await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
    for t in [*tasks, waiter]:
        t.cancel()
    await asyncio.gather(*tasks, waiter, return_exceptions=True)
    for t in done:
        if t is not waiter and not t.cancelled() and t.exception() is not None:
            raise t.exception()  # type: ignore[misc]


@contextlib.asynccontextmanager
async def _ingress_deps(settings: Settings) -> AsyncIterator[Any]:
    from ingress.app import IngressDeps, lazy_temporal
    from lucy.db.session import create_engine
    from lucy.temporal import connect

    engine = create_engine(settings.database)
    try:
        yield IngressDeps(
            settings=settings,
            engine=engine,
            temporal=lazy_temporal(
                lambda: connect(
                    settings.temporal,
                    keyring=_payload_keyring(settings),
                    strict=settings.core.env == "production",
                )
            ),
        )
    finally:
        await engine.dispose()


def _payload_keyring(settings: Settings) -> Any:
    """The payload key ring, or a clean exit naming the problem (never a key)."""
    from lucy.codec import payload_keyring
    from lucy.crypto import CryptoError

    try:
        return payload_keyring(settings)
    except CryptoError as exc:
        _fail(f"LUCY_TEMPORAL_ENCRYPT_PAYLOADS is on, but {exc}")


# --------------------------------------------------------------------------- commands


async def _refuse_insecure(settings: Settings, *, role: str, http_ingress: bool = False) -> None:
    """In production, stop with one line per insecure setting (see :mod:`lucy.production`)."""
    if settings.core.env != "production":
        return
    from lucy.db.session import create_engine
    from lucy.production import refuse_insecure

    engine = create_engine(settings.database, pool_size=1, max_overflow=0)
    try:
        problems = await refuse_insecure(settings, engine, role=role, http_ingress=http_ingress)
    finally:
        await engine.dispose()
    if problems:
        for line in problems:
            print(f"lucy: refusing to start in production: {line}", file=sys.stderr)
        raise SystemExit(2)


async def _cmd_worker(settings: Settings) -> None:
    from lucy.temporal import connect
    from lucy.worker import run_worker

    await _refuse_insecure(settings, role="worker")
    try:
        client = await connect(
            settings.temporal, keyring=_payload_keyring(settings), strict=settings.core.env == "production"
        )
    except Exception as exc:
        _fail(f"cannot reach Temporal at {settings.temporal.temporal_address} ({exc.__class__.__name__})")
        return
    await _run_until_signal(run_worker(settings, client))


async def _cmd_ingress(settings: Settings, *, socket: bool, port: int) -> None:
    from ingress.app import build_bolt_app, create_app

    await _refuse_insecure(settings, role="ingress", http_ingress=not socket)
    async with _ingress_deps(settings) as deps:
        if not socket:
            await _run_until_signal(_serve_http(create_app(deps), port))
            return
        if settings.slack.slack_app_token is None:
            _fail("configuration error: LUCY_SLACK_APP_TOKEN: required for Socket Mode (an xapp- token)")
        bolt = build_bolt_app(deps, socket_mode=True)
        if bolt is None:
            _fail("configuration error: LUCY_SLACK_BOT_TOKEN: required (an xoxb- token)")
        assert bolt is not None and settings.slack.slack_app_token is not None
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        handler = AsyncSocketModeHandler(bolt, settings.slack.slack_app_token.get_secret_value())
        await handler.connect_async()
        log.info("socket mode connected; health on HTTP", port=port)
        try:
            # Health and metrics only: events arrive over the socket, never unsigned over HTTP.
            await _run_until_signal(_serve_http(create_app(deps, serve_events=False), port))
        finally:
            await handler.close_async()


async def _cmd_dev(settings: Settings, *, port: int, pg_port: int) -> None:
    from temporalio.client import Client

    from ingress.app import IngressDeps, create_app
    from lucy import migrate
    from lucy.codec import data_converter
    from lucy.contracts import SEARCH_ATTRIBUTES
    from lucy.db.session import create_engine
    from lucy.devservers import DevServerError, LocalPostgres, LocalTemporal, port_in_use
    from lucy.worker import lucy_worker

    t0 = time.perf_counter()
    data_dir = settings.core.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    for p, what in ((DEV_TEMPORAL_PORT, "Temporal"), (DEV_UI_PORT, "Temporal UI"), (port, "ingress")):
        if port_in_use(p):
            _fail(f"port {p} ({what}) is already in use; is another `lucy dev` or Temporal running?")
    try:
        pg = LocalPostgres(data_dir / "postgres", port=pg_port)
    except DevServerError as exc:
        _fail(str(exc))
        return
    log.info("starting PostgreSQL", data_dir=str(pg.data_dir), port=pg_port)
    try:
        await asyncio.to_thread(pg.start)
    except DevServerError as exc:
        _fail(str(exc))
    stack = contextlib.AsyncExitStack()
    try:
        await asyncio.to_thread(migrate.upgrade, pg.url)
        settings = _settings(database_url=pg.app_url, database_migration_url=pg.url)
        await _db_maintenance(settings, "partitions", 3)
        log.info("starting Temporal dev server", db=str(data_dir / "temporal.db"))
        temporal = LocalTemporal(
            data_dir / "temporal.db",
            port=DEV_TEMPORAL_PORT,
            ui_port=DEV_UI_PORT,
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
        client = await Client.connect(
            temporal.address,
            namespace=settings.temporal.temporal_namespace,
            data_converter=data_converter(_payload_keyring(settings)),
        )
        engine = create_engine(settings.database)
        stack.push_async_callback(engine.dispose)

        async def get_client() -> Client:
            return client

        deps = IngressDeps(settings=settings, engine=engine, temporal=get_client)
        async with lucy_worker(settings, client, engine=engine):
            from lucy.schedules import ensure_maintenance_schedule

            await ensure_maintenance_schedule(client, settings.temporal.temporal_task_queue)
            _print_banner(settings, pg, port, time.perf_counter() - t0)
            await _run_until_signal(_serve_http(create_app(deps), port))
    except DevServerError as exc:
        _fail(str(exc))
    finally:
        print("lucy dev: stopping…", file=sys.stderr)
        await stack.aclose()
        await asyncio.to_thread(pg.stop)
        print("lucy dev: stopped", file=sys.stderr)


def _print_banner(settings: Settings, pg: Any, port: int, seconds: float) -> None:
    lines = [
        "",
        f"Lucy is running (ready in {seconds:.1f}s). Ctrl-C stops everything.",
        f"  Ingress        http://localhost:{port}  (Slack events: POST /slack/events, health: GET /health)",
        f"  Temporal UI    http://localhost:{DEV_UI_PORT}",
        f"  Temporal       localhost:{DEV_TEMPORAL_PORT}  namespace {settings.temporal.temporal_namespace}, "
        f"task queue {settings.temporal.temporal_task_queue}",
        f"  PostgreSQL     postgresql://{pg.APP_USER}:***@127.0.0.1:{pg.port}/{pg.database} "
        f" (owner {pg.user})",
        f"  Data           {settings.core.data_dir.resolve()}",
    ]
    if settings.tools.openclaw_api_key is not None:
        lines.append(
            f"  Gateway        {settings.tools.openclaw_base_url}  (shared: every workspace and user runs "
            "exec, files and web_fetch there as one account)"
        )
    for missing in _what_is_missing(settings):
        lines.append(f"  ! {missing}")
    print("\n".join(lines) + "\n", file=sys.stderr, flush=True)


async def _db_maintenance(settings: Settings, action: str, months_ahead: int) -> str:
    """Partition maintenance and key rotation, as the schema owner."""
    from datetime import UTC, datetime

    from lucy.crypto import KeyRing
    from lucy.db import partitions
    from lucy.db import repositories as repo
    from lucy.db.session import create_engine, create_sessionmaker

    engine = create_engine(
        settings.database, url=settings.database.migration_url, pool_size=1, max_overflow=0
    )
    try:
        if action == "partitions":
            async with engine.begin() as conn:
                report = await partitions.maintain(
                    conn,
                    today=datetime.now(UTC).date(),
                    retention_months=settings.database.database_retention_months,
                    months_ahead=months_ahead,
                )
            drained = ", ".join(f"{n} from {t}_default" for t, n in report.drained.items())
            return (
                f"partitions created: {', '.join(report.created) or 'none'}; "
                f"dropped: {', '.join(report.dropped) or 'none'}"
                + (f"; rows moved: {drained}" if drained else "")
            )
        keys = settings.security.encryption_keys
        keyring = KeyRing.parse(keys.get_secret_value() if keys else None)
        sessions = create_sessionmaker(engine)
        async with sessions.begin() as session:
            workspace_ids = await repo.list_workspace_ids(session=session)
        total = 0
        for workspace_id in workspace_ids:
            async with sessions.begin() as session:
                await repo.set_tenant(session=session, workspace_id=workspace_id)
                total += await repo.rotate_credentials(
                    session=session, workspace_id=workspace_id, keyring=keyring
                )
        return f"re-encrypted {total} credential(s) with key {keyring.primary_id!r}"
    finally:
        await engine.dispose()


def _cmd_db(settings: Settings, action: str, revision: str | None, months_ahead: int = 3) -> None:
    from lucy import migrate
    from lucy.crypto import CryptoError, KeyRing

    url = settings.database.migration_url
    try:
        if action == "upgrade":
            migrate.upgrade(url, revision or "head")
            print(f"database upgraded to {revision or 'head'}")
        elif action == "downgrade":
            migrate.downgrade(url, revision or "-1")
            print(f"database downgraded to {revision or '-1'}")
        elif action == "check":
            migrate.check(url)
            waiting = migrate.rows_in_default_partitions(url)
            if waiting:
                rows = ", ".join(f"{n} in {t}_default" for t, n in waiting.items())
                _fail(
                    f"models and migrations agree, but rows wait for their month partition ({rows}): "
                    "is the lucy-maintenance schedule running? `lucy db partitions` moves them now"
                )
            print("models and migrations agree")
        elif action == "current":
            print(migrate.current(url) or "(empty database)")
        elif action == "new-key":
            print(KeyRing.new_key(revision))
        elif action in ("partitions", "rotate-keys"):
            print(asyncio.run(_db_maintenance(settings, action, months_ahead)))
    except migrate.SchemaDriftError as exc:
        _fail(f"models and migrations differ: {exc}")
    except CryptoError as exc:
        _fail(str(exc))
    except (OSError, ConnectionError) as exc:
        _fail(f"cannot reach the database ({exc.__class__.__name__}); check LUCY_DATABASE_MIGRATION_URL")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lucy", description="Lucy: an AI coworker for Slack on Temporal")
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="run everything locally: PostgreSQL, Temporal + UI, worker, ingress")
    dev.add_argument("--port", type=int, default=DEFAULT_INGRESS_PORT, help="ingress port (default 3000)")
    dev.add_argument("--pg-port", type=int, default=DEV_POSTGRES_PORT, help="embedded PostgreSQL port")
    sub.add_parser("worker", help="run a Temporal worker")
    ingress = sub.add_parser("ingress", help="run the Slack ingress")
    mode = ingress.add_mutually_exclusive_group()
    mode.add_argument("--http", action="store_true", help="Events API over HTTP (default)")
    mode.add_argument("--socket", action="store_true", help="Socket Mode (needs LUCY_SLACK_APP_TOKEN)")
    ingress.add_argument("--port", type=int, default=DEFAULT_INGRESS_PORT)
    db = sub.add_parser("db", help="database migrations")
    db.add_argument(
        "action", choices=["upgrade", "downgrade", "check", "current", "partitions", "rotate-keys", "new-key"]
    )
    db.add_argument(
        "revision", nargs="?", default=None, help="revision (upgrade/downgrade) or key id (new-key)"
    )
    db.add_argument("--months-ahead", type=int, default=3, help="partitions: months to create ahead")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = _settings()
    configure_logging(settings.core.log_level)
    if args.command == "db":
        _cmd_db(settings, args.action, args.revision, args.months_ahead)
        return
    with contextlib.suppress(KeyboardInterrupt):
        if args.command == "dev":
            asyncio.run(_cmd_dev(settings, port=args.port, pg_port=args.pg_port))
        elif args.command == "worker":
            asyncio.run(_cmd_worker(settings))
        elif args.command == "ingress":
            asyncio.run(_cmd_ingress(settings, socket=args.socket, port=args.port))


if __name__ == "__main__":  # pragma: no cover
    main()


__all__ = ["build_parser", "main"]
