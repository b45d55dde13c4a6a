"""Heartbeats for long activities: a tool run (gateway, browser, Composio, a generated file, a
Slack history read) heartbeats every :data:`BEAT_EVERY_S` seconds while it works, so the
workflow's heartbeat timeout (seconds) notices a dead worker instead of the start-to-close
timeout (minutes). The worker's ``max_heartbeat_throttle_interval`` sends them to Temporal at
most every 2 s. A heartbeat is also how Temporal delivers a cancellation to an activity.

Temporal keeps only the newest heartbeat, and its details are what a retried attempt resumes
from (a gateway session, a streamed message's ts). So every heartbeat goes through
:func:`beat`: an activity beats its details with ``beat(details)``, and a beat without details
(the background beater's) re-sends the latest ones — never an empty beat over a session id."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from temporalio import activity

BEAT_EVERY_S = 1.0

P = ParamSpec("P")
T = TypeVar("T")

# The details this activity attempt last heartbeated (a list shared by the attempt's tasks:
# set in the attempt's own task before any beater task is started).
_LATEST: ContextVar[list[Any] | None] = ContextVar("lucy_heartbeat_details", default=None)


def _latest() -> list[Any]:
    latest = _LATEST.get()
    if latest is None:
        # Until this attempt says otherwise, the previous attempt's details still hold.
        latest = list(activity.info().heartbeat_details)
        _LATEST.set(latest)
    return latest


def beat(*details: Any) -> None:
    """Heartbeat ``details`` and remember them; with none, heartbeat the latest details this
    attempt (or, before it gave any, the previous attempt) heartbeated."""
    latest = _latest()
    if details:
        latest[:] = details
    activity.heartbeat(*latest)


async def beat_recorded(*details: Any) -> None:
    """Heartbeat ``details`` and return once Temporal has recorded them: a mark a retried
    attempt must find even when this worker dies a moment later (:func:`beat` is throttled and
    may wait up to the throttle interval). One ``RecordActivityTaskHeartbeat`` call, through the
    worker's client with its data converter (the codec included); without a client (an
    activity run alone in a test) it falls back to :func:`beat`."""
    beat(*details)
    try:
        client = activity.client()
    except RuntimeError:
        return
    await client.get_async_activity_handle(task_token=activity.info().task_token).heartbeat(*details)


@contextlib.asynccontextmanager
async def beating(every: float = BEAT_EVERY_S) -> AsyncIterator[None]:
    """Heartbeat (the latest details) now and every ``every`` seconds until the body is done."""
    beat()

    async def beater() -> None:
        while True:
            await asyncio.sleep(every)
            beat()

    task = asyncio.create_task(beater())
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
