"""``/lucy email``, ``/lucy settings email-channel`` and ``/lucy settings email-outsiders``:
which AgentMail inbox brings mail to this workspace, where it is announced, and what happens to
mail from people who are not members.

* ``/lucy email``: the inbox bound to the workspace and the notification channel (anyone).
* ``/lucy email connect <inbox_id>`` (admins only): bind an AgentMail inbox of Lucy's AgentMail
  organisation (asked with ``inboxes.get``); an inbox bound to another workspace (unique in the
  database, so two racing connects cannot both win), an inbox AgentMail does not know for Lucy's
  key, and Lucy's shared send-from inbox ``lucy@<LUCY_AGENTMAIL_DOMAIN>`` are refused.
* ``/lucy settings email-channel #channel`` (admins only): announce mail there instead of the
  first of ``#talk-to-lucy``, ``#lucy-my-ai``, ``#lucy``, ``#general``.
* ``/lucy settings email-outsiders ignore|accept`` (admins only): mail from an address that is no
  member's is ignored (the default) or becomes a task marked from outside, whose every tool step
  and whose email reply wait for an approval.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext

from capabilities.email.agentmail import inbox_in_organisation
from capabilities.email.repository import bind_inbox, email_inbox_owner
from capabilities.email.sender import OUTSIDERS, OUTSIDERS_KEY, outsiders_policy
from capabilities.task.listeners.deps import listener_deps
from lucy.db.repositories.tenants import update_workspace_settings, upsert_workspace, workspace_settings
from lucy.logging import get_logger
from lucy.roles import is_admin
from lucy.slack.text import escape_mrkdwn

log = get_logger(__name__)

NOT_ADMIN = "Only a workspace admin can change where Lucy's email goes."
SHARED_INBOX = (
    "That is Lucy's shared send-from inbox: it can't be bound to a workspace. Use an inbox of your own."
)
NOT_OURS = (
    "`{inbox}` isn't one of Lucy's AgentMail inboxes (AgentMail doesn't know it for Lucy's "
    "organisation). Create it in Lucy's AgentMail organisation first, then connect it."
)
UNCHECKED = "I couldn't check that inbox with AgentMail just now, so nothing changed. Try again shortly."
TAKEN = "`{inbox}` is already bound to another workspace, so it can't be bound here."
_INBOX = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,189}\.[A-Za-z]{2,}$")
_CHANNEL = re.compile(r"^(?:<#(C[A-Z0-9]{2,20})(?:\|[^>]*)?>|(C[A-Z0-9]{2,20})|#?([a-z0-9_-]{1,80}))$")
USAGE = (
    "`/lucy email` shows where mail comes in; `/lucy email connect <inbox>` (admins) binds an "
    "AgentMail inbox; `/lucy settings email-channel #channel` (admins) picks where mail is announced; "
    "`/lucy settings email-outsiders ignore|accept` (admins) says what happens to mail from non-members."
)
OUTSIDER_WORDS = {
    "ignore": "mail from anyone who is not a member of this workspace is ignored",
    "accept": (
        "mail from people outside this workspace becomes a task marked from outside; its every tool "
        "step and its email reply wait for an approval"
    ),
}


SETTINGS_USAGE = (
    "Usage: `/lucy settings email-channel #channel` or `/lucy settings email-outsiders ignore|accept` "
    "or `/lucy settings skills admins-only|everyone` or `/lucy settings patterns on|off` "
    "or `/lucy settings patterns-channel on|off`"
)


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


async def _show(team: str, context: AsyncBoltContext) -> str:
    deps = listener_deps(context)
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        settings = await workspace_settings(session=session, workspace_id=workspace_id)
    inbox, channel = settings.get("email_inbox"), settings.get("email_channel")
    where = (
        f"<#{channel}>"
        if channel
        else "found automatically: the first of #talk-to-lucy, #lucy-my-ai, #lucy, #general"
    )
    if not inbox:
        return f"No AgentMail inbox is bound to this workspace yet. {USAGE}"
    outsiders = outsiders_policy(settings)
    return (
        f"Mail to `{escape_mrkdwn(str(inbox))}` becomes a task here. Notification channel: {where}. "
        f"Outside senders (`email-outsiders {outsiders}`): {OUTSIDER_WORDS[outsiders]}. Members get "
        "the answer as an email reply too."
    )


async def _admin(team: str, user: str, context: AsyncBoltContext) -> bool:
    profile = await listener_deps(context).directory.get(context.client, team, user)
    return is_admin(profile.role if profile else None)


async def on_email_show(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """``/lucy email``: the inbox bound to the workspace and where mail is announced (anyone)."""
    await ack(_ephemeral(await _show(str(command["team_id"]), context)))


async def on_email_connect(
    ack: AsyncAck, arg: str, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    """``/lucy email connect <inbox>`` (admins only)."""
    team, user = str(command["team_id"]), str(command["user_id"])
    if not _INBOX.match(arg.strip()):
        await ack(_ephemeral(USAGE))
        return
    if not await _admin(team, user, context):
        await ack(_ephemeral(NOT_ADMIN))
        return
    inbox = arg.strip().lower()
    await ack(_ephemeral(await _connect(team, user, inbox, context)))


async def _connect(team: str, user: str, inbox: str, context: AsyncBoltContext) -> str:
    """Bind ``inbox`` to the team's workspace, or say in plain words why not."""
    deps = listener_deps(context)
    shown = escape_mrkdwn(inbox)
    if inbox == f"lucy@{deps.settings.tools.agentmail_domain}".lower():  # send_email's sender
        return SHARED_INBOX
    ours = await inbox_in_organisation(deps.settings.tools, inbox)
    if ours is None:
        return UNCHECKED
    if not ours:
        return NOT_OURS.format(inbox=shown)
    async with deps.sessions.begin() as session:
        owner = await email_inbox_owner(session=session, inbox_id=inbox)
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        taken = owner is not None and owner.workspace_id != workspace_id
        if taken or not await bind_inbox(session=session, workspace_id=workspace_id, inbox_id=inbox):
            return TAKEN.format(inbox=shown)
    log.info("email inbox bound", inbox_id=inbox, by=user)
    return f"Done: mail to `{shown}` now becomes a task here."


