"""Running Lucy's processes: settings or a clean exit, serving an ASGI app with uvicorn, running
until SIGINT/SIGTERM, and the payload key ring. Shared by the ``lucy`` commands."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from lucy.settings import Settings, SettingsError, load_settings

SLACK_TIMEOUT_S = 15


def settings_or_exit(**overrides: Any) -> Settings:
    """The settings, or exit 2 with one line naming the variable that is wrong."""
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        print(f"lucy: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def fail(message: str) -> None:
    """Exit 1 with ``lucy: <message>``."""
    print(f"lucy: {message}", file=sys.stderr)
    raise SystemExit(1)


async def serve_http(app: Any, port: int, host: str = "0.0.0.0") -> None:
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


async def until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run_until_signal(*coros: Any) -> None:
    """Run ``coros`` until SIGINT/SIGTERM or until one of them ends (then re-raise its error)."""
    tasks = [asyncio.create_task(c) for c in coros]
    waiter = asyncio.create_task(until_signalled())
    done, _ = await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
    for t in [*tasks, waiter]:
        t.cancel()
    await asyncio.gather(*tasks, waiter, return_exceptions=True)
    for t in done:
        if t is not waiter and not t.cancelled() and t.exception() is not None:
            raise t.exception()  # type: ignore[misc]


def payload_keyring_or_exit(settings: Settings) -> Any:
    """The payload key ring, or a clean exit naming the problem (never a key)."""
    from lucy.codec import payload_keyring
    from lucy.crypto import CryptoError

    try:
        return payload_keyring(settings)
    except CryptoError as exc:
        fail(f"LUCY_TEMPORAL_ENCRYPT_PAYLOADS is on, but {exc}")


def slack_session(timeout_s: float = SLACK_TIMEOUT_S) -> aiohttp.ClientSession:
    """One aiohttp session for a process's Slack Web API calls, so they share kept-alive
    connections: a slack_sdk client without one opens a new session, and so a new TCP and TLS
    connection, for every call. slack_sdk applies its ``timeout`` only to the sessions it makes
    itself, so the session has its own. Made in the running event loop."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))


@contextlib.asynccontextmanager
async def shared_slack_session(client: AsyncWebClient | None) -> AsyncIterator[None]:
    """While inside, ``client`` (and every client Bolt copies from it per request) calls Slack
    over one :func:`slack_session`; closed on exit."""
    if client is None or client.session is not None:
        yield
        return
    session = client.session = slack_session(client.timeout)
    try:
        yield
    finally:
        client.session = None
        await session.close()
