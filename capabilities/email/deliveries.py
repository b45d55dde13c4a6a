"""An inbound mail's record in ``webhook_deliveries`` (source ``agentmail``): claimed by its
AgentMail message id, finished with a status and a payload later steps read back, or recorded
``ignored`` at once; and the earlier announcement of the same email thread."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from capabilities.email.message import InboundEmail, metadata
from capabilities.email.repository import email_thread_announcement
from capabilities.triggers.deliveries import ignored
from lucy.db.repositories.tenants import set_tenant, tenant_transaction, workspace_settings
from lucy.db.repositories.webhooks import DeliveryClaim, claim_delivery

SOURCE = "agentmail"


async def _claim(
    session: Any,
    workspace_id: Any,
    external_id: str,
    event_type: str | None,
    payload: dict[str, Any],
    now: datetime,
) -> DeliveryClaim:
    """Claim the delivery (as the workspace, under row-level security) in ``session``."""
    await set_tenant(session=session, workspace_id=workspace_id)
    return await claim_delivery(
        session=session,
        workspace_id=workspace_id,
        source=SOURCE,
        external_id=external_id,
        event_type=event_type,
        payload=payload,
        now=now,
    )


async def claim(
    sessions: Any, workspace_id: Any, email: InboundEmail, event_type: str, now: datetime
) -> tuple[DeliveryClaim, dict[str, Any]]:
    """Claim the delivery of ``email`` and read the workspace's settings, in one transaction."""
    async with sessions.begin() as session:
        claimed = await _claim(session, workspace_id, email.message_id, event_type, metadata(email), now)
        settings = await workspace_settings(session=session, workspace_id=workspace_id)
    return claimed, settings


async def record_ignored(
    sessions: Any,
    workspace_id: Any,
    external_id: str,
    event_type: str | None,
    reason: str,
    now: datetime,
    email: InboundEmail | None = None,
) -> None:
    """Record a delivery nothing is done for as ``ignored`` (once: a redelivery changes nothing)."""
    async with sessions.begin() as session:
        claim = await _claim(
            session, workspace_id, external_id, event_type, metadata(email) if email else {}, now
        )
        if claim.claimed:
            await ignored(session, workspace_id, claim, reason, now)


async def thread_announcement(sessions: Any, workspace_id: Any, thread_id: str) -> dict[str, Any] | None:
    """Where the email thread was announced in Slack before, or None for a new thread."""
    async with tenant_transaction(sessions, workspace_id) as session:
        return await email_thread_announcement(
            session=session, workspace_id=workspace_id, thread_id=thread_id
        )
