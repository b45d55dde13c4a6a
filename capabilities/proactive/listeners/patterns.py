"""``/lucy patterns``, ``/lucy settings patterns on|off`` and the offer's Not now / Never buttons.

The offer's Create is the schedule's own button (:mod:`capabilities.proactive.listeners.schedules`).
Not now puts the pattern back to be offered after :data:`capabilities.proactive.patterns.NOT_NOW`;
Never dismisses it for good. Only the person the offer was for can answer it: the row is changed
only when its requester is the clicker (Slack's own id for who clicked, never the button's value).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond

from capabilities.proactive.offers import channel_type
from capabilities.proactive.patterns import NOT_NOW
from capabilities.proactive.repository import patterns as rows
from capabilities.proactive.views import patterns as views
from capabilities.task.listeners.clicks import ephemeral
from capabilities.task.listeners.deps import clicker_of, listener_deps
from lucy.contracts.ids import PATTERN_ACTION_PREFIX
from lucy.db.repositories.tenants import upsert_channel, upsert_user, upsert_workspace
from lucy.logging import get_logger
from lucy.metrics import SLACK_EVENTS
from lucy.roles import is_admin
from lucy.slack.text import slack_date

log = get_logger(__name__)
CHANNEL_USAGE = "`/lucy settings patterns-channel on` (in the channel; admins) or `... off`."
SETTING_USAGE = (
    "`/lucy settings patterns off` (I stop looking at your requests) or `/lucy settings patterns on`."
)


async def on_patterns_command(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """``/lucy patterns``: what Lucy noticed the caller ask regularly."""
    team, user = str(command["team_id"]), str(command["user_id"])
    async with listener_deps(context).sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        found = await rows.of_user(session=session, workspace_id=workspace_id, slack_user_id=user)
        done = await rows.scheduled(
            session=session, workspace_id=workspace_id, pattern_ids=[r.id for r in found]
        )
    lines = [
        views.PatternLine(
            description=r.description,
            request=str(r.data.get("request") or ""),
            slack_channel_id=str(r.data.get("slack_channel_id") or ""),
            occurrences=r.occurrences,
            status="accepted" if r.id in done else r.status,
            offer_after=r.offer_after,
        )
        for r in found
    ]
    await ack(ephemeral(f"{len(lines)} recurring request(s)", views.pattern_list(lines)))


async def on_patterns_setting(
    ack: AsyncAck, arg: str, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    """``/lucy settings patterns on|off``: the caller's own choice (anyone may set their own)."""
    value = arg.strip().lower()
    if value not in ("on", "off"):
        await ack(ephemeral(SETTING_USAGE))
        return
    team, user = str(command["team_id"]), str(command["user_id"])
    async with listener_deps(context).sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        user_id = await upsert_user(session=session, workspace_id=workspace_id, slack_user_id=user)
        await rows.set_preference(
            session=session, workspace_id=workspace_id, user_id=user_id, on=value == "on"
        )
    log.info("patterns setting changed", value=value)
    words = (
        "I will notice requests you repeat and offer to schedule them"
        if value == "on"
        else ("I will not look at your requests for recurring ones, nor offer to schedule them")
    )
    await ack(ephemeral(f"Done: {words}."))


async def on_channel_setting(
    ack: AsyncAck, arg: str, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    """``/lucy settings patterns-channel on|off`` in a channel (admins): whether it is scanned."""
    value = arg.strip().lower()
    team, user, channel = str(command["team_id"]), str(command["user_id"]), str(command["channel_id"])
    if value not in ("on", "off"):
        await ack(ephemeral(CHANNEL_USAGE))
        return
    deps = listener_deps(context)
    profile = await deps.directory.get(context.client, team, user)
    if not is_admin(profile.role if profile else None):
        await ack(
            ephemeral("Only a workspace admin can choose which channels I look at for recurring requests.")
        )
        return
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        channel_id = await upsert_channel(
            session=session,
            workspace_id=workspace_id,
            slack_channel_id=channel,
            channel_type=channel_type(channel),
        )
        await rows.set_monitored(
            session=session, workspace_id=workspace_id, channel_id=channel_id, on=value == "on"
        )
    log.info("patterns channel setting changed", value=value)
    words = "now look" if value == "on" else "no longer look"
    await ack(ephemeral(f"Done: I will {words} for recurring requests in <#{channel}>."))


async def on_pattern_button(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    context: AsyncBoltContext,
    respond: AsyncRespond,
) -> None:
    """Not now / Never on an offer."""
    await ack()
    team, user = clicker_of(body, context)
    chosen = str(action.get("action_id", "")).removeprefix(PATTERN_ACTION_PREFIX)
    try:
        pattern_id = uuid.UUID(str(action.get("value") or ""))
    except ValueError:
        pattern_id = None
    if chosen not in (views.LATER, views.NEVER) or pattern_id is None or not user:
        SLACK_EVENTS.labels("block_actions", "malformed").inc()
        await respond(text="That button is not valid.", replace_original=False, response_type="ephemeral")
        return
    later = datetime.now(UTC) + NOT_NOW
    async with listener_deps(context).sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        moved = await rows.set_status(
            session=session,
            workspace_id=workspace_id,
            pattern_id=pattern_id,
            status="dismissed" if chosen == views.NEVER else "detected",
            slack_user_id=user,
            offer_after=later if chosen == views.LATER else None,
        )
    if not moved:
        await respond(
            text="That offer is not yours to answer.", replace_original=False, response_type="ephemeral"
        )
        return
    SLACK_EVENTS.labels("block_actions", f"pattern_{chosen}").inc()
    said = (
        "OK, I won't offer to schedule this again."
        if chosen == views.NEVER
        else f"OK, not now. If you keep asking, I may offer again after {slack_date(later)}."
    )
    await respond(text=said, replace_original=True)


def register(app: AsyncApp) -> None:
    app.action(re.compile(f"^{PATTERN_ACTION_PREFIX}"))(on_pattern_button)
