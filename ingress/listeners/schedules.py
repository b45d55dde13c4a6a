"""``/lucy schedule``, ``/lucy schedules`` and the schedule buttons.

``/lucy schedule "<when>" <request>`` answers only the caller with what would be scheduled
(the recurrence in plain words, the time zone, the channel, the next three runs) and Create /
Cancel buttons: nothing exists until Create is clicked. ``/lucy schedules`` lists the caller's
schedules (an admin's list holds the workspace's) with Pause/Resume, Run now and Delete. The
rules (who may change what) are :mod:`lucy.proactive.service`'s; the blocks are
:mod:`lucy.slack.schedules`'.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.service import RPCError

from ingress.deps import ListenerDeps, listener_deps
from lucy.contracts import SCHEDULE_ACTION_PREFIX, ScheduleAction
from lucy.db.repositories.schedules import ScheduleRecord
from lucy.logging import get_logger
from lucy.metrics import SLACK_EVENTS
from lucy.proactive import recurrence
from lucy.proactive.mirror import ScheduleMirror
from lucy.proactive.service import Caller, ScheduleDraft, ScheduleRefused, ScheduleService, draft_recurrence
from lucy.roles import is_admin
from lucy.slack import schedules as views
from lucy.slack.text import escape_mrkdwn

log = get_logger(__name__)

# "<when>" then the request; Slack clients often turn straight quotes into curly ones.
_QUOTES = "\"'\u201c\u201d\u2018\u2019"
QUOTED = re.compile(rf"^[{_QUOTES}](?P<when>[^{_QUOTES}]+)[{_QUOTES}]\s+(?P<request>.+)$", re.DOTALL)
UNAVAILABLE = (
    "I saved the schedule, but could not reach Temporal to set it up; it will be set up within 15 minutes."
)


def service(deps: ListenerDeps) -> ScheduleService:
    return ScheduleService(
        deps.sessions,
        ScheduleMirror(deps.temporal, task_queue=deps.settings.temporal.temporal_task_queue),
        min_interval=timedelta(seconds=deps.settings.limits.schedule_min_interval),
    )


async def caller(deps: ListenerDeps, client: AsyncWebClient, team: str, user: str) -> Caller:
    profile = await deps.directory.get(client, team, user)
    return Caller(
        slack_team_id=team,
        slack_user_id=user,
        role=profile.role if profile else None,
        timezone=(profile.timezone if profile and profile.timezone else "UTC"),
    )


def _ephemeral(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"response_type": "ephemeral", "text": text}
    if blocks is not None:
        answer["blocks"] = blocks
    return answer


async def on_schedule_command(
    ack: AsyncAck, rest: str, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    """``/lucy schedule "<when>" <request>``: the confirmation, only for the caller."""
    deps = listener_deps(context)
    team, user, channel = str(command["team_id"]), str(command["user_id"]), str(command["channel_id"])
    match = QUOTED.match(rest.strip())
    if not match:
        await ack(_ephemeral(views.USAGE))
        return
    who = await caller(deps, context.client, team, user)
    if who.role == "guest":
        await ack(_ephemeral("Guests can't create schedules. Ask a member of this workspace."))
        return
    draft = ScheduleDraft(
        schedule_id=str(uuid.uuid4()),
        when=match["when"].strip(),
        timezone=who.timezone,
        request=match["request"].strip(),
        slack_channel_id=channel,
        channel_type="im" if channel.startswith("D") else "public",
    )
    now = datetime.now(UTC)
    min_interval = timedelta(seconds=deps.settings.limits.schedule_min_interval)
    try:
        when = draft_recurrence(draft, min_interval=min_interval, now=now)
        blocks = views.confirmation(
            draft=dataclasses.asdict(draft),
            request=draft.request,
            recurrence=when,
            channel=channel,
            next_runs=recurrence.next_runs(when, after=now),
        )
    except recurrence.RecurrenceError as err:
        await ack(_ephemeral(str(err)))
        return
    except ValueError:
        await ack(_ephemeral("That request is too long to schedule; shorten it to about 1,500 characters."))
        return
    await ack(_ephemeral(f"Schedule this task? {when.description}", blocks))


async def on_schedules_command(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """``/lucy schedules``: the caller's schedules (all of them for an admin), with buttons."""
    deps = listener_deps(context)
    who = await caller(deps, context.client, str(command["team_id"]), str(command["user_id"]))
    records = await service(deps).visible_to(who)
    await ack(_ephemeral(f"{len(records)} schedule(s)", _list(records, who)))


