"""Composio integrations: the ``composio_execute`` tool (activity ``tools.composio``), through
Composio's official generated client ``composio_client.AsyncComposio`` (``composio-client``, the
client the high-level ``composio==0.30.0`` package pins and calls; Lucy pins the client alone,
because ``composio`` pins ``pysher==1.0.8``, published only as an sdist, and Lucy installs
binaries only).

Why the bundled client and not the high-level ``composio.Composio``: the high-level SDK is
synchronous (an ``httpx.Client``), its ``tools.execute`` first fetches the tool's schema and
version and may upload or download files, and it reports telemetry; the generated client is
async, takes ``base_url``, ``max_retries=0`` and the worker's ``httpx.AsyncClient``, and makes
exactly the one documented request. Importing it takes ~4 s, so it is imported on first use, in
a thread (the worker's event loop keeps turning meanwhile; see :meth:`ComposioActivities._sdk`).

Wire protocol (Composio REST API, spoken by the client), as documented at
https://docs.composio.dev/api-reference/tools/post-tools-execute-by-tool-slug:

* ``POST {origin}/api/v3.1/tools/execute/{tool_slug}`` (``LUCY_COMPOSIO_BASE_URL`` keeps its
  documented form ending in ``/api/v3``; the client adds its own versioned path, so the
  ``/api/v3`` suffix is removed for it), header ``x-api-key: <project API key>``, JSON body
  ``{"arguments": {...}, "user_id": ...}`` (``arguments`` and the natural-language ``text`` are
  mutually exclusive; Lucy only sends ``arguments``).
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
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
from datetime import timedelta
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from capabilities.tools.activities.http_errors import (
    error_message,
    is_retryable_status,
    not_configured,
    rejected,
    retry_after,
    short,
    transport_error,
)
from capabilities.tools.activities.liveness import keeps_beating
from capabilities.tools.contracts import ToolRequest, ToolResult, truncate_output
from capabilities.tools.deps import ToolDeps
from capabilities.tools.spec import STRING, UNRESUMABLE_TOOL_HEARTBEAT, RiskContext, ToolSpec, retry, schema
from lucy.contracts.errors import ErrorType
from lucy.contracts.risk import Risk
from lucy.settings import ToolSettings

_SLUG = re.compile(r"^[A-Z][A-Z0-9_]{1,149}$")
_TIMEOUT = httpx.Timeout(90.0, connect=10.0)


def composio_origin(base_url: str) -> str:
    """``LUCY_COMPOSIO_BASE_URL`` without its ``/api/v3`` (or ``/api/v3.1``) suffix."""
    base = base_url.rstrip("/")
    for suffix in ("/api/v3.1", "/api/v3"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


# --------------------------------------------------------------------------- the activity


class ComposioActivities:
    """Composio tool execution through ``composio_client.AsyncComposio`` over an injected
    ``httpx.AsyncClient``, with the client's own retries off (``max_retries=0``)."""

    def __init__(self, http: httpx.AsyncClient, settings: ToolSettings) -> None:
        self._http = http
        self._settings = settings
        self._client: Any = None
        self._sdk_module: Any = None

    async def _sdk(self, key: str) -> tuple[Any, Any]:
        """The client and the ``composio_client`` module, imported on first use in a thread."""
        if self._client is None:
            module = await asyncio.to_thread(importlib.import_module, "composio_client")
            self._client = module.AsyncComposio(
                auth=module.ProjectAuth(key),
                base_url=composio_origin(self._settings.composio_base_url),
                max_retries=0,
                timeout=_TIMEOUT,
                http_client=self._http,
            )
            self._sdk_module = module
        return self._client, self._sdk_module

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
        user_id = composio_user_id(request)
        client, sdk = await self._sdk(key.get_secret_value())
        try:
            response = await client.tools.execute(action, arguments=arguments, user_id=user_id)
        except sdk.APIStatusError as exc:
            raise _status_error(action, exc.status_code, exc.response, exc.body) from None
        except (sdk.APIConnectionError, httpx.HTTPError) as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, httpx.HTTPError) else None
            if isinstance(exc, httpx.HTTPError):
                cause = exc
            if cause is not None:
                raise transport_error(cause, f"Composio {action}") from None
            kind = "timed out" if isinstance(exc, sdk.APITimeoutError) else "unreachable"
            raise ApplicationError(
                f"Composio {action} {kind} ({exc.__class__.__name__})", type=ErrorType.TOOL_RETRYABLE
            ) from None
        except sdk.APIError as exc:  # a 200 whose body is not an execution result
            # Not retried: the action may have run, and Composio has no idempotency key.
            raise rejected(
                f"Composio {action} answered with something that is not an execution result "
                f"({exc.__class__.__name__})"
            ) from None
        return _result(action, response)


