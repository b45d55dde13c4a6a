"""The buttons and the list command of standing jobs, once for schedules and monitors.

Create / Cancel on a confirmation; Pause, Resume, Run now (Check now) and Delete on the list or
in App Home. The answer replaces the message the button was on (it is the clicker's own), or the
Home tab is published again (:mod:`capabilities.task.listeners.clicks`). A :class:`ListenerKind` says what
differs: the action ids, the service, how a Create reads its draft and what it answers.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.service import RPCError

from capabilities.proactive.contracts.schedules import StandingAction
from capabilities.proactive.mirror import StandingMirror
from capabilities.proactive.offers import Offer, OfferRefused
from capabilities.proactive.standing import Caller, ScheduleRefused, StandingService
from capabilities.task.listeners.clicks import Click, caller, ephemeral
from capabilities.task.listeners.deps import ListenerDeps, clicker_of, listener_deps
from lucy.logging import get_logger
from lucy.metrics import SLACK_EVENTS
from lucy.slack.text import escape_mrkdwn

log = get_logger(__name__)

# "<when>" then the request; Slack clients often turn straight quotes into curly ones.
_QUOTES = "\"'\u201c\u201d\u2018\u2019"
QUOTED = re.compile(rf"^[{_QUOTES}](?P<when>[^{_QUOTES}]+)[{_QUOTES}]\s+(?P<request>.+)$", re.DOTALL)
# (the "<when>" and the request, who asks, the channel, the minimum interval) -> the confirmation
MakeOffer = Callable[[str, str, Caller, str, timedelta], Offer]

DONE = {
    StandingAction.PAUSE: "Paused",
    StandingAction.RESUME: "Resumed",
    StandingAction.DELETE: "Deleted",
}


@dataclass(frozen=True)
class ListenerKind:
    """How one kind of standing job is handled in Slack."""

    noun: str  # "schedule" | "monitor"
    action_prefix: str  # + StandingAction: the buttons' action ids
    service: Callable[[ListenerDeps], StandingService[Any]]
    # (service, the Create button's value, who, request key) -> what to answer
    create: Callable[[Any, str, Caller, str], Awaitable[str]]
    listing: Callable[[list[Any], Caller], list[dict[str, Any]]]  # the list's blocks
    discarded: str  # the answer to Cancel on a confirmation
    started: str  # "Started a run of" | "Started a check of"


S = TypeVar("S", bound=StandingService[Any])


def service_of(cls: type[S], deps: ListenerDeps) -> S:
    """A kind's service, over the listener's sessions and Temporal client."""
    return cls(
        deps.sessions,
        StandingMirror(deps.temporal, task_queue=deps.settings.temporal.temporal_task_queue),
        min_interval=timedelta(seconds=deps.settings.limits.schedule_min_interval),
    )


async def on_offer_command(
    kind: ListenerKind,
    ack: AsyncAck,
    rest: str,
    command: dict[str, Any],
    context: AsyncBoltContext,
    *,
    usage: str,
    offer: MakeOffer,
) -> None:
    """``/lucy schedule "<when>" <request>`` or ``/lucy monitor "<every>" <condition>``: the
    confirmation, only for the caller (nothing exists until Create is clicked)."""
    deps = listener_deps(context)
    match = QUOTED.match(rest.strip())
    if not match:
        await ack(ephemeral(usage))
        return
    who = await caller(deps, context.client, str(command["team_id"]), str(command["user_id"]))
    if who.role == "guest":
        await ack(ephemeral(f"Guests can't create {kind.noun}s. Ask a member of this workspace."))
        return
    min_interval = timedelta(seconds=deps.settings.limits.schedule_min_interval)
    try:
        made = offer(
            match["when"].strip(), match["request"].strip(), who, str(command["channel_id"]), min_interval
        )
    except OfferRefused as refused:
        await ack(ephemeral(str(refused)))
        return
    await ack(ephemeral(made.text, made.blocks))


def channel_type(channel: str) -> str:
    """The type of the channel a command came from, as far as its id tells."""
    return "im" if channel.startswith("D") else "public"


async def on_list_command(
    kind: ListenerKind, ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    """``/lucy schedules`` or ``/lucy monitors``: the caller's (all of them for an admin)."""
    deps = listener_deps(context)
    who = await caller(deps, context.client, str(command["team_id"]), str(command["user_id"]))
    records = await kind.service(deps).visible_to(who)
    await ack(ephemeral(f"{len(records)} {kind.noun}(s)", kind.listing(records, who)))


def button_listener(kind: ListenerKind) -> Callable[..., Awaitable[None]]:
    """The Bolt listener of a kind's buttons (Bolt passes its arguments by these names)."""

    async def on_click(
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        await ack()
        deps = listener_deps(context)
        team, user = clicker_of(body, context)
        await on_button(kind, Click(body, respond, client, deps, team, user), action)

    return on_click


async def on_button(kind: ListenerKind, click: Click, action: dict[str, Any]) -> None:
    """A click on one of the kind's buttons (one that is not the kind's is ignored)."""
    body, deps, client, team, user = click.body, click.deps, click.client, click.team, click.user
    try:
        chosen = StandingAction(str(action.get("action_id", "")).removeprefix(kind.action_prefix))
    except ValueError:
        return
    if chosen == StandingAction.DISCARD:
        await click.done(kind.discarded)
        return
    who = await caller(deps, client, team, user)
    key = str(action.get("action_ts") or body.get("trigger_id") or uuid.uuid4())
    try:
        await _apply(kind, click, chosen, str(action.get("value") or ""), who, key)
    except ScheduleRefused as refused:
        await click.refused(str(refused))
    except RPCError as err:
        log.warning(
            f"Temporal refused a {kind.noun} change", error=err.__class__.__name__, action=chosen.value
        )
        await click.refused("I could not reach Temporal; please try again in a minute.")


async def _apply(
    kind: ListenerKind, click: Click, chosen: StandingAction, value: str, who: Caller, key: str
) -> None:
    """Create, or change one item and answer with what was done and the list again."""
    svc = kind.service(click.deps)
    if chosen == StandingAction.CREATE:
        await click.done(await kind.create(svc, value, who, key))
        SLACK_EVENTS.labels("block_actions", f"{kind.noun}_created").inc()
        return
    record = await svc.change(value, chosen, who, request_key=key)
    said = f"{DONE.get(chosen, kind.started)} *{escape_mrkdwn(record.name)}*."
    remaining = await svc.visible_to(who)
    await click.done(
        said, [{"type": "section", "text": {"type": "mrkdwn", "text": said}}, *kind.listing(remaining, who)]
    )


def parsed_draft(
    build: Callable[..., Any], fields: Callable[[str], dict[str, Any]], value: str, id_field: str
) -> Any:
    """The draft a Create button carried, or :class:`ScheduleRefused` when it is not one."""
    try:
        draft = build(**fields(value))
        uuid.UUID(getattr(draft, id_field))
    except (ValueError, TypeError, RecursionError):
        raise ScheduleRefused("That button is not valid.") from None
    return draft
