"""Email's own reads and writes: the AgentMail inboxes bound to live workspaces (binding one,
the list the email listener subscribes to, which workspace an inbox belongs to), and what the
``agentmail`` webhook deliveries say about a thread (its announcement, its tasks, the mail Lucy
ignored).

Read through ``lucy_email_inboxes()`` (SECURITY DEFINER, migration 0013): ids only, no tenant
data, because the application role cannot see other tenants' workspace rows. A binding is
unique across tenants by ``uq_workspaces_email_inbox`` (migration 0015), which no tenant-scoped
read could check: two workspaces binding one inbox at once cannot both win.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lucy.db.models import WebhookDelivery
from lucy.db.repositories.tenants import update_workspace_settings
from lucy.db.repositories.webhooks import InboxOwner, owner_of

UNIQUE_INBOX = "uq_workspaces_email_inbox"
_INBOX_OWNER = text("SELECT workspace_id, slack_team_id FROM lucy_email_inbox_workspace(:key) LIMIT 1")


async def email_inbox_owner(*, session: AsyncSession, inbox_id: str) -> InboxOwner | None:
    """The live workspace an AgentMail inbox is bound to (``lucy_email_inbox_workspace``,
    SECURITY DEFINER), or None."""
    return await owner_of(session=session, lookup=_INBOX_OWNER, key=inbox_id)


async def bind_inbox(*, session: AsyncSession, workspace_id: uuid.UUID, inbox_id: str) -> bool:
    """Bind ``inbox_id`` (lower-cased) to the workspace the transaction is scoped to; False when
    another live workspace holds it (the transaction stays usable: a savepoint is rolled back).
    Binding the workspace's own inbox again is a no-op that returns True."""
    try:
        async with session.begin_nested():
            await update_workspace_settings(
                session=session, workspace_id=workspace_id, values={"email_inbox": inbox_id.lower()}
            )
    except IntegrityError as exc:
        if UNIQUE_INBOX not in str(exc.orig):
            raise
        return False
    return True


async def bound_inboxes(*, session: AsyncSession) -> list[str]:
    """Every AgentMail inbox id bound with ``/lucy email connect`` (lower-cased, sorted)."""
    rows = await session.execute(text("SELECT inbox FROM lucy_email_inboxes() AS inbox"))
    return [str(r.inbox) for r in rows]


async def email_thread_announcement(
    *, session: AsyncSession, workspace_id: uuid.UUID, thread_id: str
) -> dict[str, Any] | None:
    """The payload of the delivery that announced an email thread in Slack (it holds
    ``slack_channel`` and ``slack_ts``), or None for a thread Lucy has not seen."""
    row = (
        await session.execute(
            select(WebhookDelivery.payload)
            .where(
                WebhookDelivery.workspace_id == workspace_id,
                WebhookDelivery.source == "agentmail",
                WebhookDelivery.payload["thread_id"].astext == thread_id,
                WebhookDelivery.payload.has_key("slack_ts"),
                WebhookDelivery.payload["reply"].astext.is_distinct_from("true"),
            )
            .order_by(WebhookDelivery.created_at)
            .limit(1)
        )
    ).scalar_one_or_none()
    return None if row is None else dict(row)


async def email_thread_tasks(
    *, session: AsyncSession, workspace_id: uuid.UUID, thread_id: str, since: datetime, excluding: str
) -> int:
    """How many deliveries of an email thread since ``since`` started a task (a new thread or a
    follow-up: each answers by mail), other than the message ``excluding``."""
    return int(
        (
            await session.execute(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(
                    WebhookDelivery.workspace_id == workspace_id,
                    WebhookDelivery.source == "agentmail",
                    WebhookDelivery.payload["thread_id"].astext == thread_id,
                    WebhookDelivery.payload["outcome"].astext.in_(("started", "followup")),
                    WebhookDelivery.created_at >= since,
                    WebhookDelivery.external_id != excluding,
                )
            )
        ).scalar_one()
    )


async def email_delivery_payload(
    *, session: AsyncSession, workspace_id: uuid.UUID, message_id: str
) -> dict[str, Any] | None:
    """The payload of the workspace's AgentMail delivery of ``message_id`` (None: none)."""
    row = (
        await session.execute(
            select(WebhookDelivery.payload).where(
                WebhookDelivery.workspace_id == workspace_id,
                WebhookDelivery.source == "agentmail",
                WebhookDelivery.external_id == message_id,
            )
        )
    ).scalar_one_or_none()
    return None if row is None else dict(row)


@dataclass(frozen=True)
class IgnoredMail:
    """How many mails Lucy ignored by itself, by why (App Home counts them)."""

    automatic: int = 0  # auto-replies, lists: never answered (a mail loop)
    forged: int = 0  # the sender could not be authenticated
    outside: int = 0  # from outside: shown in the notification channel, not answered

    @property
    def total(self) -> int:
        return self.automatic + self.forged + self.outside


async def ignored_mail(*, session: AsyncSession, workspace_id: uuid.UUID, since: datetime) -> IgnoredMail:
    """The workspace's AgentMail deliveries since ``since`` that were ignored, counted by the
    ``ignored`` kind the ingress recorded (the transaction must be scoped to the workspace)."""
    kind = WebhookDelivery.payload["ignored"].astext
    rows = await session.execute(
        select(kind, func.count())
        .where(
            WebhookDelivery.workspace_id == workspace_id,
            WebhookDelivery.source == "agentmail",
            WebhookDelivery.status == "ignored",
            WebhookDelivery.created_at >= since,
            kind.in_(("automatic", "forged", "outside")),
        )
        .group_by(kind)
    )
    return IgnoredMail(**{str(name): int(n) for name, n in rows.all()})
