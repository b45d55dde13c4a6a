"""The official AgentMail SDK for activities: a configured ``AsyncAgentMail`` from settings, the
per-request options that turn its own retries off, and its errors mapped onto Lucy's.

Temporal owns retries, so every call passes :data:`NO_RETRIES` (the SDK retries 429/5xx twice
by default and has no client-wide switch). :func:`map_agentmail_error` classifies what the SDK
raises exactly as the hand-written HTTP did:

* 408/409/425/429/5xx, timeouts and connection errors -> ``ToolRetryable`` (``Retry-After``
  becomes the next retry delay); 409 is a concurrent request with the same idempotency key;
* 401 -> ``ToolNotConfigured`` (the key is wrong; the key itself is never shown);
* 404 -> ``ToolNotConfigured`` when the caller says what is missing (``not_found=``), else
  ``ToolRejected``;
* other 4xx -> ``ToolRejected`` with AgentMail's message, field errors and fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
from temporalio.exceptions import ApplicationError

from capabilities.email.agentmail import build_agentmail_client
from capabilities.tools.activities.http_errors import (
    error_message,
    is_retryable_status,
    not_configured,
    rejected,
    retry_after_value,
    transport_error,
)
from lucy.contracts.errors import ErrorType
from lucy.settings import ToolSettings

if TYPE_CHECKING:
    from agentmail import AsyncAgentMail
    from agentmail.core.request_options import RequestOptions

# Pass as ``request_options=`` on every SDK call: Temporal, not the SDK, retries.
NO_RETRIES: RequestOptions = {"max_retries": 0}


def agentmail_client(settings: Any, *, http: httpx.AsyncClient | None = None) -> AsyncAgentMail:
    """A configured ``AsyncAgentMail`` (pointed at ``LUCY_AGENTMAIL_BASE_URL``).

    Args:
        settings: the tool settings, or the whole ``Settings`` (its ``tools`` group is used).
        http: the worker's shared ``httpx.AsyncClient``; without it the SDK makes its own.

    Raises:
        ApplicationError: ``ToolNotConfigured`` when email is off or has no API key.
    """
    tools: ToolSettings = getattr(settings, "tools", settings)
    if not tools.agentmail_enabled or tools.agentmail_api_key is None:
        raise not_configured(
            "email is not configured: set LUCY_AGENTMAIL_ENABLED=true and LUCY_AGENTMAIL_API_KEY"
        )
    return build_agentmail_client(tools, http=http)


def _body(body: object) -> object:
    """The SDK's error body as plain data (it may be a pydantic model, a dict or text)."""
    dump = getattr(body, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json", exclude_none=True)
        except Exception:  # a body we cannot render is shown as text
            return str(body)
    return body


def map_agentmail_error(
    exc: BaseException, *, what: str = "AgentMail", not_found: str | None = None
) -> ApplicationError:
    """An ``ApplicationError`` of Lucy's types for an exception the AgentMail SDK raised.

    Args:
        exc: what the SDK raised (``agentmail.core.api_error.ApiError`` and its subclasses, or an
            ``httpx`` transport error).
        what: the call, for the message ("AgentMail send").
        not_found: the message for a 404 that means the deployment is not set up (an inbox that
            does not exist); None: a 404 is a rejection.
    """
    from agentmail.core.api_error import ApiError

    if isinstance(exc, httpx.HTTPError):
        return transport_error(exc, what)
    if not isinstance(exc, ApiError):
        return ApplicationError(f"{what} failed ({exc.__class__.__name__})", type=ErrorType.TOOL_RETRYABLE)
    status = exc.status_code or 0
    message = error_message(_body(exc.body))
    if status == 401:
        return not_configured("AgentMail refused the API key (HTTP 401): check LUCY_AGENTMAIL_API_KEY")
    if status == 404 and not_found is not None:
        return not_configured(not_found)
    if is_retryable_status(status) or status == 0:
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        return ApplicationError(
            f"{what} unavailable: HTTP {status}: {message}",
            type=ErrorType.TOOL_RETRYABLE,
            next_retry_delay=retry_after_value(headers.get("retry-after")),
        )
    return rejected(f"{what} refused (HTTP {status}): {message}")
