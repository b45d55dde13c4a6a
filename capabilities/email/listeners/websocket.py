"""Listener mode for inbound email: AgentMail's WebSocket API, through the official SDK, for
machines without a public URL (``lucy email-listener``, and ``lucy ingress --socket``).

It subscribes to ``message.received`` for the inboxes bound to workspaces (``/lucy email
connect``; read through ``lucy_email_inboxes()``) and hands each event to the same handler as
``POST /webhooks/agentmail`` (:class:`capabilities.email.listeners.inbound.EmailIngress`), with the AgentMail
message
id as the delivery id: the delivery is claimed in ``webhook_deliveries`` by that id, so a
message that arrives both over the socket and as a webhook starts one task.

* **Connection.** ``client.websockets.connect()`` (the SDK dials ``{ws origin}/v0`` with the
  API key), then a ``subscribe`` frame, then the ``subscribed`` acknowledgement within
  :data:`SUBSCRIBE_TIMEOUT_S`.
* **Reconnects.** A dropped connection, a refused handshake or an ``error`` frame reconnects
  after an exponential backoff with jitter (1 s doubling to 60 s), reset once a subscription is
  acknowledged. With no inbox bound it connects to nothing and looks again every
  :data:`REFRESH_S` seconds; while connected it reads the bound inboxes again every
  :data:`REFRESH_S` seconds however busy the socket is, and a change re-subscribes on a new
  connection.
* **Handling.** Each event is handled in its own task so the socket keeps being read, at most
  :data:`MAX_HANDLINGS` at once (a semaphore; the rest wait for a slot); a failed
  handling (the delivery is recorded ``failed``) is tried again up to :data:`HANDLE_ATTEMPTS`
  times, since nothing redelivers over a socket. ``busy`` (the webhook copy is at work) and
  ``duplicate`` end there.
* **Shutdown.** Cancelling :meth:`EmailListener.run` (SIGTERM through ``run_until_signal``)
  closes the socket and gives in-flight handlings :data:`DRAIN_S` seconds to finish. Reads are
  bounded with ``asyncio.timeout``, never ``asyncio.wait_for``: on Python 3.11 ``wait_for``
  swallows a cancellation that lands as a frame arrives (CPython gh-86296), and the listener
  then listened on for ever.

Event frames are external content: they are only parsed, by the same code as webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

from lucy.logging import get_logger

log = get_logger(__name__)

EVENT_TYPES = ["message.received"]
SUBSCRIBE_TIMEOUT_S = 10.0
REFRESH_S = 60.0
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
HANDLE_ATTEMPTS = 3
DRAIN_S = 10.0
MAX_HANDLINGS = 16  # handlings at work at once; more frames wait for a slot

Handler = Callable[[Any, str], Awaitable[Any]]  # (event document, delivery id) -> outcome


class ListenerError(Exception):
    """AgentMail refused or broke the subscription (an ``error`` frame, no acknowledgement)."""


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(type(value).__name__)


def event_document(frame: Any) -> dict[str, Any] | None:
    """A frame the SDK parsed (a pydantic model, or a dict for a type it does not know) as the
    JSON document a webhook would carry; None for bytes or anything not an object."""
    dump = getattr(frame, "dict", None)
    data = dump() if callable(dump) and not isinstance(frame, dict) else frame
    if not isinstance(data, dict):
        return None
    out = json.loads(json.dumps(data, default=_plain))
    return out if isinstance(out, dict) else None


class EmailListener:
    """One AgentMail WebSocket subscription, kept alive until cancelled."""

    def __init__(
        self,
        *,
        client: Any,
        handle: Handler,
        inboxes: Callable[[], Awaitable[list[str]]],
        refresh_s: float = REFRESH_S,
        backoff_first_s: float = BACKOFF_FIRST_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        max_handlings: int = MAX_HANDLINGS,
    ) -> None:
        """
        Args:
            client: an ``agentmail.AsyncAgentMail`` (``capabilities.email.agentmail.build_agentmail_client``).
            handle: ``EmailIngress.handle`` (through whatever builds it), called with the event
                document and its delivery id (the message id).
            inboxes: the inbox ids to subscribe to (``lucy_email_inboxes()``).
        """
        self._client = client
        self._handle = handle
        self._inboxes = inboxes
        self._refresh_s = refresh_s
        self._backoff = (backoff_first_s, backoff_max_s)
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max_handlings)
        self._subscribed = False
        self.connections = 0  # successful subscriptions so far (for tests and logs)

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with backoff."""
        failures = 0
        quiet = False  # "no inbox is bound" said once until that changes
        try:
            while True:
                try:
                    inboxes = sorted({i.lower() for i in await self._inboxes()})
                except Exception as exc:  # the database is down: try again later
                    failures += 1
                    log.warning("email listener cannot read the bound inboxes", error=exc.__class__.__name__)
                    await asyncio.sleep(self._delay(failures))
                    continue
                if not inboxes:
                    if not quiet:
                        log.info("email listener: no inbox is bound yet (/lucy email connect)")
                    quiet = True
                    await asyncio.sleep(self._refresh_s)
                    continue
                quiet = False
                try:
                    await self._session(inboxes)
                    failures = 0
                    continue  # the bound inboxes changed: subscribe again at once
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures = 1 if self._subscribed else failures + 1
                    log.warning(
                        "email listener disconnected; reconnecting",
                        error=exc.__class__.__name__,
                        status=getattr(exc, "status_code", None),
                        attempt=failures,
                    )
                await asyncio.sleep(self._delay(failures))
        finally:
            await self._drain()

    def _delay(self, failures: int) -> float:
        first, cap = self._backoff
        base = min(cap, first * (2 ** max(failures - 1, 0)))
        return base * (0.5 + random.random() / 2)  # jitter, not a secret

    async def _session(self, inboxes: list[str]) -> None:
        """One connection: subscribe, then hand events over. Returns when the bound inboxes
        changed; raises when the connection ended."""
        from agentmail.websockets.types import Subscribe

        self._subscribed = False
        async with self._client.websockets.connect() as socket:
            await socket.send_subscribe(Subscribe(event_types=EVENT_TYPES, inbox_ids=inboxes))
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                ack = await socket.recv()
            if getattr(ack, "type", None) != "subscribed":
                raise ListenerError(f"no subscription: {getattr(ack, 'type', type(ack).__name__)}")
            self.connections += 1
            self._subscribed = True  # the backoff starts again from its first step
            log.info("email listener subscribed", inboxes=len(inboxes))
            # The bound inboxes are read again every refresh_s, after a frame as after silence:
            # a busy subscription must not keep a newly bound inbox unsubscribed.
            loop = asyncio.get_running_loop()
            refreshed = loop.time()
            while True:
                left = self._refresh_s - (loop.time() - refreshed)
                if left > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(left):
                            frame = await socket.recv()
                        self._take(frame)
                if loop.time() - refreshed >= self._refresh_s:
                    refreshed = loop.time()
                    if await self._inboxes_changed(inboxes):
                        log.info("email listener: the bound inboxes changed; subscribing again")
                        return

    def _take(self, frame: Any) -> None:
        """Hand an event frame over; raise on an ``error`` frame; skip anything else."""
        kind = getattr(frame, "type", None) or (frame.get("type") if isinstance(frame, dict) else None)
        if kind == "error":
            raise ListenerError(f"AgentMail error frame: {getattr(frame, 'name', '?')}")
        if kind != "event":
            return
        document = event_document(frame)
        if document is not None and document.get("event_type") in EVENT_TYPES:
            self._spawn(document)

    async def _inboxes_changed(self, inboxes: list[str]) -> bool:
        try:
            current = sorted({i.lower() for i in await self._inboxes()})
        except Exception:  # the database is down: keep listening to what we have
            return False
        return current != inboxes

    def _spawn(self, document: dict[str, Any]) -> None:
        message = document.get("message")
        message_id = str(message.get("message_id") or "") if isinstance(message, dict) else ""
        task = asyncio.create_task(self._deliver(document, message_id or str(document.get("event_id") or "")))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, document: dict[str, Any], delivery_id: str) -> None:
        for attempt in range(1, HANDLE_ATTEMPTS + 1):
            try:
                async with self._slots:
                    outcome = await self._handle(document, delivery_id)
            except Exception as exc:
                log.warning(
                    "email listener: the mail could not be handled",
                    error=exc.__class__.__name__,
                    attempt=attempt,
                )
                if attempt < HANDLE_ATTEMPTS:
                    await asyncio.sleep(self._delay(attempt))
                continue
            log.info("email listener: mail handled", outcome=getattr(outcome, "status", None))
            return

    async def _drain(self) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=DRAIN_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def run_email_listener(deps: Any, handler: Callable[[], Awaitable[Any]]) -> None:
    """Run the listener for the ingress's dependencies until cancelled.

    Args:
        deps: the ingress's ``IngressDeps`` (settings and database sessions).
        handler: ``app.state.email_handler`` of the ingress app: builds the ``EmailIngress``
            that ``POST /webhooks/agentmail`` uses.
    """
    from capabilities.email.agentmail import build_agentmail_client
    from capabilities.email.repository import bound_inboxes

    async def inboxes() -> list[str]:
        async with deps.sessions.begin() as session:
            return await bound_inboxes(session=session)

    async def handle(document: Any, delivery_id: str) -> Any:
        return await (await handler()).handle(document, delivery_id=delivery_id)

    client = build_agentmail_client(deps.settings.tools)
    await EmailListener(client=client, handle=handle, inboxes=inboxes).run()
