"""Running a workspace's MCP tools: one generic activity, ``mcp.call_tool``, runs any of them,
and ``mcp.refresh`` lists every workspace's servers again (the schedule's step).

Each workspace tool becomes a :class:`~capabilities.tools.spec.ToolSpec` (:func:`tool_spec`)
that joins the task's registry (``Registry.with_tools``): ``mcp__<server>__<tool>``, the
server's checked schema, the summary ``MCP <server>.<tool>``, low risk only for a read-only
tool (or an admin's word), and its output untrusted. Retries follow the effect: a low-risk,
read-only call may be retried; any other call runs at most once (``maximum_attempts=1``), as a
Composio action does, because the server has no idempotency key.

The worker, not the model, picks where the call goes: the server is looked up by the task's
workspace and the name in the tool, so a workspace can only ever reach its own servers. Every
call is audited (``audit_log`` ``mcp.tool_call``: server, tool, the SHA-256 of the canonical
arguments, who approved) before it is sent. A tool the server no longer lists refreshes the
workspace's cached catalog and is refused in plain words.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from capabilities.mcp import repository, rules
from capabilities.mcp.client import McpConnection, McpRefused, McpUnreachable, list_server, reach_problem
from capabilities.mcp.contracts import McpRefreshRequest, McpRefreshResult
from capabilities.task.views.blocks import arguments_digest
from capabilities.tools.activities.http_errors import rejected
from capabilities.tools.activities.liveness import keeps_beating
from capabilities.tools.contracts import ToolRequest, ToolResult, WorkspaceTool, truncate_output
from capabilities.tools.deps import ToolDeps
from capabilities.tools.egress import EgressGuard
from capabilities.tools.spec import UNRESUMABLE_TOOL_HEARTBEAT, RiskContext, ToolSpec, retry
from lucy.contracts.errors import ErrorType
from lucy.contracts.risk import Risk
from lucy.crypto import CryptoError
from lucy.db.repositories.ledger import record_audit
from lucy.db.repositories.tenants import tenant_transaction
from lucy.settings import Settings

CALL_TIMEOUT = timedelta(minutes=16)  # the activity's own bound (LUCY_MCP_CALL_TIMEOUT_SECONDS) is tighter
UNAVAILABLE = "McpServerUnavailable"


class McpActivities:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: Settings, egress: EgressGuard
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._egress = egress
        self._keyring = repository.token_keyring(settings)

    async def _server(self, workspace_id: uuid.UUID, name: str) -> tuple[repository.ServerRow, str | None]:
        async with tenant_transaction(self._sessions, workspace_id) as session:
            server = await repository.get_server(session=session, workspace_id=workspace_id, name=name)
            if server is None:
                raise rejected(f"this workspace has no MCP server {name!r} any more (an admin removed it)")
            try:
                token = await repository.read_token(
                    session=session, workspace_id=workspace_id, name=name, keyring=self._keyring
                )
            except CryptoError:
                raise rejected(
                    f"the token of MCP server {name!r} cannot be decrypted; an admin should set it again"
                ) from None
            if server.has_token and token is None:
                raise rejected(f"MCP server {name!r} has a token but LUCY_ENCRYPTION_KEYS is not set")
        return server, token

    @activity.defn(name="mcp.call_tool")
    @keeps_beating
    async def call_tool(self, request: ToolRequest) -> ToolResult:
        """Run one MCP tool of the task's workspace with the model's (validated) arguments."""
        names = rules.split_name(request.tool)
        if names is None or not request.workspace_id:
            raise rejected(f"{request.tool!r} is not an MCP tool of this workspace")
        server_name, tool = names
        workspace_id = uuid.UUID(request.workspace_id)
        server, token = await self._server(workspace_id, server_name)
        if tool not in {t["name"] for t in server.catalog.get("tools") or []}:
            raise rejected(f"MCP server {server_name} does not offer {tool} (see `/lucy mcp list`)")
        problem = await reach_problem(server.url, self._settings, self._egress)
        if problem is not None:
            raise ApplicationError(
                f"MCP server {server_name} may not be reached: {problem}",
                type="EgressDenied",
                non_retryable=True,
            )
        await self._audit(workspace_id, request, server_name, tool)
        connection = McpConnection(server.url, token, timeout=self._settings.tools.mcp_call_timeout_seconds)
        try:
            outcome = await connection.call_tool(tool, request.arguments)
        except McpUnreachable as exc:
            raise ApplicationError(
                f"MCP server {server_name} is unreachable: {exc}. The call may not have run.",
                type=ErrorType.TOOL_RETRYABLE,
            ) from None
        except McpRefused as exc:
            await self._unless_gone(workspace_id, server, token, tool)
            raise rejected(f"MCP server {server_name} refused {tool}: {exc}") from None
        if outcome.is_error and outcome.text.lower().startswith("unknown tool"):
            await self._unless_gone(workspace_id, server, token, tool)
        text, truncated = truncate_output(outcome.text)
        return ToolResult(output=text, ok=not outcome.is_error, truncated=truncated)

    async def _unless_gone(
        self, workspace_id: uuid.UUID, server: repository.ServerRow, token: str | None, tool: str
    ) -> None:
        """After a refusal, list the server again and save what it lists; raise, in plain words,
        when ``tool`` is no longer among its tools."""
        try:
            listing = await list_server(server.url, token, server.name, self._settings, self._egress)
        except McpUnreachable:
            return
        async with tenant_transaction(self._sessions, workspace_id) as session:
            await repository.save_catalog(
                session=session, workspace_id=workspace_id, name=server.name, catalog=listing.as_catalog()
            )
        if tool not in {t["name"] for t in listing.tools}:
            raise rejected(
                f"MCP server {server.name} no longer offers {tool}; Lucy listed its tools again "
                "(the next task sees the new list)"
            )

    async def _audit(self, workspace_id: uuid.UUID, request: ToolRequest, server: str, tool: str) -> None:
        key = hashlib.sha256(f"mcp-call:{request.workflow_id}:{request.step}".encode()).hexdigest()
        async with tenant_transaction(self._sessions, workspace_id) as session:
            await record_audit(
                session=session,
                workspace_id=workspace_id,
                idempotency_key=key,
                # The first attempt's schedule time: a retried attempt writes nothing new.
                occurred_at=activity.info().scheduled_time,
                actor_type="lucy",
                actor_id=request.slack_user_id or None,
                action="mcp.tool_call",
                entity_type="mcp_server",
                entity_id=server,
                workflow_id=request.workflow_id,
                details={
                    "server": server,
                    "tool": tool,
                    "arguments_sha256": arguments_digest(request.arguments),
                    "approved_by": request.approved_by or None,
                    "step": request.step,
                },
            )

    @activity.defn(name="mcp.refresh")
    async def refresh(self, request: McpRefreshRequest) -> McpRefreshResult:
        """List again every server whose catalog is stale, in every workspace, and save what
        each lists now; a server that cannot be reached keeps its last list."""
        async with self._sessions.begin() as session:
            due = await repository.servers_due(
                session=session, stale_hours=request.stale_after_hours, most=request.most
            )
        refreshed = unreachable = 0
        for workspace_id, name in due:
            activity.heartbeat(str(workspace_id), name)
            try:
                server, token = await self._server(workspace_id, name)
                listing = await list_server(server.url, token, name, self._settings, self._egress)
            except (McpUnreachable, ApplicationError):
                unreachable += 1
                continue
            async with tenant_transaction(self._sessions, workspace_id) as session:
                await repository.save_catalog(
                    session=session, workspace_id=workspace_id, name=name, catalog=listing.as_catalog()
                )
            refreshed += 1
        return McpRefreshResult(refreshed=refreshed, unreachable=unreachable)


def _low(args: dict[str, Any], context: RiskContext) -> Risk:
    return Risk.LOW


def _high(args: dict[str, Any], context: RiskContext) -> Risk:
    return Risk.HIGH


def _build(deps: ToolDeps) -> object:  # the worker registers McpActivities itself (app/worker.py)
    raise RuntimeError("MCP tools are built by the worker with their database sessions")


def tool_spec(tool: WorkspaceTool) -> ToolSpec:
    """The spec of one workspace MCP tool (pure: the workflow builds it from the context)."""
    low = tool.risk == rules.LOW
    return ToolSpec(
        name=tool.name,
        description=tool.description,
        parameters=tool.parameters,
        activity=McpActivities.call_tool,
        build=_build,
        timeout=CALL_TIMEOUT,
        heartbeat=UNRESUMABLE_TOOL_HEARTBEAT,
        # Read-only (and not marked high): retried; anything else: at most once.
        retry=retry(3, non_retryable=("EgressDenied",)) if low and tool.read_only else retry(1),
        label=f"MCP {tool.server}.{tool.tool}",
        risk=_low if low else _high,
        trusted_output=False,
        acts_on=f"MCP server {tool.server}",
    )
