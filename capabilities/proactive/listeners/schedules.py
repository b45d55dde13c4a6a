"""``/lucy schedule``, ``/lucy schedules`` and the schedule buttons.

``/lucy schedule "<when>" <request>`` answers only the caller with what would be scheduled
(the recurrence in plain words, the time zone, the channel, the next three runs) and Create /
Cancel buttons: nothing exists until Create is clicked. ``/lucy schedules`` lists the caller's
schedules (an admin's list holds the workspace's) with Pause/Resume, Run now and Delete. The
rules (who may change what) are :mod:`capabilities.proactive.service`'s; the blocks are
:mod:`capabilities.proactive.views.schedules`'.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.service import RPCError

from capabilities.proactive.listeners import schedule_modal, standing
from capabilities.proactive.offers import Offer, schedule_offer
from capabilities.proactive.repository.schedules import ScheduleRecord
from capabilities.proactive.service import ScheduleDraft, ScheduleService
from capabilities.proactive.standing import Caller, ScheduleRefused
from capabilities.proactive.views import schedules as views
from capabilities.task.listeners.clicks import caller, ephemeral
from capabilities.task.listeners.deps import ListenerDeps, listener_deps
from lucy.contracts.ids import SCHEDULE_ACTION_PREFIX
from lucy.roles import is_admin
from lucy.slack.text import escape_mrkdwn, slack_date

UNAVAILABLE = (
    "I saved the schedule, but could not reach Temporal to set it up; it will be set up within 15 minutes."
)


def service(deps: ListenerDeps) -> ScheduleService:
    return standing.service_of(ScheduleService, deps)


async def on_schedule_command(
    ack: AsyncAck, rest: str, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    """``/lucy schedule "<when>" <request>``: the confirmation, only for the caller; with no text,
    the modal (:mod:`capabilities.proactive.listeners.schedule_modal`); ``backfill <id> <from> <to>`` re-runs
    a
    missed window."""
    deps = listener_deps(context)
    team, user = str(command["team_id"]), str(command["user_id"])
    if not rest.strip():
        await schedule_modal.open_modal(ack, command, context)
        return
    if rest.split()[0].lower() == "backfill":
        await ack(ephemeral(await _backfill(deps, context.client, team, user, rest.split()[1:])))
        return
    await standing.on_offer_command(KIND, ack, rest, command, context, usage=views.USAGE, offer=_offer)


def _offer(when: str, request: str, who: Caller, channel: str, min_interval: timedelta) -> Offer:
    draft = ScheduleDraft(
        schedule_id=str(uuid.uuid4()),
        when=when,
        timezone=who.timezone,
        request=request,
        slack_channel_id=channel,
        channel_type=standing.channel_type(channel),
    )
    return schedule_offer(draft, min_interval=min_interval, now=datetime.now(UTC))


async def on_schedules_command(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """``/lucy schedules``: the caller's schedules (all of them for an admin), with buttons."""
    await standing.on_list_command(KIND, ack, command, context)


def _list(records: list[ScheduleRecord], who: Caller) -> list[dict[str, Any]]:
    return views.schedule_list([views.line_of(r) for r in records], admin_view=is_admin(who.role))


async def _create(svc: ScheduleService, value: str, who: Caller, key: str) -> str:
    draft = standing.parsed_draft(ScheduleDraft, views.draft_value, value, "schedule_id")
    try:
        record = await svc.create(draft, who, request_key=key)
    except RPCError:
        return UNAVAILABLE
    created = await svc.get(who.slack_team_id, draft.schedule_id)
    return views.created_text(views.line_of(created or record))


KIND = standing.ListenerKind(
    noun="schedule",
    action_prefix=SCHEDULE_ACTION_PREFIX,
    service=service,
    create=_create,
    listing=_list,
    discarded="OK, nothing was scheduled.",
    started="Started a run of",
)
# Create / Cancel on a confirmation; Pause, Resume, Run now, Delete on the list or in App Home.
on_schedule_button = standing.button_listener(KIND)


BACKFILL_USAGE = (
    "To re-run a missed window: `/lucy schedule backfill <schedule id> <from> <to>`, with dates "
    "(`2026-03-01`) or times (`2026-03-01T09:00`) in your time zone. The id is in `/lucy schedules`."
)


async def _backfill(deps: ListenerDeps, client: AsyncWebClient, team: str, user: str, args: list[str]) -> str:
    if len(args) != 3:
        return BACKFILL_USAGE
    who = await caller(deps, client, team, user)
    try:
        zone = ZoneInfo(who.timezone)
        start, end = (_moment(a, zone) for a in args[1:])
    except (ValueError, ZoneInfoNotFoundError):
        return f"I could not read those dates. {BACKFILL_USAGE}"
    try:
        record, runs = await service(deps).backfill(
            args[0], start, end, who, request_key=f"backfill:{args[0]}:{start.isoformat()}:{end.isoformat()}"
        )
    except ScheduleRefused as refused:
        return str(refused)
    except RPCError:
        return "I could not reach Temporal; please try again in a minute."
    return (
        f"Re-running {runs} run(s) of *{escape_mrkdwn(record.name)}* due between "
        f"{slack_date(start)} and {slack_date(end)}; each answers in <#{record.slack_channel_id}>."
    )


def _moment(text: str, zone: ZoneInfo) -> datetime:
    """``2026-03-01`` (midnight) or ``2026-03-01T09:00``, in the caller's time zone."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def register(app: AsyncApp) -> None:
    app.action(re.compile(f"^{SCHEDULE_ACTION_PREFIX}"))(on_schedule_button)
    app.view(views.MODAL_CALLBACK_ID)(schedule_modal.on_submit)
