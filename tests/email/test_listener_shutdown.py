"""Cancelling the email listener (SIGTERM) ends it even while frames keep arriving: a frame that
is received at the very moment of the cancellation must not swallow it (CPython 3.11's
``asyncio.wait_for`` does, gh-86296, and the listener then listened on for ever)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from capabilities.email.agentmail import build_agentmail_client
from capabilities.email.listeners.websocket import EmailListener
from lucy.settings import ToolSettings
from tests.conftest import eventually
from tests.fakes.agentmail import message_received
from tests.fakes.agentmail_socket import FakeAgentMailSocket

INBOX = "lucy@agentmail.to"
ROUNDS = 12  # each round cancels at a different point of the listener's read loop


@pytest.fixture
async def fake() -> AsyncIterator[FakeAgentMailSocket]:
    server = FakeAgentMailSocket()
    await server.start()
    yield server
    await server.stop()


async def _cancelled_mid_burst(fake: FakeAgentMailSocket, settings: ToolSettings, round_: int) -> bool:
    """Subscribe, send a burst of frames, cancel after ``round_`` turns of the event loop; True
    when the listener ended cancelled."""

    async def handle(document: Any, delivery_id: str) -> None:
        return None

    async def inboxes() -> list[str]:
        return [INBOX]

    listener = EmailListener(client=build_agentmail_client(settings), handle=handle, inboxes=inboxes)
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
    settings = ToolSettings.model_validate(
        {"agentmail_api_key": fake.api_key, "agentmail_base_url": fake.base_url}
    )
    for round_ in range(ROUNDS):
        assert await _cancelled_mid_burst(fake, settings, round_), (
            f"round {round_}: the listener kept listening"
        )
        await eventually(lambda: not fake.subscribed, "the connection closed")
