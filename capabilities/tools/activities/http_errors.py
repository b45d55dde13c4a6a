"""Helpers shared by the activities that call providers over httpx: error classification,
the provider's own error message, and heartbeating around a slow call.

Temporal owns retries, so each activity only classifies: retryable (``*Retryable`` types, with
the provider's ``Retry-After`` as the next delay) or not (``non_retryable=True``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

import httpx
from temporalio.exceptions import ApplicationError

from capabilities.tools.activities.liveness import beat
from lucy.contracts.errors import ErrorType

MAX_RETRY_AFTER_S = 300.0
T = TypeVar("T")


def retry_after(response: httpx.Response, cap_s: float = MAX_RETRY_AFTER_S) -> timedelta | None:
    """The ``Retry-After`` header (seconds) as a retry delay, capped; None when absent or a date."""
    return retry_after_value(response.headers.get("retry-after"), cap_s)


def retry_after_value(raw: str | None, cap_s: float = MAX_RETRY_AFTER_S) -> timedelta | None:
    """A ``Retry-After`` value (seconds) as a retry delay, capped; None when absent or a date."""
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return timedelta(seconds=min(max(seconds, 0.0), cap_s))


def transport_error(exc: httpx.HTTPError, what: str) -> ApplicationError:
    """A timeout or connection error: retryable (the exception's text may hold a URL, not shown)."""
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "unreachable"
    return ApplicationError(f"{what} {kind} ({exc.__class__.__name__})", type=ErrorType.TOOL_RETRYABLE)


def rejected(message: str) -> ApplicationError:
    """Bad arguments or a 4xx: not retryable, with a message the model can act on."""
    return ApplicationError(message, type=ErrorType.TOOL_REJECTED, non_retryable=True)


def not_configured(message: str) -> ApplicationError:
    return ApplicationError(message, type=ErrorType.TOOL_NOT_CONFIGURED, non_retryable=True)


def is_retryable_status(status: int) -> bool:
    return status in (408, 409, 425, 429) or status >= 500


def short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _field_error(err: object) -> str:
    if not isinstance(err, dict):
        return str(err)
    path = err.get("path") or err.get("loc") or ""
    if isinstance(path, list):
        path = ".".join(str(p) for p in path)
    return f"{path}: {err.get('message') or err.get('msg') or ''}".strip(": ")


def provider_message(response: httpx.Response, *, envelope: str | None = None, limit: int = 400) -> str:
    """A provider's error in words, shortened: its message, up to five field errors and its
    suggested fix. ``envelope`` is the key that holds the error object (Composio, OpenClaw:
    ``error``); without it the body is the error object (AgentMail)."""
    try:
        body = response.json()
    except ValueError:
        return short(response.text, 200)
    return error_message(body, envelope=envelope, limit=limit)


def error_message(body: object, *, envelope: str | None = None, limit: int = 400) -> str:
    """:func:`provider_message` for an already parsed error body (what the SDKs hand over)."""
    if isinstance(body, str):
        return short(body, 200)
    err = body.get(envelope) if envelope and isinstance(body, dict) else body
    if not isinstance(err, dict):
        return short(str(err or ""), 200)
    parts = [str(err.get("message") or err.get("name") or err.get("type") or "")]
    errors = err.get("errors")
    if isinstance(errors, list) and errors:
        parts.append("; ".join(_field_error(e) for e in errors[:5]))
    fix = err.get("suggested_fix") or err.get("fix")
    if fix:
        parts.append(f"fix: {fix}")
    return short(" — ".join(p for p in parts if p), limit)


async def heartbeating(call: Awaitable[T], *, every: float = 1.0) -> T:
    """Await ``call`` while heartbeating every ``every`` seconds: a slow request stays
    cancellable (Temporal delivers cancellation through heartbeats) and within the activity's
    heartbeat timeout. Cancelling the activity cancels ``call``."""
    beat()
    task = asyncio.ensure_future(call)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            beat()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
