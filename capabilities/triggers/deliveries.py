"""A webhook delivery's record in ``webhook_deliveries`` (a trigger's, or an inbound mail's):
finished with its status, or recorded ``ignored`` with the reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lucy.db.repositories.webhooks import DeliveryClaim, finish_delivery, finish_delivery_as_tenant


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


async def ignored(session: Any, workspace_id: Any, claim: DeliveryClaim, reason: str, now: datetime) -> None:
    """Record a claimed delivery nothing is done for as ``ignored``, and why, in ``session``."""
    await finish_delivery(
        session=session, workspace_id=workspace_id, claim=claim, status="ignored", now=now, error=reason[:500]
    )
