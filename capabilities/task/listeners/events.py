"""Events API listeners: mentions and direct messages become tasks.

Listeners map a payload to a :class:`~capabilities.task.listeners.start.SlackMessage` and hand it to the
``TaskStarter`` found in the Bolt context; they ack only after the start was accepted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from capabilities.task.listeners.assistant import set_working
from capabilities.task.listeners.deps import listener_deps
from capabilities.task.listeners.directory import UNVERIFIED, SlackUser, requester_role
from capabilities.task.listeners.start import SlackMessage, StartOutcome, TaskStarter, strip_bot_mention
from lucy.contracts.ids import TaskSource
from lucy.logging import get_logger

log = get_logger(__name__)

DEACTIVATED = "Sorry, I can only work for active members of this workspace."

# Message subtypes that are not a person asking something new (edits, deletes, joins, bots...).
_IGNORED_SUBTYPES_ALLOWED: frozenset[str] = frozenset({"file_share", "thread_broadcast"})


def _is_direct_message(event: dict[str, Any]) -> bool:
    return event.get("channel_type") == "im"


def _is_from_a_person(event: dict[str, Any]) -> bool:
    subtype = event.get("subtype")
    if subtype and subtype not in _IGNORED_SUBTYPES_ALLOWED:
        return False
    return not event.get("bot_id") and bool(event.get("user"))


async def _start(
    *,
    event: dict[str, Any],
    body: dict[str, Any],
    context: AsyncBoltContext,
    source: TaskSource,
    client: AsyncWebClient,
) -> None:
    deps = listener_deps(context)
    team_id = body.get("team_id") or event.get("team") or context.team_id
    text = strip_bot_mention(str(event.get("text") or ""), context.bot_user_id)
    if not (team_id and event.get("channel") and event.get("ts")):
        log.warning("event without team, channel or ts ignored", event_id=body.get("event_id"))
        return
    profile = await deps.directory.get(client, str(team_id), str(event["user"]))
    if profile is not None and profile.deleted:
        log.info("request from a deactivated user refused")
        await tell_user(client, channel=str(event["channel"]), user=str(event["user"]), text=DEACTIVATED)
        return
    thread_ts = event.get("thread_ts")
    in_thread = bool(thread_ts) and thread_ts != event.get("ts")
    if in_thread and await _reached_thread(deps.starter, event, str(team_id), text, source):
        return
    message = _message(event, str(team_id), text, source, profile, in_thread=in_thread)
    outcome = await deps.starter.start(message)
    await _after_start(client, event, source, outcome, unverified=profile is None)


def _role(profile: SlackUser | None, event: dict[str, Any], team_id: str) -> str:
    """The requester's role; a Slack Connect user from another organisation is a guest."""
    role = requester_role(profile)
    user_team = event.get("user_team") or (event.get("user_profile") or {}).get("team")
    if user_team and str(user_team) != str(team_id):
        role = "guest"  # a Slack Connect user from another organisation: no tools, no approvals
    return role


async def _reached_thread(
    starter: TaskStarter, event: dict[str, Any], team_id: str, text: str, source: TaskSource
) -> bool:
    """Route a thread message: True when nothing starts (the thread's running task got it, or
    it is chatter in a thread that is not Lucy's)."""
    routed = await starter.route_reply(
        team_id=team_id,
        channel_id=str(event["channel"]),
        thread_ts=str(event.get("thread_ts")),
        user_id=str(event["user"]),
        text=text,
        ts=str(event["ts"]),
    )
    if routed == "delivered":
        return True
    return routed is None and source is TaskSource.THREAD_REPLY  # chatter in a thread that is not Lucy's


def _message(
    event: dict[str, Any],
    team_id: str,
    text: str,
    source: TaskSource,
    profile: SlackUser | None,
    *,
    in_thread: bool,
) -> SlackMessage:
    """The task request an event makes."""
    return SlackMessage(
        team_id=team_id,
        user_id=str(event["user"]),
        channel_id=str(event["channel"]),
        channel_type=str(event.get("channel_type") or ("channel" if source is TaskSource.MENTION else "im")),
        ts=str(event["ts"]),
        thread_ts=event.get("thread_ts"),
        text=text,
        source=source.value,
        display_name=profile.display_name if profile else None,
        role=_role(profile, event, team_id),
        timezone=profile.timezone if profile else None,
        with_thread_history=in_thread,
    )


async def _after_start(
    client: AsyncWebClient,
    event: dict[str, Any],
    source: TaskSource,
    outcome: StartOutcome,
    *,
    unverified: bool,
) -> None:
    """Tell the requester what they need to know once the start was accepted: an unverified
    profile, the DM thread's working status, a refusal."""
    thread_ts = event.get("thread_ts")
    if outcome.started and unverified:
        await tell_user(
            client,
            channel=str(event["channel"]),
            user=str(event["user"]),
            text=UNVERIFIED,
            thread_ts=str(thread_ts or event["ts"]),  # where the answer goes
        )
    if outcome.started and source is TaskSource.DM and thread_ts:
        await set_working(client, channel=str(event["channel"]), thread_ts=str(thread_ts))
    if outcome.refused:
        await tell_user(
            client,
            channel=str(event["channel"]),
            user=str(event["user"]),
            text=outcome.refused,
            thread_ts=thread_ts,
        )


async def tell_user(
    client: AsyncWebClient, *, channel: str, user: str, text: str, thread_ts: str | None = None
) -> None:
    """An ephemeral note to one user; a failure to deliver it is logged, never raised (the
    event has been handled and must still be acknowledged)."""
    try:
        await client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
    except Exception as exc:
        log.warning("could not tell the user", error=exc.__class__.__name__)


def _starting(source: TaskSource, doc: str) -> Callable[..., Awaitable[None]]:
    """A listener that starts a task from a person's message, then acknowledges (Bolt passes
    its arguments by name)."""

    async def listener(
        event: dict[str, Any],
        body: dict[str, Any],
        context: AsyncBoltContext,
        ack: AsyncAck,
        client: AsyncWebClient,
    ) -> None:
        if _is_from_a_person(event):
            await _start(event=event, body=body, context=context, source=source, client=client)
        await ack()

    listener.__doc__ = doc
    return listener


on_app_mention = _starting(TaskSource.MENTION, "``@Lucy ...`` in a channel: start a task, then acknowledge.")
on_direct_message = _starting(TaskSource.DM, "A DM to Lucy from a person: start a task, then acknowledge.")


async def on_other_message(
    event: dict[str, Any],
    body: dict[str, Any],
    context: AsyncBoltContext,
    ack: AsyncAck,
    client: AsyncWebClient,
) -> None:
    """Channel messages. A person's reply in the thread of a Lucy task reaches that task (or,
    when it has ended, starts a follow-up with the thread as context); a reply that mentions
    Lucy is left to ``app_mention``. Everything else (chatter, edits, bots) is acknowledged and
    ignored, so that Slack does not retry it."""
    thread_ts = event.get("thread_ts")
    mentions_lucy = bool(context.bot_user_id) and f"<@{context.bot_user_id}>" in str(event.get("text") or "")
    if _is_from_a_person(event) and thread_ts and thread_ts != event.get("ts") and not mentions_lucy:
        await _start(event=event, body=body, context=context, source=TaskSource.THREAD_REPLY, client=client)
    await ack()


def register(app: AsyncApp) -> None:
    app.event("app_mention")(on_app_mention)

    async def direct(event: dict[str, Any]) -> bool:
        return _is_direct_message(event)

    app.event("message", matchers=[direct])(on_direct_message)
    app.event("message")(on_other_message)
