"""Composio integrations: the ``composio_execute`` tool (activity ``tools.composio``).

Wire protocol (Composio REST API v3), as documented at
https://docs.composio.dev/api-reference/tools/post-tools-execute-by-tool-slug and in Composio's
generated Python client (``ComposioHQ/composio-base-py``, ``types/tool_execute_params.py``):

* ``POST {composio_base_url}/tools/execute/{tool_slug}`` (the base URL ends in ``/api/v3``),
  header ``x-api-key: <project API key>``, JSON body ``{"arguments": {...}, "user_id": ...,
  "connected_account_id"?: ...}`` (``arguments`` and the natural-language ``text`` are mutually
  exclusive; Lucy only sends ``arguments``).
* HTTP 200 answers ``{"data": {...}, "successful": bool, "error": str | null, "log_id": ...}``.
  ``successful: false`` is the integration's own failure (GitHub said 422, the repo does not
  exist...): Lucy hands it to the model as ``ok=False`` so it can correct itself.
* Other statuses carry Composio's error object (https://docs.composio.dev/reference/errors):
  ``{"error": {"message", "status", "request_id", "suggested_fix", "errors"?}}``.

``user_id`` is one Composio user per person: ``lucy:<workspace id>:<Slack user id>`` of the
task's requester (:func:`composio_user_id`). Each person's connected accounts (their Gmail,
their GitHub) live under their own Composio user, so nobody acts through a colleague's
connection, and no workspace through another's. The connected account is resolved by Composio
from that user on the server; the model cannot choose one (a ``connected_account_id`` in its
arguments is refused).

Errors: 408/409/429/5xx, timeouts and connection errors are retryable (``Retry-After`` becomes
the next retry delay); 401 means the key is wrong (``ToolNotConfigured``); other 4xx are
``ToolRejected`` with Composio's message and suggested fix. Composio has no idempotency key for
tool execution, so an action whose response was lost may run twice when Temporal retries it;
risky actions go through approval first and the retry policy keeps attempts low.

The small HTTP classification helpers here are shared by the other HTTP tools (email).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http_errors import (
    is_retryable_status,
    not_configured,
    provider_message,
    rejected,
    retry_after,
    short,
    transport_error,
)
from activities.liveness import keeps_beating
from lucy.contracts import ErrorType, ToolRequest, ToolResult, truncate_output
from lucy.settings import ToolSettings

_SLUG = re.compile(r"^[A-Z][A-Z0-9_]{1,149}$")
_TIMEOUT = httpx.Timeout(90.0, connect=10.0)


# --------------------------------------------------------------------------- the activity


def _message(response: httpx.Response) -> str:
    """Composio's error object (``{"error": {message, errors, suggested_fix}}``) in words."""
    return provider_message(response, envelope="error")


class ComposioActivities:
    """Composio tool execution through an injected ``httpx.AsyncClient`` (no retries of its own)."""

    def __init__(self, http: httpx.AsyncClient, settings: ToolSettings) -> None:
        self._http = http
        self._settings = settings

    @activity.defn(name="tools.composio")
    @keeps_beating
    async def execute(self, request: ToolRequest) -> ToolResult:
        """Run one Composio action (``GITHUB_CREATE_ISSUE``...) with the model's arguments.

        Args:
            request: ``arguments`` = ``{action, arguments?}``; the requester is ``slack_user_id``.

        Returns:
            The action's ``data`` as JSON (``ok=False`` with Composio's error when the action
            itself failed).
        """
        key = self._settings.composio_api_key
        if key is None:
            raise not_configured("Composio is not configured: set LUCY_COMPOSIO_API_KEY")
        action, arguments = _parse_args(request.arguments)
        body: dict[str, Any] = {"arguments": arguments, "user_id": composio_user_id(request)}
        url = f"{self._settings.composio_base_url}/tools/execute/{quote(action, safe='')}"
        try:
            response = await self._http.post(
                url, json=body, headers={"x-api-key": key.get_secret_value()}, timeout=_TIMEOUT
            )
        except httpx.HTTPError as exc:
            raise transport_error(exc, f"Composio {action}") from None

        status = response.status_code
        if status == 401:
            raise not_configured("Composio refused the API key (HTTP 401): check LUCY_COMPOSIO_API_KEY")
        if is_retryable_status(status):
            raise ApplicationError(
                f"Composio {action} unavailable: HTTP {status}: {_message(response)}",
                type=ErrorType.TOOL_RETRYABLE,
                next_retry_delay=retry_after(response),
            )
        if status == 404:
            raise rejected(
                f"Composio has no action {action!r} (HTTP 404): {_message(response)}. "
                "Use an exact action slug such as GITHUB_CREATE_ISSUE."
            )
        if status >= 300:
            raise rejected(f"Composio refused {action} (HTTP {status}): {_message(response)}")
        return _result(action, response)


def composio_user_id(request: ToolRequest) -> str:
    """The Composio user a task acts as: its requester, within its workspace."""
    if not request.workspace_id or not request.slack_user_id:
        raise rejected("composio_execute needs to know whose accounts to use (no requester on this task)")
    return f"lucy:{request.workspace_id}:{request.slack_user_id}"


def _parse_args(args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    action = args.get("action")
    if not isinstance(action, str) or not action.strip():
        raise rejected("composio_execute needs 'action', a Composio action slug such as GITHUB_CREATE_ISSUE")
    action = action.strip().upper()
    if not _SLUG.match(action):
        raise rejected(
            f"'action' must be a Composio action slug (capital letters, digits and underscores, "
            f"e.g. GITHUB_CREATE_ISSUE), not {short(action, 80)!r}"
        )
    if "connected_account_id" in args:
        raise rejected(
            "'connected_account_id' is not yours to choose: Lucy uses the requester's own connected "
            "account; leave it out"
        )
    arguments = args.get("arguments")
    if arguments is None:
        arguments = {}
    if isinstance(arguments, str):  # some models send the object as JSON text
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            raise rejected("'arguments' must be a JSON object of the action's parameters") from None
    if not isinstance(arguments, dict):
        raise rejected("'arguments' must be a JSON object of the action's parameters")
    return action, arguments


def _result(action: str, response: httpx.Response) -> ToolResult:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "successful" not in body:
        # Not retried: the action may have run, and Composio has no idempotency key.
        raise rejected(f"Composio {action} answered with something that is not an execution result")
    if not body.get("successful"):
        error = body.get("error") or "the action failed without an error message"
        text, truncated = truncate_output(f"Composio {action} failed: {error}")
        return ToolResult(output=text, ok=False, truncated=truncated)
    data = body.get("data")
    rendered = json.dumps(data, ensure_ascii=False, default=str) if data is not None else "(no data)"
    text, truncated = truncate_output(rendered)
    return ToolResult(output=text, truncated=truncated)