def _status_error(action: str, status: int, response: httpx.Response, body: object) -> ApplicationError:
    """Composio's HTTP error (``{"error": {message, errors, suggested_fix}}``) as Lucy's type."""
    message = error_message(body, envelope="error")
    if status == 401:
        return not_configured("Composio refused the API key (HTTP 401): check LUCY_COMPOSIO_API_KEY")
    if is_retryable_status(status):
        return ApplicationError(
            f"Composio {action} unavailable: HTTP {status}: {message}",
            type=ErrorType.TOOL_RETRYABLE,
            next_retry_delay=retry_after(response),
        )
    if status == 404:
        return rejected(
            f"Composio has no action {action!r} (HTTP 404): {message}. "
            "Use an exact action slug such as GITHUB_CREATE_ISSUE."
        )
    return rejected(f"Composio refused {action} (HTTP {status}): {message}")


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


def _result(action: str, response: Any) -> ToolResult:
    """The SDK's ``ToolExecuteResponse`` (or a loosely parsed body) as the model's result."""
    dump = getattr(response, "model_dump", None)
    body = dump() if callable(dump) else response
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


# --------------------------------------------------------------------------- the tool

# Composio actions that only read: safe to run without asking. Everything else (create, send,
# delete, update...) is high risk. Exact slugs, on purpose: a prefix would let a new action in.
COMPOSIO_READ_ONLY = frozenset(
    {
        "GITHUB_GET_A_REPOSITORY",
        "GITHUB_GET_AN_ISSUE",
        "GITHUB_GET_A_PULL_REQUEST",
        "GITHUB_LIST_REPOSITORY_ISSUES",
        "GITHUB_LIST_PULL_REQUESTS",
        "GITHUB_LIST_COMMITS",
        "GITHUB_SEARCH_ISSUES_AND_PULL_REQUESTS",
        "GITHUB_SEARCH_REPOSITORIES",
        "GITHUB_GET_THE_AUTHENTICATED_USER",
        "LINEAR_LIST_LINEAR_ISSUES",
        "LINEAR_GET_LINEAR_ISSUE",
        "LINEAR_LIST_LINEAR_PROJECTS",
        "LINEAR_LIST_LINEAR_TEAMS",
        "JIRA_GET_ISSUE",
        "JIRA_SEARCH_FOR_ISSUES_USING_JQL_GET",
        "NOTION_SEARCH_NOTION_PAGE",
        "NOTION_FETCH_DATA",
        "GOOGLECALENDAR_EVENTS_LIST",
        "GOOGLECALENDAR_FIND_EVENT",
        "GOOGLECALENDAR_FIND_FREE_SLOTS",
        "GMAIL_FETCH_EMAILS",
        "GMAIL_FETCH_MESSAGE_BY_MESSAGE_ID",
        "GOOGLEDRIVE_FIND_FILE",
        "HUBSPOT_LIST_CONTACTS",
    }
)


def _risk(args: dict[str, Any], context: RiskContext) -> Risk:
    """Low for an action on the read-only list, high for every other."""
    action = str(args.get("action") or "").strip().upper()
    return Risk.LOW if action in COMPOSIO_READ_ONLY else Risk.HIGH


def _build(deps: ToolDeps) -> ComposioActivities:
    return ComposioActivities(deps.http, deps.settings.tools)


COMPOSIO_EXECUTE = ToolSpec(
    name="composio_execute",
    description="Run a Composio integration action (e.g. GITHUB_CREATE_ISSUE) with its arguments, "
    "as the person you work for (through their own connected accounts).",
    parameters=schema({"action": STRING, "arguments": {"type": "object"}}, ("action",)),
    activity=ComposioActivities.execute,
    build=_build,
    timeout=timedelta(seconds=120),
    heartbeat=UNRESUMABLE_TOOL_HEARTBEAT,
    retry=retry(3),
    label="composio",
    label_arg="action",
    risk=_risk,
    acts_for_requester=True,
    requires=("composio_api_key",),
)
