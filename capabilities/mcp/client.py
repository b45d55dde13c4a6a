"""Talking to one MCP server with the official SDK (``mcp``): list its tools, call one.

Streamable HTTP first (``mcp.client.streamable_http.streamable_http_client`` and
``ClientSession``); when the server does not speak it (the session cannot even start), the
same URL over SSE (``mcp.client.sse.sse_client``). A fallback happens only before the session
is initialised, so a tool call is never sent twice. The token, when there is one, travels only
as ``Authorization: Bearer`` and never appears in an error.

Before any byte goes out, the URL passes :func:`reach_problem`: ``http(s)`` only, and either a
``host:port`` listed in ``LUCY_MCP_ALLOWED_HOSTS`` or an address the egress guard allows
(public, not loopback, private or link-local).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx2

from capabilities.mcp import rules
from capabilities.tools.egress import EgressGuard
from lucy.settings import DEVELOPMENT_ENVS, Settings

if TYPE_CHECKING:
    from mcp import ClientSession

# The SDK itself (``mcp``: about 24 MiB of modules on top of what a worker already holds) is
# imported on the first connection, so a worker whose workspaces have no MCP server never
# carries it (bench/worker_scale.py measures a worker's memory).


class McpUnreachable(Exception):
    """The server could not be reached, or it went away mid-call (plain words, no secret)."""


class McpRefused(Exception):
    """The server answered, but with an error (plain words, no secret)."""


@dataclass(frozen=True)
class CallOutcome:
    """A tool's answer: its text content (and structured content as JSON), and whether the
    server flagged it as an error."""

    text: str
    is_error: bool


async def reach_problem(url: str, settings: Settings, egress: EgressGuard) -> str | None:
    """Why Lucy may not connect to ``url``, or None (outside development and test, plain
    ``http://`` only to an allowed host)."""
    allowed = rules.allowed_hosts(settings.tools.mcp_allowed_hosts)
    production = settings.core.env not in DEVELOPMENT_ENVS
    problem = rules.url_problem(url, allowed_hosts=allowed, production=production)
    if problem is not None:
        return problem
    if rules.host_port(url) in allowed:
        return None
    verdict = await egress.check(url)
    if verdict.allowed:
        return None
    return f"{verdict.reason} (an operator can allow a server beside Lucy with LUCY_MCP_ALLOWED_HOSTS)"


async def list_server(
    url: str, token: str | None, name: str, settings: Settings, egress: EgressGuard
) -> rules.Listing:
    """Connect to ``url`` (after the reach check) and check what it lists; raises
    :class:`McpUnreachable` in plain words."""
    problem = await reach_problem(url, settings, egress)
    if problem is not None:
        raise McpUnreachable(problem)
    tools = settings.tools
    raw = await McpConnection(url, token, timeout=tools.mcp_connect_timeout_seconds).list_tools()
    return rules.check_listing(
        name, raw, max_bytes=tools.mcp_max_schema_bytes, max_tools=tools.mcp_max_tools_per_server
    )


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside the SDK's task-group exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _why(exc: BaseException) -> str:
    leaf = _leaf(exc)
    if isinstance(leaf, httpx2.HTTPStatusError):
        return f"it answered HTTP {leaf.response.status_code}"
    if isinstance(leaf, httpx2.TimeoutException | TimeoutError):
        return "it did not answer in time"
    if isinstance(leaf, httpx2.ConnectError | ConnectionError | OSError):
        return "nothing answered at that address"
    return f"the connection failed ({leaf.__class__.__name__})"


@asynccontextmanager
async def _streamable(url: str, headers: dict[str, str], seconds: float) -> AsyncIterator[ClientSession]:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(seconds, read=seconds)) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, read_timeout_seconds=seconds) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def _sse(url: str, headers: dict[str, str], seconds: float) -> AsyncIterator[ClientSession]:
    from mcp import ClientSession
    from mcp.client.sse import sse_client

    async with (
        sse_client(url, headers=headers, timeout=seconds, sse_read_timeout=seconds) as (read, write),
        ClientSession(read, write, read_timeout_seconds=seconds) as session,
    ):
        await session.initialize()
        yield session


def _attempts(url: str) -> list[tuple[Any, str]]:
    """Streamable HTTP, then SSE, at ``url``; for a bare origin (no path) also at the SDK's
    default paths, ``/mcp`` and ``/sse``."""
    if urlsplit(url).path.strip("/"):
        return [(_streamable, url), (_sse, url)]
    base = url.rstrip("/")
    return [(_streamable, url), (_streamable, f"{base}/mcp"), (_sse, f"{base}/sse"), (_sse, url)]


class McpConnection:
    """One server: ``async with McpConnection(...).session() as s`` gives an initialised session."""

    def __init__(self, url: str, token: str | None, *, timeout: float) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout

    @asynccontextmanager
    async def session(self) -> AsyncIterator[ClientSession]:
        for opener, url in _attempts(self._url):
            opened = opener(url, self._headers, self._timeout)
            try:
                session = await opened.__aenter__()
            except Exception as exc:
                problem = exc
                continue
            try:
                yield session
            except BaseException as exc:
                if not await opened.__aexit__(type(exc), exc, exc.__traceback__):
                    raise
            else:
                await opened.__aexit__(None, None, None)
            return
        raise McpUnreachable(_why(problem))

    async def list_tools(self) -> list[dict[str, Any]]:
        """Every tool the server lists (all pages), as plain dicts."""
        found: list[dict[str, Any]] = []
        try:
            async with self.session() as session:
                cursor: str | None = None
                while True:
                    listed = await (
                        session.list_tools(params=_page(cursor)) if cursor else session.list_tools()
                    )
                    found.extend(_tool(t) for t in listed.tools)
                    cursor = listed.next_cursor
                    if not cursor or len(found) > 1000:
                        break
        except McpUnreachable:
            raise
        except Exception as exc:
            raise McpUnreachable(_why(exc)) from None
        return found

    async def call_tool(self, tool: str, arguments: dict[str, Any]) -> CallOutcome:
        try:
            async with self.session() as session:
                result = await session.call_tool(tool, arguments)
        except McpUnreachable:
            raise
        except Exception as exc:
            leaf = _leaf(exc)
            if leaf.__class__.__name__ == "MCPError":
                raise McpRefused(str(getattr(leaf, "message", "") or leaf)[:500]) from None
            raise McpUnreachable(_why(exc)) from None
        return _outcome(result)


def _page(cursor: str) -> Any:
    from mcp_types import PaginatedRequestParams

    return PaginatedRequestParams(cursor=cursor)


def _tool(tool: Any) -> dict[str, Any]:
    annotations = tool.annotations
    return {
        "name": tool.name,
        "description": tool.description or "",
        "input_schema": tool.input_schema,
        "read_only": bool(annotations is not None and annotations.read_only_hint is True),
    }


def _outcome(result: Any) -> CallOutcome:
    import json

    parts: list[str] = []
    for block in result.content or []:
        text = getattr(block, "text", None)
        parts.append(text if isinstance(text, str) else f"[{getattr(block, 'type', 'content')} omitted]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    return CallOutcome(text="\n".join(parts) or "(no content)", is_error=bool(result.is_error))
