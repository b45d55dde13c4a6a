"""``/lucy monitor``, ``/lucy monitors`` and the monitor buttons.

``/lucy monitor "<every N minutes>" <condition>`` answers only the caller with what would be
watched, how often and where alerts go, and Create / Cancel buttons: nothing exists until Create
is clicked. ``/lucy monitors`` lists the caller's monitors (an admin's list holds the
workspace's) with Pause/Resume, Check now and Delete. The rules are
:mod:`lucy.proactive.monitors`'; the blocks are :mod:`lucy.slack.monitors`'.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.service import RPCError

from ingress.deps import ListenerDeps, listener_deps
from ingress.listeners.clicks import Click, caller, ephemeral
from ingress.listeners.schedules import QUOTED
from lucy.contracts import MONITOR_ACTION_PREFIX, MonitorAction
from lucy.db.repositories.monitors import MonitorRecord
from lucy.logging import get_logger
from lucy.metrics import SLACK_EVENTS
from lucy.proactive import conditions
from lucy.proactive.mirror import StandingMirror
from lucy.proactive.monitors import MonitorDraft, MonitorService
from lucy.proactive.offers import OfferRefused, monitor_offer
from lucy.proactive.standing import Caller, ScheduleRefused
from lucy.roles import is_admin
from lucy.slack import monitors as views
from lucy.slack.text import escape_mrkdwn

log = get_logger(__name__)


def service(deps: ListenerDeps) -> MonitorService:
    return MonitorService(
        deps.sessions,
        StandingMirror(deps.temporal, task_queue=deps.settings.temporal.temporal_task_queue),
        min_interval=timedelta(seconds=deps.settings.limits.schedule_min_interval),
    )


async def on_monitor_command(
    ack: AsyncAck, rest: str, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    """``/lucy monitor "<every>" <condition>``: the confirmation, only for the caller."""
    deps = listener_deps(context)
    team, user, channel = str(command["team_id"]), str(command["user_id"]), str(command["channel_id"])
    match = QUOTED.match(rest.strip())
    if not match:
        await ack(ephemeral(conditions.USAGE))
        return
    who = await caller(deps, context.client, team, user)
    if who.role == "guest":
        await ack(ephemeral("Guests can't create monitors. Ask a member of this workspace."))
        return
    draft = MonitorDraft(
        monitor_id=str(uuid.uuid4()),
        every=match["when"].strip(),
        condition=match["request"].strip(),
        slack_channel_id=channel,
        channel_type="im" if channel.startswith("D") else "public",
    )
    min_interval = timedelta(seconds=deps.settings.limits.schedule_min_interval)
    try:
        offer = monitor_offer(draft, min_interval=min_interval)
    except OfferRefused as refused:
        await ack(ephemeral(str(refused)))
        return
    await ack(ephemeral(offer.text, offer.blocks))


async def on_monitors_command(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """``/lucy monitors``: the caller's monitors (all of them for an admin), with buttons."""
    deps = listener_deps(context)
    who = await caller(deps, context.client, str(command["team_id"]), str(command["user_id"]))
    records = await service(deps).visible_to(who)
    await ack(ephemeral(f"{len(records)} monitor(s)", _list(records, who)))


def _list(records: list[MonitorRecord], who: Caller) -> list[dict[str, Any]]:
    return views.monitor_list(
        [views.line_of(r) for r in records], admin_view=is_admin(who.role), usage=conditions.USAGE
    )


async def on_monitor_button(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
    respond: AsyncRespond,
) -> None:
    """Create / Cancel on a confirmation; Pause, Resume, Check now, Delete on the list."""
    await ack()
    deps = listener_deps(context)
    team = str((body.get("team") or {}).get("id") or context.team_id or "")
    user = str((body.get("user") or {}).get("id") or "")
    click = Click(body, respond, client, deps, team, user)
    try:
        kind = MonitorAction(str(action.get("action_id", "")).removeprefix(MONITOR_ACTION_PREFIX))
    except ValueError:
        return
    if kind == MonitorAction.DISCARD:
        await click.done("OK, no monitor was created.")
        return
    who = await caller(deps, client, team, user)
    key = str(action.get("action_ts") or body.get("trigger_id") or uuid.uuid4())
    svc = service(deps)
    value = str(action.get("value") or "")
    try:
        if kind == MonitorAction.CREATE:
            try:
                draft = MonitorDraft(**views.draft_value(value))
                uuid.UUID(draft.monitor_id)
            except (ValueError, TypeError, RecursionError):
                raise ScheduleRefused("That button is not valid.") from None
            record = await svc.create(draft, who, request_key=key)
            every = views.every_words(record.every_seconds)
            text = (
                f":white_check_mark: Watching *{escape_mrkdwn(record.name)}* {every}; "
                f"alerts go to <#{record.slack_channel_id}>."
            )
            await click.done(text)
            SLACK_EVENTS.labels("block_actions", "monitor_created").inc()
            return
        record = await svc.change(value, kind, who, request_key=key)
    except ScheduleRefused as refused:
        await click.refused(str(refused))
        return
    except RPCError as err:
        log.warning("Temporal refused a monitor change", error=err.__class__.__name__, action=kind.value)
        await click.refused("I could not reach Temporal; please try again in a minute.")
        return
    done = {
        MonitorAction.PAUSE: "Paused",
        MonitorAction.RESUME: "Resumed",
        MonitorAction.RUN_NOW: "Started a check of",
        MonitorAction.DELETE: "Deleted",
    }[kind]
    said = f"{done} *{escape_mrkdwn(record.name)}*."
    remaining = await svc.visible_to(who)
    await click.done(
        said, [{"type": "section", "text": {"type": "mrkdwn", "text": said}}, *_list(remaining, who)]
    )


def register(app: AsyncApp) -> None:
    app.action(re.compile(f"^{MONITOR_ACTION_PREFIX}"))(on_monitor_button)
