"""``/lucy monitor``, ``/lucy monitors`` and the monitor buttons.

``/lucy monitor "<every N minutes>" <condition>`` answers only the caller with what would be
watched, how often and where alerts go, and Create / Cancel buttons: nothing exists until Create
is clicked. ``/lucy monitors`` lists the caller's monitors (an admin's list holds the
workspace's) with Pause/Resume, Check now and Delete. The rules are
:mod:`capabilities.proactive.monitors`'; the blocks are :mod:`capabilities.proactive.views.monitors`'.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from capabilities.proactive import conditions
from capabilities.proactive.listeners import standing
from capabilities.proactive.monitors import MonitorDraft, MonitorService
from capabilities.proactive.offers import Offer, monitor_offer
from capabilities.proactive.repository.monitors import MonitorRecord
from capabilities.proactive.standing import Caller
from capabilities.proactive.views import monitors as views
from capabilities.task.listeners.deps import ListenerDeps
from lucy.contracts.ids import MONITOR_ACTION_PREFIX
from lucy.roles import is_admin
from lucy.slack.text import escape_mrkdwn


def service(deps: ListenerDeps) -> MonitorService:
    return standing.service_of(MonitorService, deps)


async def on_monitor_command(
    ack: AsyncAck, rest: str, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    """``/lucy monitor "<every>" <condition>``: the confirmation, only for the caller."""
    await standing.on_offer_command(KIND, ack, rest, command, context, usage=conditions.USAGE, offer=_offer)


def _offer(every: str, condition: str, who: Caller, channel: str, min_interval: timedelta) -> Offer:
    draft = MonitorDraft(
        monitor_id=str(uuid.uuid4()),
        every=every,
        condition=condition,
        slack_channel_id=channel,
        channel_type=standing.channel_type(channel),
    )
    return monitor_offer(draft, min_interval=min_interval)


async def on_monitors_command(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """``/lucy monitors``: the caller's monitors (all of them for an admin), with buttons."""
    await standing.on_list_command(KIND, ack, command, context)


def _list(records: list[MonitorRecord], who: Caller) -> list[dict[str, Any]]:
    return views.monitor_list(
        [views.line_of(r) for r in records], admin_view=is_admin(who.role), usage=conditions.USAGE
    )


async def _create(svc: MonitorService, value: str, who: Caller, key: str) -> str:
    draft = standing.parsed_draft(MonitorDraft, views.draft_value, value, "monitor_id")
    record = await svc.create(draft, who, request_key=key)
    every = views.every_words(record.every_seconds)
    return (
        f":white_check_mark: Watching *{escape_mrkdwn(record.name)}* {every}; "
        f"alerts go to <#{record.slack_channel_id}>."
    )


KIND = standing.ListenerKind(
    noun="monitor",
    action_prefix=MONITOR_ACTION_PREFIX,
    service=service,
    create=_create,
    listing=_list,
    discarded="OK, no monitor was created.",
    started="Started a check of",
)
# Create / Cancel on a confirmation; Pause, Resume, Run now, Delete on the list or in App Home.
on_monitor_button = standing.button_listener(KIND)


def register(app: AsyncApp) -> None:
    app.action(re.compile(f"^{MONITOR_ACTION_PREFIX}"))(on_monitor_button)
