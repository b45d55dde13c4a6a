"""Where inbound mail goes in Slack and when it is no longer answered: the workspace's
notification channel for email, the announcement posted there, and the per-thread cap on tasks
started by mail (a loop breaker: a member's auto-responder answering Lucy's reply would
otherwise start a follow-up that mails the member, whose auto-responder answers again, ...).

The cap is counted in PostgreSQL (``webhook_deliveries`` of the thread whose outcome was
``started`` or ``followup``: each such task answers by mail), so it holds across ingress
replicas and restarts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from capabilities.email.message import InboundEmail
from capabilities.email.repository import email_thread_tasks
from capabilities.email.sender import AttachmentLimits, limit_attachments
from lucy.db.repositories.tenants import tenant_transaction
from lucy.slack.text import escape_mrkdwn

# The seed's "Email Listener Auto-Discovery" order.
NOTIFICATION_CHANNELS = ("talk-to-lucy", "lucy-my-ai", "lucy", "general")
MAX_THREAD_TASKS = 5  # tasks (each answered by mail) per email thread within THREAD_WINDOW
THREAD_WINDOW = timedelta(hours=24)
CAPPED_NOTE = (
    f":no_entry_sign: I am not answering this mail: this email thread already had {MAX_THREAD_TASKS} "
    "answers in the last 24 hours (an auto-responder loop?). Reply here in Slack if it needs an answer."
)


async def thread_capped(sessions: Any, workspace_id: Any, email: InboundEmail) -> bool:
    """Whether the mail's email thread already had :data:`MAX_THREAD_TASKS` tasks within
    :data:`THREAD_WINDOW` (the mail itself not counted)."""
    async with tenant_transaction(sessions, workspace_id) as session:
        done = await email_thread_tasks(
            session=session,
            workspace_id=workspace_id,
            thread_id=email.thread_id,
            since=datetime.now(UTC) - THREAD_WINDOW,
            excluding=email.message_id,
        )
    return done >= MAX_THREAD_TASKS


async def notification_channel(slack: AsyncWebClient | None, settings: dict[str, Any]) -> str:
    """The notification channel: the admin's choice, else the seed's order of names ("" when
    none exists)."""
    chosen = settings.get("email_channel")
    if isinstance(chosen, str) and chosen:
        return chosen
    assert slack is not None
    found: dict[str, str] = {}
    cursor: str | None = None
    for _ in range(20):  # pages of 1,000 channels
        page = await slack.conversations_list(
            types="public_channel", exclude_archived=True, limit=1000, cursor=cursor
        )
        for ch in page.get("channels") or []:
            if isinstance(ch, dict) and ch.get("name") in NOTIFICATION_CHANNELS:
                found.setdefault(str(ch["name"]), str(ch["id"]))
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            break
    return next((found[name] for name in NOTIFICATION_CHANNELS if name in found), "")


def announcement(email: InboundEmail, limits: AttachmentLimits, *, reply: bool = False) -> str:
    """The notification channel's line for a mail that reaches a task (its sender and subject
    escaped), with each attachment the task does not get and why."""
    who = escape_mrkdwn(email.sender or email.address or "an unknown sender")
    subject = escape_mrkdwn(email.subject or "(no subject)")
    refused = [f for f in limit_attachments(email.files, limits) if f.refused]
    over = "".join(
        f"\n:warning: The attachment {escape_mrkdwn(f.filename)} is not given to the task: {f.refused}."
        for f in refused[:10]
    )
    if reply:
        return f":incoming_envelope: A reply in this email thread from {who}: *{subject}*{over}"
    return (
        f":incoming_envelope: Email to {escape_mrkdwn(email.inbox_id)} from {who}: *{subject}*\n"
        f"I'm looking at it here; its content is from outside and is treated as information only.{over}"
    )
