"""The buttons on a notice of mail from outside (:mod:`capabilities.email.outside`): **Let Lucy
draft a reply** starts a task run as the clicker, **Ignore sender** adds the address to the
workspace's ignored senders. Each click is re-verified: the clicker must be a member of the
workspace (``users.info`` through the directory; not a guest), and the mail is read from the
clicker's own workspace's delivery row by the button's message id, never from the click."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from capabilities.email.message import InboundEmail, quoted_request
from capabilities.email.outside import (
    DRAFT_ACTION,
    IGNORE_ACTION,
    IGNORED_SENDERS_KEY,
    MAX_IGNORED_SENDERS,
    decided_blocks,
    ignored_senders,
    outside_email,
)
from capabilities.email.repository import email_delivery_payload
from capabilities.email.sender import origin
from capabilities.task.listeners.clicks import Click
from capabilities.task.listeners.deps import ListenerDeps, clicker_of, listener_deps
from capabilities.task.listeners.directory import SlackUser
from capabilities.task.listeners.start import SlackMessage
from lucy.contracts.ids import TaskSource, email_workflow_id
from lucy.db.repositories.tenants import update_workspace_settings, upsert_workspace, workspace_settings
from lucy.logging import get_logger
from lucy.slack.text import escape_mrkdwn

log = get_logger(__name__)

MEMBERS_ONLY = "Only a member of this workspace (not a guest) can decide about mail from outside."
GONE = "I can't find that mail any more."
DECIDERS = ("owner", "admin", "member")


async def _payload(deps: ListenerDeps, team: str, message_id: str) -> dict[str, Any] | None:
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        payload = await email_delivery_payload(
            session=session, workspace_id=workspace_id, message_id=message_id[:255]
        )
    return payload if payload and payload.get("notice_ts") else None


async def on_outside_mail_button(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
    respond: AsyncRespond,
) -> None:
    """Let Lucy draft a reply / Ignore sender, for a member only."""
    await ack()
    deps = listener_deps(context)
    team, user = clicker_of(body, context)
    click = Click(body, respond, client, deps, team, user)
    profile = await deps.directory.get(client, team, user)
    if profile is None or profile.role not in DECIDERS:
        await click.refused(MEMBERS_ONLY)
        return
    payload = await _payload(deps, team, str(action.get("value") or ""))
    if payload is None:
        await click.refused(GONE)
        return
    shown = (body.get("message") or {}).get("blocks") or []
    if action.get("action_id") == IGNORE_ACTION:
        said = await _ignore(deps, team, str(payload.get("from") or ""), user)
    else:
        said = await _draft(deps, team, user, profile, payload)
    await click.done(said, decided_blocks(shown, said))


async def _ignore(deps: ListenerDeps, team: str, address: str, user: str) -> str:
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        settings = await workspace_settings(session=session, workspace_id=workspace_id)
        senders = ignored_senders(settings)
        if address and address not in senders:
            senders = [*senders, address][-MAX_IGNORED_SENDERS:]
            await update_workspace_settings(
                session=session, workspace_id=workspace_id, values={IGNORED_SENDERS_KEY: senders}
            )
    log.info("outside sender ignored", by=user)
    return f":no_bell: <@{user}> chose to ignore mail from {escape_mrkdwn(address or 'this sender')}."


async def _draft(
    deps: ListenerDeps, team: str, user: str, profile: SlackUser, payload: dict[str, Any]
) -> str:
    email = outside_email(payload)
    channel, ts = str(payload["notice_channel"]), str(payload["notice_ts"])
    outcome = await deps.starter.start(_draft_message(team, user, profile, email, channel, ts))
    if outcome.refused:
        return outcome.refused
    log.info("draft of a reply to outside mail started", workflow_id=outcome.workflow_id, by=user)
    return (
        f":pencil: <@{user}> asked Lucy to draft a reply, in this thread. Nothing is sent until a "
        "person approves its exact text."
    )


def _draft_message(
    team: str, user: str, profile: SlackUser, email: InboundEmail, channel: str, ts: str
) -> SlackMessage:
    return SlackMessage(
        team_id=team,
        user_id=user,
        channel_id=channel,
        channel_type="channel",
        ts=ts,
        thread_ts=ts,
        text=quoted_request(email, reply=False),
        source=TaskSource.EMAIL.value,
        workflow_id=email_workflow_id(team, email.thread_id, email.message_id),
        display_name=profile.display_name,
        role=profile.role,
        email=origin(email, None, []),  # not a member's mail: the reply waits for an approval
    )


def register(app: AsyncApp) -> None:
    app.action(DRAFT_ACTION)(on_outside_mail_button)
    app.action(IGNORE_ACTION)(on_outside_mail_button)
