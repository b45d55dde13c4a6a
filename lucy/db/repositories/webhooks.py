"""Inbound webhooks (``webhook_deliveries``), shared by email and the webhook triggers: which
workspace a delivery belongs to, claiming a delivery once, and how its processing ended. What
only one of them reads is in its own repository (:mod:`capabilities.email.repository`,
:mod:`capabilities.triggers.repository`).

``webhook_deliveries`` is partitioned by month, so no unique constraint can say "one row per
delivery id". A claim takes a transaction-level advisory lock on (source, delivery id) and
looks the delivery up (``ix_webhook_deliveries_external``, migration 0011): two copies of the
same delivery arriving at once are serialised, and the second finds the first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict, Unpack

from sqlalchemy import TextClause, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lucy.db.models import WebhookDelivery
from lucy.db.repositories.tenants import tenant_transaction

# Mail that cannot be tied to a workspace (an unbound inbox, a payload without one) is recorded
# under this id: no workspace has it, so no tenant ever sees those rows.
NO_WORKSPACE = uuid.UUID(int=0)
# A delivery still "processing" this long after its last attempt was abandoned (a crash): a
# redelivery takes it over.
STALE_PROCESSING = timedelta(minutes=2)


@dataclass(frozen=True)
class InboxOwner:
    workspace_id: uuid.UUID
    slack_team_id: str


@dataclass
class DeliveryClaim:
    """What :func:`claim_delivery` decided."""

    id: int
    created_at: datetime
    claimed: bool  # False: an earlier copy completed, was ignored or is being processed now
    status: str  # the delivery's status before this claim ("new" for a first delivery)
    attempts: int  # attempts so far, this one included when claimed
    payload: dict[str, Any] = field(default_factory=dict)


async def owner_of(*, session: AsyncSession, lookup: TextClause, key: str) -> InboxOwner | None:
    """The live workspace a SECURITY DEFINER lookup names (``lookup`` selects ``workspace_id``
    and ``slack_team_id`` for the bind ``:key``), or None."""
    row = (await session.execute(lookup, {"key": key})).first()
    return None if row is None else InboxOwner(workspace_id=row.workspace_id, slack_team_id=row.slack_team_id)


async def prune_v1_signatures(*, session: AsyncSession, before: datetime) -> int:
    """Delete the remembered v1 webhook signatures recorded before ``before``, in every
    workspace (``lucy_prune_v1_signatures``, SECURITY DEFINER); how many went."""
    pruned = await session.execute(text("SELECT lucy_prune_v1_signatures(:before)"), {"before": before})
    return int(pruned.scalar_one())


async def claim_delivery(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    source: str,
    external_id: str,
    event_type: str | None,
    payload: dict[str, Any],
    now: datetime,
) -> DeliveryClaim:
    """Record a delivery as ``processing`` (attempt 1), or take over an earlier copy that
    failed or was abandoned (attempt n+1); an earlier copy that completed, was ignored or is
    being processed right now is not claimed. The transaction must be scoped to ``workspace_id``."""
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(f"webhook:{source}:{external_id}", 0)))
    )
    row = (
        await session.execute(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.workspace_id == workspace_id,
                WebhookDelivery.source == source,
                WebhookDelivery.external_id == external_id,
            )
            .order_by(WebhookDelivery.created_at)
            .limit(1)
        )
    ).scalar_one_or_none()
    if row is None:
        created = WebhookDelivery(
            workspace_id=workspace_id,
            source=source,
            event_type=event_type,
            external_id=external_id,
            payload=payload,
            status="processing",
            attempt_count=1,
            created_at=now,
            updated_at=now,
        )
        session.add(created)
        await session.flush()
        return DeliveryClaim(created.id, created.created_at, True, "new", 1, dict(payload))
    busy = row.status == "processing" and row.updated_at > now - STALE_PROCESSING
    if row.status in ("completed", "ignored") or busy:
        return DeliveryClaim(row.id, row.created_at, False, row.status, row.attempt_count, dict(row.payload))
    attempts = row.attempt_count + 1
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == row.id, WebhookDelivery.created_at == row.created_at)
        .values(status="processing", attempt_count=attempts, updated_at=now, next_attempt_at=None)
    )
    return DeliveryClaim(row.id, row.created_at, True, row.status, attempts, dict(row.payload))


async def finish_delivery(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    claim: DeliveryClaim,
    status: str,
    now: datetime,
    error: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Set a claimed delivery's status (``processing`` to keep working on it with a new
    payload; ``completed``, ``failed`` or ``ignored`` when done), its last error and payload."""
    values: dict[str, Any] = {"status": status, "updated_at": now, "last_error": error}
    if status != "processing":
        values["processed_at"] = now
    if payload is not None:
        values["payload"] = payload
    await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.workspace_id == workspace_id,
            WebhookDelivery.id == claim.id,
            WebhookDelivery.created_at == claim.created_at,
        )
        .values(**values)
    )


class DeliveryEnd(TypedDict, total=False):
    """How a claimed delivery's processing went: :func:`finish_delivery`'s ``error`` and
    ``payload``, for :func:`finish_delivery_as_tenant` to pass on."""

    error: str | None
    payload: dict[str, Any] | None


async def finish_delivery_as_tenant(
    sessions: async_sessionmaker[AsyncSession],
    *,
    workspace_id: uuid.UUID,
    claim: DeliveryClaim,
    status: str,
    now: datetime,
    **end: Unpack[DeliveryEnd],
) -> None:
    """:func:`finish_delivery` in a transaction of its own, scoped to the workspace (the
    ingress's handlers: AgentMail and webhook triggers)."""
    async with tenant_transaction(sessions, workspace_id) as session:
        await finish_delivery(
            session=session, workspace_id=workspace_id, claim=claim, status=status, now=now, **end
        )
