"""The agent's ``schedule_task`` and ``create_monitor`` tools: they only *offer*.

In conversation ("every Monday at 10 post a summary of this channel") the model may propose a
schedule or a monitor. The tool shows the requester the same confirmation as ``/lucy schedule``
and ``/lucy monitor`` (an ephemeral message in the task's thread, with Create and Cancel) and
tells the model that nothing exists until the person clicks Create: the model can never create
one itself. The draft's id is derived from the task and the step, so a retried activity offers
the same draft and two Create clicks create one schedule. A "when" or a condition Lucy cannot
read goes back to the model as a failed tool result, with the examples, to fix or to ask about.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio import activity

from capabilities.proactive.monitors import MonitorDraft
from capabilities.proactive.offers import Offer, OfferRefused, monitor_offer, schedule_offer
from capabilities.proactive.service import ScheduleDraft
from capabilities.tools.activities.http_errors import rejected
from capabilities.tools.activities.slack_history import (
    require_slack,
    slack_transport_error,
    tool_error_from_slack,
)
from capabilities.tools.contracts import ToolRequest, ToolResult
from capabilities.tools.deps import ToolDeps
from capabilities.tools.spec import NEEDS_SLACK, STRING, ToolSpec, retry, schema
from lucy.settings import LimitSettings

_DRAFTS = uuid.UUID("5b0c7f8e-3c55-4d0e-9f3c-6f1d3c0a9e21")  # namespace of tool-offered drafts


class ProactiveToolActivities:
    def __init__(self, slack: AsyncWebClient | None, limits: LimitSettings) -> None:
        self._slack = slack
        self._min_interval = timedelta(seconds=limits.schedule_min_interval)

    @activity.defn(name="tools.schedule_task")
    async def schedule_task(self, request: ToolRequest) -> ToolResult:
        """Offer the requester a recurring task (``when``, ``request``) to confirm."""
        when, what = _text(request, "when"), _text(request, "request")
        slack = require_slack(self._slack)
        draft = ScheduleDraft(
            schedule_id=str(_draft_id(request)),
            when=when,
            timezone=await self._timezone(slack, request.slack_user_id),
            request=what,
            slack_channel_id=request.slack_channel_id,
            channel_type="im" if request.slack_channel_id.startswith("D") else "public",
        )
        try:
            offer = schedule_offer(draft, min_interval=self._min_interval, now=datetime.now(UTC))
        except OfferRefused as refused:
            return ToolResult(output=f"Not offered: {refused}", ok=False, state=dict(request.state))
        return await self._offer(slack, request, offer, "schedule")

    @activity.defn(name="tools.create_monitor")
    async def create_monitor(self, request: ToolRequest) -> ToolResult:
        """Offer the requester a monitor (``every``, ``condition``) to confirm."""
        draft = MonitorDraft(
            monitor_id=str(_draft_id(request)),
            every=_text(request, "every"),
            condition=_text(request, "condition"),
            slack_channel_id=request.slack_channel_id,
            channel_type="im" if request.slack_channel_id.startswith("D") else "public",
        )
        slack = require_slack(self._slack)
        try:
            offer = monitor_offer(draft, min_interval=self._min_interval)
        except OfferRefused as refused:
            return ToolResult(output=f"Not offered: {refused}", ok=False, state=dict(request.state))
        return await self._offer(slack, request, offer, "monitor")

    async def _offer(
        self, slack: AsyncWebClient, request: ToolRequest, offer: Offer, what: str
    ) -> ToolResult:
        if not request.slack_channel_id or not request.slack_user_id:
            raise rejected(f"{what}: this task has no Slack channel and person to ask")
        try:
            await slack.chat_postEphemeral(
                channel=request.slack_channel_id,
                user=request.slack_user_id,
                thread_ts=request.thread_ts or None,
                text=offer.text,
                blocks=offer.blocks,
            )
        except SlackApiError as exc:
            raise tool_error_from_slack(exc, "chat.postEphemeral") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise slack_transport_error(exc, "chat.postEphemeral") from exc
        return ToolResult(
            output=(
                f"I showed the requester a confirmation of this {what} ({offer.description}). It does NOT "
                "exist yet: it is created only if they click Create. Tell them to check it; do not say "
                f"the {what} was created."
            ),
            state=dict(request.state),
        )

    async def _timezone(self, slack: AsyncWebClient, user: str) -> str:
        """The requester's Slack time zone (a schedule's times are theirs); UTC if unknown."""
        try:
            response = await slack.users_info(user=user)
        except (SlackApiError, aiohttp.ClientError, TimeoutError):
            return "UTC"
        tz = (response.get("user") or {}).get("tz")
        return tz if isinstance(tz, str) and tz else "UTC"


def _draft_id(request: ToolRequest) -> uuid.UUID:
    return uuid.uuid5(_DRAFTS, f"{request.workflow_id}:{request.step}")


def _text(request: ToolRequest, name: str) -> str:
    value = request.arguments.get(name)
    if not isinstance(value, str) or not value.strip():
        raise rejected(f"{request.tool}: '{name}' must be a non-empty string")
    return value.strip()


# --------------------------------------------------------------------------- the tools


def _build(deps: ToolDeps) -> ProactiveToolActivities:
    return ProactiveToolActivities(deps.slack, deps.settings.limits)


def _offer_tool(**spec: Any) -> ToolSpec:
    """An offer: it only shows the requester a confirmation (Lucy's own words come back)."""
    return ToolSpec(
        build=_build,
        timeout=timedelta(seconds=30),
        retry=retry(4),
        trusted_output=True,
        requires=(NEEDS_SLACK,),
        **spec,
    )


SCHEDULE_TASK = _offer_tool(
    name="schedule_task",
    description="Offer the requester a recurring task in this channel. It only shows them a "
    "confirmation: nothing is scheduled until they click Create. when: 'every weekday at 9:00', "
    "'every 2 hours', 'every monday at 10:00', 'every month on the 1st at 09:00' or a 5-field cron "
    "expression (their time zone). request: what to do each time, as they would ask it.",
    parameters=schema({"when": STRING, "request": STRING}, ("when", "request")),
    activity=ProactiveToolActivities.schedule_task,
    label="schedule offer",
    label_arg="when",
)
CREATE_MONITOR = _offer_tool(
    name="create_monitor",
    description="Offer the requester a monitor that checks something at a fixed interval and "
    "alerts this channel. It only shows them a confirmation: nothing exists until they click "
    "Create. every: 'every 15 minutes', 'every hour'. condition: 'health <url> [within 2000ms]', "
    "'metric <url> <json.path> <op> <number>', 'schedule <schedule id>' or 'ask [<url>] <yes/no "
    "question>' (yes = alert).",
    parameters=schema({"every": STRING, "condition": STRING}, ("every", "condition")),
    activity=ProactiveToolActivities.create_monitor,
    label="monitor offer",
    label_arg="condition",
)
