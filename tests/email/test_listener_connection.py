"""The email listener's connection handling against the fake AgentMail WebSocket server, through
the real SDK: refused handshakes and ``error`` frames reconnect with backoff, a change in the
bound inboxes subscribes again, a failed handling is tried again, cancelling ends it cleanly,
even as frames arrive (a frame received at the very moment of the cancellation must not swallow
it: CPython 3.11's ``asyncio.wait_for`` does, gh-86296, and the listener then listened on for
ever).
(The handler here records calls; the end-to-end tests use the real one.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from capabilities.email.agentmail import build_agentmail_client
from capabilities.email.listeners.websocket import HANDLE_ATTEMPTS, EmailListener
from lucy.settings import ToolSettings
from tests.conftest import eventually
from tests.fakes.agentmail import message_received
from tests.fakes.agentmail_socket import FakeAgentMailSocket

INBOX = "lucy@agentmail.to"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAgentMailSocket]:
    server = FakeAgentMailSocket()
    await server.start()
    yield server
    await server.stop()


def _client(fake: FakeAgentMailSocket, key: str | None = None) -> Any:
    settings = ToolSettings.model_validate(
        {"agentmail_api_key": key or fake.api_key, "agentmail_base_url": fake.base_url}
    )
    return build_agentmail_client(settings)


@contextlib.asynccontextmanager
async def _running(listener: EmailListener) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(listener.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled()


async def test_a_refused_handshake_and_an_error_frame_reconnect_with_backoff(fake: FakeAgentMailSocket):
    calls: list[str] = []

    async def handle(document: Any, delivery_id: str) -> None:
        calls.append(delivery_id)

    async def inboxes() -> list[str]:
        return [INBOX]

    wrong = EmailListener(
        client=_client(fake, "am_wrong_key"), handle=handle, inboxes=inboxes, backoff_first_s=0.05
    )
    async with _running(wrong):
        await eventually(lambda: fake.refused >= 3, "three refused handshakes")
    assert fake.subscribed == 0 and wrong.connections == 0

    listener = EmailListener(client=_client(fake), handle=handle, inboxes=inboxes, backoff_first_s=0.05)
    async with _running(listener):
        await eventually(lambda: fake.subscribed, "a subscription")
        await fake.send_all({"type": "error", "name": "ServerError", "message": "going away"})
        await eventually(lambda: listener.connections >= 2 and fake.subscribed, "a new subscription")
        await fake.push(message_received(inbox_id=INBOX, thread_id="t1", message_id="<m1@example.com>"))
        await eventually(lambda: calls == ["<m1@example.com>"], "the event handled once, by message id")


async def test_new_bound_inboxes_subscribe_again_and_no_inbox_means_no_connection(fake: FakeAgentMailSocket):
    bound: list[str] = []

    async def inboxes() -> list[str]:
        return list(bound)

    async def handle(document: Any, delivery_id: str) -> None:
        return None

    listener = EmailListener(client=_client(fake), handle=handle, inboxes=inboxes, refresh_s=0.1)
    async with _running(listener):
        await asyncio.sleep(0.4)
        assert fake.handshakes == 0  # nothing bound: nothing to listen to
        bound.append("A@Example.com")
        await eventually(lambda: fake.subscribed, "a subscription")
        bound.append("b@example.com")
        await eventually(lambda: len(fake.subscriptions) == 2, "a second subscription")
    assert [s["inbox_ids"] for s in fake.subscriptions] == [
        ["a@example.com"],
        ["a@example.com", "b@example.com"],
    ]


async def test_a_failed_handling_is_tried_again_then_given_up(fake: FakeAgentMailSocket):
    attempts: list[str] = []

    async def flaky(document: Any, delivery_id: str) -> str:
        attempts.append(delivery_id)
        if len(attempts) < 2:
            raise RuntimeError("the database went away")
        return "ok"

    async def inboxes() -> list[str]:
        return [INBOX]

    listener = EmailListener(client=_client(fake), handle=flaky, inboxes=inboxes, backoff_first_s=0.01)
    async with _running(listener):
        await eventually(lambda: fake.subscribed, "a subscription")
        await fake.push(message_received(inbox_id=INBOX, thread_id="t2", message_id="<m2@example.com>"))
        await eventually(lambda: len(attempts) == 2, "a second attempt after the failure")
        await asyncio.sleep(0.2)
        assert len(attempts) == 2

        broken: list[str] = []

        async def always_fails(document: Any, delivery_id: str) -> None:
            broken.append(delivery_id)
            raise RuntimeError("down")

        listener._handle = always_fails
        await fake.push(message_received(inbox_id=INBOX, thread_id="t3", message_id="<m3@example.com>"))
        await eventually(lambda: len(broken) == HANDLE_ATTEMPTS, "every attempt")
        await asyncio.sleep(0.3)
        assert len(broken) == HANDLE_ATTEMPTS


async def test_a_busy_subscription_still_subscribes_a_newly_bound_inbox(fake: FakeAgentMailSocket):
    """Frames arrive more often than the refresh interval: the inboxes are read again anyway."""
    bound = [INBOX]
    handled: list[str] = []

    async def inboxes() -> list[str]:
        return list(bound)

    async def handle(document: Any, delivery_id: str) -> None:
        handled.append(delivery_id)

    listener = EmailListener(client=_client(fake), handle=handle, inboxes=inboxes, refresh_s=0.3)
    async with _running(listener):
        await eventually(lambda: fake.subscribed, "a subscription")

        async def busy() -> None:
            for n in range(200):
                await fake.push(message_received(inbox_id=INBOX, thread_id="t", message_id=f"<b{n}@x>"))
                await asyncio.sleep(0.02)

        pusher = asyncio.create_task(busy())
        try:
            await eventually(lambda: len(handled) >= 5, "the busy socket's events")
            bound.append("new@agentmail.to")
            await eventually(lambda: len(fake.subscriptions) == 2, "a second subscription", timeout=3)
        finally:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher
    assert fake.subscriptions[-1]["inbox_ids"] == sorted([INBOX, "new@agentmail.to"])


async def test_handlings_at_work_at_once_are_bounded(fake: FakeAgentMailSocket):
    running, most = 0, 0
    release = asyncio.Event()
    handled: list[str] = []

    async def slow(document: Any, delivery_id: str) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1
        handled.append(delivery_id)

    async def inboxes() -> list[str]:
        return [INBOX]

    listener = EmailListener(client=_client(fake), handle=slow, inboxes=inboxes, max_handlings=2)
    async with _running(listener):
        await eventually(lambda: fake.subscribed, "a subscription")
        for n in range(6):
            await fake.push(message_received(inbox_id=INBOX, thread_id="t", message_id=f"<s{n}@x>"))
        await eventually(lambda: running == 2, "two handlings at work")
        await asyncio.sleep(0.2)
        assert most == 2
        release.set()
        await eventually(lambda: len(handled) == 6, "every mail handled in turn")
    assert most == 2


async def _cancelled_mid_burst(fake: FakeAgentMailSocket, round_: int) -> bool:
    """Subscribe, send a burst of frames, cancel after ``round_`` turns of the event loop; True
    when the listener ended cancelled."""

    async def handle(document: Any, delivery_id: str) -> None:
        return None

    async def inboxes() -> list[str]:
        return [INBOX]

    listener = EmailListener(client=_client(fake), handle=handle, inboxes=inboxes)
    task = asyncio.create_task(listener.run())
    await eventually(lambda: listener.connections == 1 and fake.subscribed, "a subscription")
    for n in range(20):  # a burst: frames wait in the socket's queue while the listener reads
        await fake.push(message_received(inbox_id=INBOX, thread_id="t", message_id=f"<r{round_}-{n}@x>"))
    for _ in range(round_):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)
    if not done:  # the cancellation was lost: stop the listener some other way
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return bool(done) and task.cancelled()


async def test_a_cancel_while_frames_arrive_ends_the_listener(fake: FakeAgentMailSocket):
    for round_ in range(12):  # each round cancels at a different point of the listener's read loop
        assert await _cancelled_mid_burst(fake, round_), f"round {round_}: the listener kept listening"
        await eventually(lambda: not fake.subscribed, "the connection closed")
