"""The task's context, read once when it starts (so the workflow never reads anything itself).

The workspace, channel and user (names, time zone, preferences), the approval policy of the
workspace and channel, which tools this deployment has configured, and for a follow-up in a
thread whose task ended, the thread's earlier conversation.

Policy lives in JSONB settings (all optional):

* ``workspaces.settings``: ``approvers`` (Slack user ids), ``allow_self_approval`` (bool),
  ``approval_ttl_hours`` (number), ``approval_required_tools`` (tool names), ``model_tier``;
* ``channels.settings``: ``require_approval`` (bool), ``approvers``, ``model_tier``;
* ``users.preferences``: ``model_tier``;
* the feature flag ``approvals.all_tools``: every tool call in the workspace needs approval.

A requester whose role is ``guest`` (a restricted account, or a Slack Connect user from
another organisation, as the ingress recorded it from ``users.info``) gets no tools.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
import httpx
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from capabilities.delegate.contracts import sub_context
from capabilities.email.activities.attachments import read_attachments
from capabilities.mcp import repository as mcp_servers
from capabilities.memory.activities.recall import starting_memories
from capabilities.skills.activities import USE_SKILL
from capabilities.skills.repository import skill_offers
from capabilities.task.contracts.task import TaskContext, TaskContextRequest
from capabilities.task.repository import get_task
from capabilities.tools.activities import registry
from capabilities.tools.activities.liveness import keeps_beating
from capabilities.tools.contracts import truncate_output
from capabilities.tools.spec import NEEDS_BROWSER, NEEDS_SLACK
from lucy.contracts.ids import TaskSource
from lucy.contracts.llm import ChatMessage, ModelTier, untrusted_message
from lucy.db.repositories.tenants import (
    get_channel,
    get_user,
    get_workspace,
    is_feature_enabled,
    tenant_transaction,
)
from lucy.settings import Settings

APPROVE_ALL_FLAG = "approvals.all_tools"  # feature flag: every tool call waits for a person
THREAD_HISTORY_MESSAGES = 30
_PROBE_TTL_S = 60.0


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value if isinstance(v, str) and v] if isinstance(value, list) else []


def _tier(*candidates: Any) -> ModelTier | None:
    for value in candidates:
        if isinstance(value, str) and value in list(ModelTier):
            return ModelTier(value)
    return None


def local_time(timezone: str, now: datetime) -> tuple[str, str]:
    """(the zone actually used, "Saturday 21 November 2026, 14:05") for a user's time zone."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        timezone, zone = "UTC", ZoneInfo("UTC")
    return timezone, now.astimezone(zone).strftime("%A %d %B %Y, %H:%M")


class ContextActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        slack: AsyncWebClient | None,
        http: httpx.AsyncClient,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._slack = slack
        self._http = http
        self._browser_probe: tuple[float, bool] | None = None

    async def _browser_up(self) -> bool:
        """Whether CamoFox answers its health check (cached for a minute)."""
        now = time.monotonic()
        if self._browser_probe is not None and now - self._browser_probe[0] < _PROBE_TTL_S:
            return self._browser_probe[1]
        try:
            response = await self._http.get(f"{self._settings.tools.camofox_url}/health", timeout=2.0)
            up = response.status_code < 500
        except httpx.HTTPError:
            up = False
        self._browser_probe = (now, up)
        return up

    async def _met(self, need: str) -> bool:
        """Whether a tool's requirement holds: a Slack client, CamoFox up, or a tool setting set."""
        if need == NEEDS_SLACK:
            return self._slack is not None
        if need == NEEDS_BROWSER:
            return await self._browser_up()
        value = getattr(self._settings.tools, need)  # a misspelt requirement fails loudly
        return value is not None and value is not False

    async def _available_tools(self) -> list[str]:
        """The registered tools whose requirements this deployment meets, in registry order."""
        needs = {need for spec in registry.TOOLS.values() for need in spec.requires}
        met = {need for need in sorted(needs) if await self._met(need)}
        return registry.TOOLS.available(met.__contains__)

    async def _offered_tools(self, user: Any, skills: dict[str, str]) -> list[str]:
        """The tools the task may offer: none for a guest (or someone from another organisation),
        ``use_skill`` only when the workspace has an enabled skill."""
        if user is not None and user.role == "guest":
            return []
        return [t for t in await self._available_tools() if t != USE_SKILL.name or skills]

    async def _thread_history(self, request: TaskContextRequest) -> list[ChatMessage]:
        task = request.task
        if self._slack is None or not task.thread_ts:
            return []
        try:
            response = await self._slack.conversations_replies(
                channel=task.slack_channel_id, ts=task.thread_ts, limit=200
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            # The follow-up still runs, only without its history; say so in the log.
            activity.logger.warning("thread history unavailable", extra={"error": exc.__class__.__name__})
            return []
        history: list[ChatMessage] = []
        for message in response.get("messages") or []:
            if message.get("ts") == task.message_ts:
                continue
            text, _ = truncate_output(str(message.get("text") or ""), 2_000)
            if not text:
                continue
            author = str(message.get("user") or "?")
            if message.get("bot_id"):
                history.append(ChatMessage(role="assistant", content=text))
            elif author == task.slack_user_id:
                history.append(ChatMessage(role="user", content=f"<@{author}>: {text}"))
            else:  # someone else's words: information for the model, never instructions
                history.append(untrusted_message(author, text, intro="Earlier in the thread,"))
        return history[-THREAD_HISTORY_MESSAGES:]

    def _ttl_seconds(self, ws_settings: dict[str, Any]) -> int:
        """How long an approval waits: the workspace's ``approval_ttl_hours``, else the setting."""
        ttl_hours = ws_settings.get("approval_ttl_hours")
        if not isinstance(ttl_hours, int | float) or ttl_hours <= 0:
            ttl_hours = self._settings.limits.approval_ttl_hours
        return max(60, int(float(ttl_hours) * 3600))

    @activity.defn(name="context.prepare")
    @keeps_beating  # a worker killed mid-read is noticed within seconds (options.CONTEXT)
    async def prepare(self, request: TaskContextRequest) -> TaskContext:
        """Read the task's context (a read: it writes nothing)."""
        task = request.task
        workspace_id = uuid.UUID(task.workspace_id)
        async with tenant_transaction(self._sessions, workspace_id) as session:
            workspace = await get_workspace(session=session, workspace_id=workspace_id)
            user = await get_user(
                session=session, workspace_id=workspace_id, slack_user_id=task.slack_user_id
            )
            channel = await _channel_of(session, workspace_id, task.channel_id)
            row = await get_task(session=session, workspace_id=workspace_id, workflow_id=request.workflow_id)
            approve_everything = await is_feature_enabled(
                session=session, workspace_id=workspace_id, flag_key=APPROVE_ALL_FLAG
            )
            skills = await skill_offers(session, workspace_id)
            workspace_tools = await mcp_servers.workspace_tools(session=session, workspace_id=workspace_id)
        ws_settings: dict[str, Any] = dict(workspace.settings or {}) if workspace else {}
        ch_settings: dict[str, Any] = dict(channel.settings or {}) if channel else {}
        preferences: dict[str, Any] = dict(user.preferences or {}) if user else {}
        timezone, now_there = local_time((user.timezone if user else None) or "UTC", datetime.now(UTC))
        approvers = _strings(ch_settings.get("approvers")) or _strings(ws_settings.get("approvers"))
        guest = user is not None and user.role == "guest"
        recalled = await starting_memories(self._sessions, self._http, self._settings.llm, task, guest=guest)
        context = TaskContext(
            task_id=str(row.id) if row else "",
            workspace_name=(workspace.name or "") if workspace else "",
            channel_name=(channel.name or "") if channel and channel.channel_type != "im" else "",
            user_name=((user.display_name or user.real_name or "") if user else ""),
            user_timezone=timezone,
            local_time=f"{now_there} ({timezone})",
            # Guests and people from other organisations get answers, never tools.
            available_tools=await self._offered_tools(user, skills),
            workspace_tools=[] if guest else workspace_tools,
            tier_override=_tier(
                preferences.get("model_tier"), ch_settings.get("model_tier"), ws_settings.get("model_tier")
            ),
            # A task from email: every tool call waits for a person (its request is from outside).
            channel_requires_approval=approve_everything
            or task.source == TaskSource.EMAIL.value
            or bool(ch_settings.get("require_approval", False)),
            self_approval_allowed=bool(ws_settings.get("allow_self_approval", False)),
            approval_ttl_seconds=self._ttl_seconds(ws_settings),
            approver_slack_ids=approvers,
            approval_required_tools=_strings(ws_settings.get("approval_required_tools")),
            max_steps=self._settings.limits.agent_max_steps,
            skills=skills,
            thread_history=[
                *(await self._thread_history(request) if request.with_thread_history else []),
                *await read_attachments(self._settings.tools, self._http, task.email),
            ],
            memories=recalled.text,
            memories_from_others=recalled.from_others,
        )
        return sub_context(context, task.delegation, self._settings.limits.delegate_max_parallel)


async def _channel_of(session: Any, workspace_id: uuid.UUID, channel_id: str) -> Any:
    """The task's channel row, or None for a task with no channel (a webhook's)."""
    if not channel_id:
        return None
    return await get_channel(session=session, workspace_id=workspace_id, channel_id=uuid.UUID(channel_id))
