"""Heartbeats for long activities: a tool run (gateway, browser, Composio, a generated file, a
Slack history read) heartbeats every :data:`BEAT_EVERY_S` seconds while it works, so the
workflow's heartbeat timeout (seconds) notices a dead worker instead of the start-to-close
timeout (minutes). The worker's ``max_heartbeat_throttle_interval`` sends them to Temporal at
most every 2 s. A heartbeat is also how Temporal delivers a cancellation to an activity."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import ParamSpec, TypeVar

from temporalio import activity

BEAT_EVERY_S = 1.0

P = ParamSpec("P")
T = TypeVar("T")


@contextlib.asynccontextmanager
async def beating(every: float = BEAT_EVERY_S) -> AsyncIterator[None]:
    """Heartbeat now and every ``every`` seconds until the body is done."""
    activity.heartbeat()

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            activity.heartbeat()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def keeps_beating(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """An activity (method) that heartbeats all the while it runs (put it under
    ``@activity.defn``)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        async with beating():
            return await fn(*args, **kwargs)

    return wrapper
