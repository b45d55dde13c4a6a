"""Slack history search: the ``slack_history`` tool (activity ``tools.slack_history``).

Reads the task's thread (``conversations.replies``) or channel (``conversations.history``)
through the injected ``AsyncWebClient`` (the same bot token and ``base_url`` as the Slack
activities), keeps the messages that contain every word of the query (case-insensitive) and
returns the newest ``limit`` of them, oldest first, one line each:
``[2024-05-01 09:30:12 UTC] U0ALICE: text``.

Pages are followed with Slack's cursor up to ``MAX_SCANNED`` messages, so a search reaches back
further than one page. Slack errors are mapped by ``capabilities.task.activities.slack.slack_error`` and then
re-typed as tool errors: retryable stays retryable (with Slack's ``Retry-After``), the rest is
``ToolRejected``. Read-only, hence trivially idempotent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio import activity
from temporalio.exceptions import ApplicationError

from capabilities.task.activities.slack import slack_error
from capabilities.tools.activities.http_errors import not_configured, rejected
from capabilities.tools.activities.liveness import keeps_beating
from capabilities.tools.contracts import ToolRequest, ToolResult, truncate_output
from capabilities.tools.deps import ToolDeps
from capabilities.tools.spec import NEEDS_SLACK, STRING, TOOL_HEARTBEAT, ToolSpec, retry, schema
from lucy.contracts.errors import ErrorType

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_SCANNED = 1_000  # messages read per search (5 pages of 200)
PAGE_SIZE = 200
MAX_MESSAGE_CHARS = 1_000


def tool_error_from_slack(exc: SlackApiError, what: str) -> ApplicationError:
    """``slack_error``'s classification with tool error types (for the tool retry policies)."""
    err = slack_error(exc, what)
    if err.type == ErrorType.SLACK_RETRYABLE:
        return ApplicationError(
            err.message, *err.details, type=ErrorType.TOOL_RETRYABLE, next_retry_delay=err.next_retry_delay
        )
    return ApplicationError(err.message, *err.details, type=ErrorType.TOOL_REJECTED, non_retryable=True)


def slack_transport_error(exc: BaseException, what: str) -> ApplicationError:
    return ApplicationError(
        f"Slack {what}: unreachable ({exc.__class__.__name__})", type=ErrorType.TOOL_RETRYABLE
    )


def require_slack(client: AsyncWebClient | None) -> AsyncWebClient:
    if client is None:
        raise not_configured("Slack is not configured: set LUCY_SLACK_BOT_TOKEN")
    return client


def format_ts(ts: str) -> str:
    """A Slack ts (``1714555812.000100``) as UTC time."""
    try:
        return datetime.fromtimestamp(float(ts), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError):
        return str(ts)


class SlackHistoryActivities:
    """Searches the task's Slack thread or channel."""

    def __init__(self, slack: AsyncWebClient | None) -> None:
        self._slack = slack

    @activity.defn(name="tools.slack_history")
    @keeps_beating
    async def search(self, request: ToolRequest) -> ToolResult:
        """Earlier messages of the task's thread or channel, filtered by ``query``.

        Args:
            request: ``arguments`` = ``{query?, scope: "thread" | "channel" (default), limit?}``.

        Returns:
            One line per matching message, newest ``limit`` matches, oldest first.
        """
        client = require_slack(self._slack)
        query, scope, limit = _parse_args(request.arguments)
        channel = request.slack_channel_id
        if not channel:
            raise rejected("slack_history: this task has no Slack channel to search")
        if scope == "thread" and not request.thread_ts:
            raise rejected("slack_history: this task is not in a thread; use scope 'channel'")
        words = query.lower().split()
        matches: list[dict[str, Any]] = []
        scanned = 0
        cursor: str | None = None
        what = "conversations.replies" if scope == "thread" else "conversations.history"
        while scanned < MAX_SCANNED:
            try:
                if scope == "thread":
                    response = await client.conversations_replies(
                        channel=channel, ts=request.thread_ts, limit=PAGE_SIZE, cursor=cursor
                    )
                else:
                    response = await client.conversations_history(
                        channel=channel, limit=PAGE_SIZE, cursor=cursor
                    )
            except SlackApiError as exc:
                raise tool_error_from_slack(exc, what) from None
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise slack_transport_error(exc, what) from None
            page = list(response.get("messages") or [])
            scanned += len(page)
            matches.extend(m for m in page if _matches(m, words))
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor or not response.get("has_more", True):
                break
            if scope == "channel" and len(matches) >= limit:
                break  # history pages come newest first: older pages cannot beat these
        # Newest `limit` matches, oldest first; Slack sorts history newest first, replies oldest first.
        unique = {str(m.get("ts")): m for m in matches if m.get("ts")}
        ordered = sorted(unique.values(), key=lambda m: float(m["ts"]))[-limit:]
        where = "this thread" if scope == "thread" else "this channel"
        if not ordered:
            note = f" matching {query!r}" if query else ""
            return ToolResult(output=f"No messages{note} in {where} (searched {scanned} messages).")
        lines = [_line(m) for m in ordered]
        header = f"{len(ordered)} message(s) from {where}" + (f" matching {query!r}" if query else "") + ":"
        text, truncated = truncate_output("\n".join([header, *lines]))
        return ToolResult(output=text, truncated=truncated)


def _parse_args(args: dict[str, Any]) -> tuple[str, str, int]:
    query = args.get("query")
    if query is None:
        query = ""
    if not isinstance(query, str):
        raise rejected("slack_history: 'query' must be a string of words to look for")
    scope = args.get("scope") or "channel"
    if scope not in ("thread", "channel"):
        raise rejected("slack_history: 'scope' must be 'thread' or 'channel'")
    limit = args.get("limit", DEFAULT_LIMIT)
    if limit is None:
        limit = DEFAULT_LIMIT
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise rejected(f"slack_history: 'limit' must be an integer from 1 to {MAX_LIMIT}")
    return query.strip(), scope, limit


def _searchable(message: dict[str, Any]) -> str:
    names = " ".join(str(f.get("name") or f.get("title") or "") for f in message.get("files") or [])
    return f"{message.get('text') or ''} {names}".lower()


def _matches(message: dict[str, Any], words: list[str]) -> bool:
    if not message.get("text") and not message.get("files"):
        return False
    haystack = _searchable(message)
    return all(word in haystack for word in words)


def _line(message: dict[str, Any]) -> str:
    who = message.get("user") or message.get("username") or message.get("bot_id") or "unknown"
    text = " ".join(str(message.get("text") or "").split())
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    files = [str(f.get("title") or f.get("name") or "file") for f in message.get("files") or []]
    if files:
        text = (text + " " if text else "") + " ".join(f"[file: {name}]" for name in files)
    return f"[{format_ts(str(message.get('ts')))}] {who}: {text}"


# --------------------------------------------------------------------------- the tool


def _build(deps: ToolDeps) -> SlackHistoryActivities:
    return SlackHistoryActivities(deps.slack)


SLACK_HISTORY = ToolSpec(
    name="slack_history",
    description="Search earlier messages of this Slack thread or channel.",
    parameters=schema(
        {
            "query": STRING,
            "scope": {"type": "string", "enum": ["thread", "channel"]},
            "limit": {"type": "integer"},
        },
        (),
    ),
    activity=SlackHistoryActivities.search,
    build=_build,
    timeout=timedelta(seconds=30),
    heartbeat=TOOL_HEARTBEAT,
    retry=retry(5),
    label="slack history",
    label_arg="query",
    requires=(NEEDS_SLACK,),
)