async def on_email_channel_setting(
    ack: AsyncAck, arg: str, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    """``/lucy settings email-channel #channel`` (admins only)."""
    team, user = str(command["team_id"]), str(command["user_id"])
    match = _CHANNEL.match(arg.strip())
    if match is None:
        await ack(_ephemeral(SETTINGS_USAGE))
        return
    if not await _admin(team, user, context):
        await ack(_ephemeral(NOT_ADMIN))
        return
    channel = match.group(1) or match.group(2)
    if channel is None:  # a name: find its id
        page = await context.client.conversations_list(
            types="public_channel", exclude_archived=True, limit=1000
        )
        channel = next(
            (str(c["id"]) for c in page.get("channels") or [] if c.get("name") == match.group(3)), None
        )
    if channel is None:
        await ack(_ephemeral(f"I can't find a public channel #{escape_mrkdwn(match.group(3))}."))
        return
    deps = listener_deps(context)
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        await update_workspace_settings(
            session=session, workspace_id=workspace_id, values={"email_channel": channel}
        )
    log.info("email channel set", channel=channel, by=user)
    await ack(_ephemeral(f"Done: mail is announced in <#{channel}> (invite me there if I'm not in it)."))


async def on_email_outsiders_setting(
    ack: AsyncAck, arg: str, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    """``/lucy settings email-outsiders ignore|accept`` (admins only)."""
    team, user, value = str(command["team_id"]), str(command["user_id"]), arg.strip().lower()
    if value not in OUTSIDERS:
        await ack(_ephemeral(SETTINGS_USAGE))
        return
    if not await _admin(team, user, context):
        await ack(_ephemeral(NOT_ADMIN))
        return
    deps = listener_deps(context)
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        await update_workspace_settings(
            session=session, workspace_id=workspace_id, values={OUTSIDERS_KEY: value}
        )
    log.info("email outsiders setting changed", value=value, by=user)
    await ack(_ephemeral(f"Done: {OUTSIDER_WORDS[value]}."))
