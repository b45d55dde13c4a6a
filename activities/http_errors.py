"""HTTP error helpers shared by the activities that call providers over httpx.

Temporal owns retries, so each activity only classifies: retryable (``*Retryable`` types, with
the provider's ``Retry-After`` as the next delay) or not (``non_retryable=True``).
"""

from __future__ import annotations

from datetime import timedelta

import httpx
from temporalio.exceptions import ApplicationError

from lucy.contracts import ErrorType

MAX_RETRY_AFTER_S = 300.0


def retry_after(response: httpx.Response, cap_s: float = MAX_RETRY_AFTER_S) -> timedelta | None:
    """The ``Retry-After`` header (seconds) as a retry delay, capped; None when absent or a date."""
    raw = response.headers.get("retry-after")
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