def _list(records: list[ScheduleRecord], who: Caller) -> list[dict[str, Any]]:
    return views.schedule_list([line_of(r) for r in records], admin_view=is_admin(who.role))


def line_of(record: ScheduleRecord) -> views.ScheduleLine:
    return views.ScheduleLine(
        schedule_id=str(record.id),
        name=record.name,
        description=record.recurrence.description,
        timezone=record.recurrence.timezone,
        owner_slack_id=record.owner_slack_id,
        slack_channel_id=record.slack_channel_id,
        active=record.is_active,
        paused_reason=record.paused_reason,
        next_run_at=record.next_run_at,
        last_outcome=record.last_outcome,
    )


async def on_schedule_button(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
    respond: AsyncRespond,
) -> None:
    """Create / Cancel on a confirmation; Pause, Resume, Run now, Delete on the list. The
    answer replaces the message the button was on (it is the clicker's own)."""
    await ack()
    deps = listener_deps(context)
    team = str((body.get("team") or {}).get("id") or context.team_id or "")
    user = str((body.get("user") or {}).get("id") or "")
    try:
        kind = ScheduleAction(str(action.get("action_id", "")).removeprefix(SCHEDULE_ACTION_PREFIX))
    except ValueError:
        return
    if kind == ScheduleAction.DISCARD:
        await respond(text="OK, nothing was scheduled.", replace_original=True)
        return
    who = await caller(deps, client, team, user)
    key = str(action.get("action_ts") or body.get("trigger_id") or uuid.uuid4())
    svc = service(deps)
    try:
        if kind == ScheduleAction.CREATE:
            text = await _create(svc, str(action.get("value") or ""), who, key)
            await respond(text=text, replace_original=True)
            SLACK_EVENTS.labels("block_actions", "schedule_created").inc()
            return
        record = await svc.change(str(action.get("value") or ""), kind, who, request_key=key)
    except ScheduleRefused as refused:
        await respond(text=str(refused), replace_original=False, response_type="ephemeral")
        return
    except RPCError as err:
        log.warning("Temporal refused a schedule change", error=err.__class__.__name__, action=kind.value)
        await respond(
            text="I could not reach Temporal; please try again in a minute.", replace_original=False
        )
        return
    done = {
        ScheduleAction.PAUSE: "Paused",
        ScheduleAction.RESUME: "Resumed",
        ScheduleAction.RUN_NOW: "Started a run of",
        ScheduleAction.DELETE: "Deleted",
    }[kind]
    remaining = await svc.visible_to(who)
    await respond(
        text=f"{done} *{escape_mrkdwn(record.name)}*.",
        blocks=[
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"{done} *{escape_mrkdwn(record.name)}*."},
            },
            *_list(remaining, who),
        ],
        replace_original=True,
    )


async def _create(svc: ScheduleService, value: str, who: Caller, key: str) -> str:
    try:
        fields = views.draft_value(value)
        draft = ScheduleDraft(**fields)
        uuid.UUID(draft.schedule_id)
    except (ValueError, TypeError, RecursionError):
        raise ScheduleRefused("That button is not valid.") from None
    try:
        record = await svc.create(draft, who, request_key=key)
    except RPCError:
        return UNAVAILABLE
    created = await svc.get(who.slack_team_id, draft.schedule_id)
    return views.created_text(line_of(created or record))


def register(app: AsyncApp) -> None:
    app.action(re.compile(f"^{SCHEDULE_ACTION_PREFIX}"))(on_schedule_button)
