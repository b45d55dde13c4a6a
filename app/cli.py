"""The ``lucy`` command: dev, worker, ingress, email-listener, db. A composition root: it wires
the packages."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

from app import dev_ports
from app.serving import fail, payload_keyring_or_exit, run_until_signal, serve_http, settings_or_exit
from lucy.contracts.queues import ALL_ROLES, QueueRole, parse_roles
from lucy.logging import configure_logging, get_logger
from lucy.settings import Settings

log = get_logger("lucy")


@contextlib.asynccontextmanager
async def _ingress_deps(settings: Settings) -> AsyncIterator[Any]:
    from app.ingress.app import IngressDeps, lazy_temporal
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
                    keyring=payload_keyring_or_exit(settings),
                    strict=not settings.core.is_development,
                )
            ),
        )
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- commands


async def _refuse_insecure(settings: Settings, *, role: str, http_ingress: bool = False) -> None:
    """Outside development and test, stop with one line per insecure setting (see
    :mod:`lucy.production`)."""
    if settings.core.is_development:
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
            print(f"lucy: refusing to start in {settings.core.env}: {line}", file=sys.stderr)
        raise SystemExit(2)


def roles_or_exit(text: str) -> tuple[QueueRole, ...]:
    """``--queues``' roles, or exit 2 with one line naming the unknown one."""
    try:
        return parse_roles(text)
    except ValueError as exc:
        print(f"lucy: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


async def _cmd_worker(settings: Settings, roles: tuple[QueueRole, ...]) -> None:
    from app.worker import run_worker
    from lucy.temporal import connect, metrics_runtime, serve_worker_metrics

    await _refuse_insecure(settings, role="worker")
    temporal = settings.temporal
    try:
        # The SDK's runtime metrics (task latencies, slots, polls) and Lucy's own (LLM latency).
        host = temporal.worker_metrics_host
        runtime = (
            metrics_runtime(temporal.temporal_metrics_port, host) if temporal.temporal_metrics_port else None
        )
        lucy_metrics = (
            serve_worker_metrics(temporal.worker_metrics_port, host) if temporal.worker_metrics_port else None
        )
    except (OSError, RuntimeError, ValueError) as exc:
        fail(
            f"cannot serve worker metrics ({exc.__class__.__name__}: {exc}); set the port to 0 to turn it off"
        )
        return
    try:
        client = await connect(
            temporal,
            runtime=runtime,
            keyring=payload_keyring_or_exit(settings),
            strict=not settings.core.is_development,
        )
    except Exception as exc:
        fail(f"cannot reach Temporal at {temporal.temporal_address} ({exc.__class__.__name__})")
        return
    log.info(
        "worker metrics served",
        host=temporal.worker_metrics_host,
        temporal_metrics_port=temporal.temporal_metrics_port or None,
        worker_metrics_port=temporal.worker_metrics_port or None,
    )
    try:
        await run_until_signal(run_worker(settings, client, roles))
    finally:
        if lucy_metrics is not None:
            lucy_metrics.shutdown()


async def _cmd_ingress(settings: Settings, *, socket: bool, port: int) -> None:
    from app.ingress.app import build_bolt_app, create_app

    await _refuse_insecure(settings, role="ingress", http_ingress=not socket)
    async with _ingress_deps(settings) as deps:
        if not socket:
            await run_until_signal(serve_http(create_app(deps), port))
            return
        if settings.slack.slack_app_token is None:
            fail("configuration error: LUCY_SLACK_APP_TOKEN: required for Socket Mode (an xapp- token)")
        bolt = build_bolt_app(deps, socket_mode=True)
        if bolt is None:
            fail("configuration error: LUCY_SLACK_BOT_TOKEN: required (an xoxb- token)")
        assert bolt is not None and settings.slack.slack_app_token is not None
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        handler = AsyncSocketModeHandler(bolt, settings.slack.slack_app_token.get_secret_value())
        await handler.connect_async()
        log.info("socket mode connected; health on HTTP", port=port)
        app = create_app(deps, serve_events=False)
        mail = runs_email_listener(settings)
        log.info("email listener", on=mail)
        try:
            # Health and metrics only: events arrive over the socket, never unsigned over HTTP.
            await run_until_signal(
                serve_http(app, port), *([_email_listener(deps, app.state.email_handler)] if mail else [])
            )
        finally:
            await handler.close_async()


def runs_email_listener(settings: Settings) -> bool:
    """Whether ``lucy ingress --socket`` also runs the email listener (no public URL there):
    when ``LUCY_AGENTMAIL_API_KEY`` is set, as ``lucy email-listener`` and ``email.reply``
    need; ``LUCY_AGENTMAIL_ENABLED`` is the ``send_email`` tool's switch, not this one."""
    return settings.tools.agentmail_api_key is not None


def _email_listener(deps: Any, handler: Any) -> Any:
    from capabilities.email.listeners.websocket import run_email_listener

    return run_email_listener(deps, handler)


async def _cmd_email_listener(settings: Settings) -> None:
    """AgentMail's WebSocket API into the same handler as ``POST /webhooks/agentmail``."""
    from app.ingress.app import create_app

    if settings.tools.agentmail_api_key is None:
        fail("configuration error: LUCY_AGENTMAIL_API_KEY: required for the email listener")
    if settings.slack.slack_bot_token is None:
        fail("configuration error: LUCY_SLACK_BOT_TOKEN: required (mail is announced in Slack)")
    await _refuse_insecure(settings, role="ingress")
    async with _ingress_deps(settings) as deps:
        app = create_app(deps, serve_events=False)  # not served: it builds the email handler
        await run_until_signal(_email_listener(deps, app.state.email_handler))


def _cmd_db(settings: Settings, action: str, revision: str | None, months_ahead: int = 3) -> None:
    from lucy import migrate
    from lucy.crypto import CryptoError, KeyRing
    from lucy.db import admin

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
                fail(
                    f"models and migrations agree, but rows wait for their month partition ({rows}): "
                    "is the lucy-maintenance schedule running? `lucy db partitions` moves them now"
                )
            print("models and migrations agree")
        elif action == "current":
            print(migrate.current(url) or "(empty database)")
        elif action == "new-key":
            print(KeyRing.new_key(revision))
        elif action in ("partitions", "rotate-keys"):
            print(asyncio.run(admin.run(settings, action, months_ahead)))
    except migrate.SchemaDriftError as exc:
        fail(f"models and migrations differ: {exc}")
    except CryptoError as exc:
        fail(str(exc))
    except (OSError, ConnectionError) as exc:
        fail(f"cannot reach the database ({exc.__class__.__name__}); check LUCY_DATABASE_MIGRATION_URL")


def _tracing_or_exit(role: str) -> None:
    """Tracing on when the standard OTEL_* variables ask for it (see :mod:`lucy.tracing`)."""
    from lucy.tracing import configure_tracing

    try:
        if configure_tracing(role):
            log.info("tracing on: spans exported as OTEL_* says", role=role)
    except ValueError as exc:
        print(f"lucy: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lucy", description="Lucy: an AI coworker for Slack on Temporal")
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="run everything locally: PostgreSQL, Temporal + UI, worker, ingress")
    dev.add_argument("--port", type=int, default=dev_ports.INGRESS, help="ingress port (default 3000)")
    dev.add_argument("--pg-port", type=int, default=dev_ports.POSTGRES, help="embedded PostgreSQL port")
    dev.add_argument(
        "--host",
        default=dev_ports.HOST,
        help="address of the ingress, its /codec and /metrics (default 127.0.0.1: this machine only)",
    )
    dev.add_argument(
        "--console",
        action="store_true",
        help="use the local Slack console even if a workspace is configured (it is used anyway when none is)",
    )
    worker = sub.add_parser("worker", help="run Temporal workers: one per queue role (docs/scaling.md)")
    worker.add_argument(
        "--queues",
        default=",".join(ALL_ROLES),
        help=f"comma list of the queue roles this process serves (default: {','.join(ALL_ROLES)})",
    )
    ingress = sub.add_parser("ingress", help="run the Slack ingress")
    mode = ingress.add_mutually_exclusive_group()
    mode.add_argument("--http", action="store_true", help="Events API over HTTP (default)")
    mode.add_argument("--socket", action="store_true", help="Socket Mode (needs LUCY_SLACK_APP_TOKEN)")
    ingress.add_argument("--port", type=int, default=dev_ports.INGRESS)
    sub.add_parser(
        "email-listener",
        help="receive AgentMail mail over its WebSocket API (no public URL; needs LUCY_AGENTMAIL_API_KEY)",
    )
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
    roles = roles_or_exit(args.queues) if args.command == "worker" else ALL_ROLES
    settings = settings_or_exit()
    configure_logging(settings.core.log_level)
    if args.command == "db":
        _cmd_db(settings, args.action, args.revision, args.months_ahead)
        return
    _tracing_or_exit(args.command)
    with contextlib.suppress(KeyboardInterrupt):
        if args.command == "dev":
            from app.dev import run_dev

            asyncio.run(
                run_dev(settings, port=args.port, pg_port=args.pg_port, console=args.console, host=args.host)
            )
        elif args.command == "worker":
            asyncio.run(_cmd_worker(settings, roles))
        elif args.command == "ingress":
            asyncio.run(_cmd_ingress(settings, socket=args.socket, port=args.port))
        elif args.command == "email-listener":
            asyncio.run(_cmd_email_listener(settings))


if __name__ == "__main__":  # pragma: no cover
    main()


__all__ = ["build_parser", "main"]
