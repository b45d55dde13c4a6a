"""The model's memory tools: ``remember(text, scope)``, ``recall(query)`` and ``forget(memory_id)``
(activities ``memory.remember``, ``memory.recall``, ``memory.forget``).

Who may do what is code's, never the model's:

* ``remember`` writes a ``me`` or ``channel`` memory at once when the task holds only the
  requester's own words; once anything from outside is in the task (a mail, a webhook, a page,
  a file, a tool's or another person's words) the requester confirms the exact text first; a
  ``workspace`` memory waits for a workspace admin (:func:`remember_gate`, read by the policy).
  A guest writes only ``me`` memories (checked here again, from the role the ingress recorded).
* ``recall`` reads what the requester may see: their own, this channel's, the workspace's.
* ``forget`` deletes the requester's own memories; an admin (asked of Slack now) any in the
  workspace; after untrusted content the requester confirms it first.

Each write is keyed by the workflow and step, so a retried activity writes once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from capabilities.memory import repository as memories
from capabilities.memory.activities.embeddings import embed
from capabilities.memory.contracts import MEMORY_MAX_CHARS, MemoryScope, RecalledMemory
from capabilities.tools.activities.http_errors import not_configured, rejected
from capabilities.tools.contracts import ToolRequest, ToolResult
from capabilities.tools.deps import ToolDeps
from capabilities.tools.spec import (
    ADMIN_APPROVES,
    REQUESTER_CONFIRMS,
    STRING,
    Gate,
    RiskContext,
    ToolSpec,
    retry,
    schema,
)
from lucy.contracts.ids import idempotency_key
from lucy.contracts.risk import Risk
from lucy.db.repositories.tenants import get_user, tenant_transaction
from lucy.roles import is_admin, role_of

RECALL_LIMIT = 8
MAX_EXPIRY_DAYS = 3650
GUEST_REFUSED = "Guests can keep only their own memories (scope `me`), not the channel's or the workspace's."


def line(memory: RecalledMemory) -> str:
    """One memory as the model reads it: id, scope, author, date, source link, then the text."""
    link = f" · {memory.link}" if memory.link else ""
    return (
        f"[memory {memory.id} · {memory.scope} · by <@{memory.author_slack_id}> · "
        f"{memory.created_at[:10]}{link}] {memory.text}"
    )


def _requester_confirms(context: RiskContext, what: str) -> Gate | None:
    """Once the task holds untrusted content, only the requester may confirm ``what``."""
    if not context.untrusted_seen:
        return None
    return Gate(
        REQUESTER_CONFIRMS,
        f"this task has read content from outside the requester's own words, so only they may confirm {what}",
    )


def remember_gate(args: dict[str, Any], context: RiskContext) -> Gate | None:
    """Who must approve a ``remember`` call before it is written (None: written at once)."""
    if str(args.get("scope", "")) == MemoryScope.WORKSPACE:
        return Gate(
            ADMIN_APPROVES,
            "a workspace memory is recalled for everyone here, so a workspace admin approves its exact text",
        )
    return _requester_confirms(context, "the exact text Lucy remembers")


def forget_gate(args: dict[str, Any], context: RiskContext) -> Gate | None:
    """After untrusted content, only the requester may confirm forgetting (a page must not
    make Lucy forget what the team told it)."""
    return _requester_confirms(context, "that Lucy forgets this memory")


def remember_risk(args: dict[str, Any], context: RiskContext) -> Risk:
    return Risk.MEDIUM if str(args.get("scope", "")) == MemoryScope.WORKSPACE else Risk.LOW


def _expiry(args: dict[str, Any]) -> datetime | None:
    days = args.get("expires_in_days")
    if days is None:
        return None
    if not isinstance(days, int | float) or isinstance(days, bool) or not 0 < days <= MAX_EXPIRY_DAYS:
        raise rejected(f"expires_in_days must be a number of days between 1 and {MAX_EXPIRY_DAYS}")
    return datetime.now(UTC) + timedelta(days=float(days))


def _text(args: dict[str, Any]) -> str:
    body = " ".join(str(args.get("text", "")).split())
    if not body:
        raise rejected("there is nothing to remember: `text` is empty")
    if len(body) > MEMORY_MAX_CHARS:
        raise rejected(f"a memory holds at most {MEMORY_MAX_CHARS} characters; shorten it")
    return body


class MemoryActivities:
    def __init__(self, deps: ToolDeps) -> None:
        self._deps = deps

    @property
    def _sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._deps.sessions is None:
            raise not_configured("memory needs the database")
        return self._deps.sessions

    async def _role(self, session: AsyncSession, workspace_id: uuid.UUID, user: str) -> str:
        """The requester's role: Slack's answer now, else what the ingress recorded."""
        if self._deps.slack is not None:
            try:
                answer = await self._deps.slack.users_info(user=user)
                return role_of(dict(answer.get("user") or {}))
            except (SlackApiError, OSError):
                pass
        row = await get_user(session=session, workspace_id=workspace_id, slack_user_id=user)
        return (row.role or "member") if row is not None else "guest"

    @activity.defn(name="memory.remember")
    async def remember(self, request: ToolRequest) -> ToolResult:
        args = request.arguments
        body, expires = _text(args), _expiry(args)
        try:
            scope = MemoryScope(str(args.get("scope", "")))
        except ValueError:
            raise rejected("scope must be one of: me, channel, workspace") from None
        vectors = await embed(self._deps.http, self._deps.settings.llm, [body])
        workspace_id = uuid.UUID(request.workspace_id)
        async with tenant_transaction(self._sessions, workspace_id) as session:
            if (
                scope != MemoryScope.ME
                and await self._role(session, workspace_id, request.slack_user_id) == "guest"
            ):
                raise ApplicationError(GUEST_REFUSED, type="ToolRejected", non_retryable=True)
            memory_id, _ = await memories.add(
                session,
                workspace_id,
                memories.NewMemory(
                    scope=scope,
                    text=body,
                    author_slack_id=request.slack_user_id,
                    source_channel_id=request.slack_channel_id,
                    source_ts=request.thread_ts,
                    source_workflow_id=request.workflow_id,
                    source_key=idempotency_key(request.workflow_id, "memory", str(request.step)),
                    embedding=vectors[0] if vectors else None,
                    expires_at=expires,
                ),
            )
        return ToolResult(output=f"Remembered as memory {memory_id} (scope {scope.value}).")

    @activity.defn(name="memory.recall")
    async def recall(self, request: ToolRequest) -> ToolResult:
        query = " ".join(str(request.arguments.get("query", "")).split())[:500]
        if not query:
            raise rejected("`query` is empty: say what to look for")
        found = await recall_memories(self._deps, request, query, limit=RECALL_LIMIT)
        if not found:
            return ToolResult(output="No memory matches that.")
        return ToolResult(output="\n".join(line(m) for m in found))

    @activity.defn(name="memory.forget")
    async def forget(self, request: ToolRequest) -> ToolResult:
        memory_id = str(request.arguments.get("memory_id", ""))
        workspace_id = uuid.UUID(request.workspace_id)
        user = request.slack_user_id
        async with tenant_transaction(self._sessions, workspace_id) as session:
            row = await memories.get(session, workspace_id, memory_id)
            if row is None:
                return ToolResult(
                    output=f"There is no memory {memory_id[:40]} (already forgotten?).", ok=False
                )
            own = row.author_slack_id == user or (row.scope == MemoryScope.ME and row.scope_key == user)
            if not own and not is_admin(await self._role(session, workspace_id, user)):
                raise rejected("only its author or a workspace admin can forget that memory")
            await memories.forget(session, workspace_id, [row])
        return ToolResult(output=f"Forgot memory {memory_id}.")


async def recall_memories(
    deps: ToolDeps, request: ToolRequest, query: str, *, limit: int
) -> list[RecalledMemory]:
    vectors = await embed(deps.http, deps.settings.llm, [query])
    workspace_id = uuid.UUID(request.workspace_id)
    assert deps.sessions is not None
    async with tenant_transaction(deps.sessions, workspace_id) as session:
        user = await get_user(session=session, workspace_id=workspace_id, slack_user_id=request.slack_user_id)
        viewer = memories.Viewer(
            request.slack_user_id,
            request.slack_channel_id,
            workspace_scope=not (user and user.role == "guest"),
        )
        rows = await memories.search(
            session, workspace_id, viewer, query, limit=limit, embedding=vectors[0] if vectors else None
        )
        return [memories.shown(r) for r in rows]


def _build(deps: ToolDeps) -> MemoryActivities:
    return MemoryActivities(deps)


_SCOPE = {"type": "string", "enum": [s.value for s in MemoryScope]}
# What the three tools share: their activities' class, a short timeout, three attempts.
_COMMON: dict[str, Any] = {"build": _build, "timeout": timedelta(seconds=30), "retry": retry(3)}

REMEMBER = ToolSpec(
    name="remember",
    description=(
        "Remember a fact for later tasks, only when the requester asks you to. scope: `me` (only "
        "the requester), `channel` (everyone in this channel) or `workspace` (everyone; an admin "
        "approves it). Optional expires_in_days."
    ),
    parameters=schema(
        {"text": STRING, "scope": _SCOPE, "expires_in_days": {"type": "number"}}, ("text", "scope")
    ),
    activity=MemoryActivities.remember,
    **_COMMON,
    label="remember",
    label_arg="scope",
    risk=remember_risk,
    gate=remember_gate,
    trusted_output=True,
    acts_on="what Lucy remembers",
)
RECALL = ToolSpec(
    name="recall",
    description="Search what the team asked you to remember (yours, this channel's, the workspace's).",
    parameters=schema({"query": STRING}, ("query",)),
    activity=MemoryActivities.recall,
    **_COMMON,
    label="recall",
)
FORGET = ToolSpec(
    name="forget",
    description="Forget a memory by its id (the requester's own; an admin may forget any).",
    parameters=schema({"memory_id": STRING}, ("memory_id",)),
    activity=MemoryActivities.forget,
    **_COMMON,
    label="forget a memory",
    gate=forget_gate,
    trusted_output=True,
)
