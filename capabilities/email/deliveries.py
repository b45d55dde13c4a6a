"""An inbound mail's record in ``webhook_deliveries`` (source ``agentmail``): claimed by its
AgentMail message id, finished with a status and a payload later steps read back, or recorded
``ignored`` at once; and the earlier announcement of the same email thread."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from capabilities.email.message import InboundEmail, metadata
from capabilities.email.repository import email_thread_announcement
from lucy.db.repositories.tenants import set_tenant, workspace_settings
from lucy.db.repositories.webhooks import (
    DeliveryClaim,
    claim_delivery,
    finish_delivery,
    finish_delivery_as_tenant,
)

SOURCE = "agentmail"


async def claim(
    sessions: Any, workspace_id: Any, email: InboundEmail, event_type: str, now: datetime
) -> tuple[DeliveryClaim, dict[str, Any]]:
    """Claim the delivery of ``email`` and read the workspace's settings, in one transaction."""
    async with sessions.begin() as session:
        await set_tenant(session=session, workspace_id=workspace_id)
        claimed = await claim_delivery(
            session=session,
            workspace_id=workspace_id,
            source=SOURCE,
            external_id=email.message_id,
            event_type=event_type,
            payload=metadata(email),
            now=now,
        )
        settings = await workspace_settings(session=session, workspace_id=workspace_id)
    return claimed, settings


async def finish(
    sessions: Any,
    workspace_id: Any,
    claim: DeliveryClaim,
    status: str,
    *,
    error: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Record the delivery's ``status``; a new ``payload`` is also put into ``claim`` so that
    later steps of this attempt see it."""
    await finish_delivery_as_tenant(
        sessions,
        workspace_id=workspace_id,
        claim=claim,
        status=status,
        now=datetime.now(UTC),
        error=error,
        payload=payload,
    )
    if payload is not None and payload is not claim.payload:
        claim.payload.clear()
        claim.payload.update(payload)  # later steps of this attempt see it


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
        await set_tenant(session=session, workspace_id=workspace_id)
        claim = await claim_delivery(
            session=session,
            workspace_id=workspace_id,
            source=SOURCE,
            external_id=external_id,
            event_type=event_type,
            payload=metadata(email) if email else {},
            now=now,
        )
        if claim.claimed:
            await finish_delivery(
                session=session,
                workspace_id=workspace_id,
                claim=claim,
                status="ignored",
                now=now,
                error=reason[:500],
            )


async def thread_announcement(sessions: Any, workspace_id: Any, thread_id: str) -> dict[str, Any] | None:
    """Where the email thread was announced in Slack before, or None for a new thread."""
    async with sessions.begin() as session:
        await set_tenant(session=session, workspace_id=workspace_id)
        return await email_thread_announcement(
            session=session, workspace_id=workspace_id, thread_id=thread_id
        )
