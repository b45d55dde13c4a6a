"""Approvals: the pending row, its message, the decision made once, and who waits for what."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import literal, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from lucy.db.models import (
    Approval,
    User,
)

DECISION_SHOWN = "decision_shown_ts"  # in ``details``: the message that shows the decision


async def create_approval(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    task_id: uuid.UUID,
    workflow_id: str,
    idempotency_key: str,
    action_type: str,
    risk_level: str,
    summary: str,
    expires_at: datetime,
    requester_id: uuid.UUID | None = None,
    approver_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
    approval_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Record a pending approval once per idempotency key; returns its id (``approval_id`` when
    given: the workflow chooses it)."""
    ins = insert(Approval).values(
        **({"id": approval_id} if approval_id is not None else {}),
        workspace_id=workspace_id,
        task_id=task_id,
        workflow_id=workflow_id,
        idempotency_key=idempotency_key,
        action_type=action_type,
        risk_level=risk_level,
        summary=summary,
        expires_at=expires_at,
        requester_id=requester_id,
        approver_id=approver_id,
        details=details or {},
    )
    stmt = ins.on_conflict_do_update(
        constraint="uq_approvals_idempotency_key",
        set_={"updated_at": Approval.updated_at},  # no change; lets RETURNING yield the existing id
        where=Approval.workspace_id == workspace_id,
    ).returning(Approval.id)
    return (await session.execute(stmt)).scalar_one()


async def set_approval_message(
    *, session: AsyncSession, workspace_id: uuid.UUID, approval_id: uuid.UUID, channel: str, ts: str
) -> Approval | None:
    """Record where the approval's message is; the row as it stands (it may be settled already:
    the row lock orders this against :func:`close_approval` and :func:`decide_approval`)."""
    return (
        await session.execute(
            update(Approval)
            .where(Approval.id == approval_id, Approval.workspace_id == workspace_id)
            .values(slack_channel_id=channel, slack_message_ts=ts)
            .returning(Approval)
        )
    ).scalar_one_or_none()


async def mark_decision_shown(
    *, session: AsyncSession, workspace_id: uuid.UUID, approval_id: uuid.UUID, ts: str
) -> None:
    """Note that the message ``ts`` shows the decision (no buttons): a retry rewrites it no more."""
    await session.execute(
        update(Approval)
        .where(Approval.id == approval_id, Approval.workspace_id == workspace_id)
        .values(details=Approval.details.op("||")(literal({DECISION_SHOWN: ts}, type_=JSONB)))
    )


async def slack_id_of(
    *, session: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID | None
) -> str | None:
    """The Slack id of the person who decided an approval (``decided_by``), if any."""
    if user_id is None:
        return None
    return (
        await session.execute(
            select(User.slack_user_id).where(User.id == user_id, User.workspace_id == workspace_id)
        )
    ).scalar_one_or_none()


async def decide_approval(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    approval_id: uuid.UUID,
    decision: str,
    decided_by: uuid.UUID | None,
    now: datetime,
    reason: str | None = None,
) -> Approval | None:
    """Decide a pending, unexpired approval exactly once.

    Returns the decided row, or None when it was already decided or expired: of two
    concurrent clicks, the row lock lets exactly one ``UPDATE ... WHERE status = 'pending'`` win.
    """
    if decision not in ("approved", "rejected"):
        raise ValueError(f"decision must be approved or rejected, not {decision!r}")
    stmt = (
        update(Approval)
        .where(
            Approval.id == approval_id,
            Approval.workspace_id == workspace_id,
            Approval.status == "pending",
            Approval.expires_at > now,
        )
        .values(status=decision, decided_by=decided_by, decided_at=now, decision_reason=reason)
        .returning(Approval)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def close_approval(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    approval_id: uuid.UUID,
    status: str,
    now: datetime,
    decided_by: uuid.UUID | None = None,
) -> bool:
    """Close one pending approval as ``expired`` or ``cancelled``; False if it was not pending."""
    if status not in ("expired", "cancelled"):
        raise ValueError(f"status must be expired or cancelled, not {status!r}")
    rows = await session.execute(
        update(Approval)
        .where(
            Approval.id == approval_id, Approval.workspace_id == workspace_id, Approval.status == "pending"
        )
        .values(status=status, decided_at=now, decided_by=decided_by)
        .returning(Approval.id)
    )
    return rows.scalar_one_or_none() is not None


async def get_approval(
    *, session: AsyncSession, workspace_id: uuid.UUID, approval_id: uuid.UUID
) -> Approval | None:
    return (
        await session.execute(
            select(Approval).where(Approval.id == approval_id, Approval.workspace_id == workspace_id)
        )
    ).scalar_one_or_none()


async def list_pending_approvals(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    approver_id: uuid.UUID,
    include_unassigned: bool = False,
    limit: int = 50,
) -> list[Approval]:
    """What waits for this approver: the ``ix_approvals_pending`` path. With
    ``include_unassigned`` (for workspace admins), also the approvals no one was designated for."""
    who = (
        or_(Approval.approver_id == approver_id, Approval.approver_id.is_(None))
        if include_unassigned
        else Approval.approver_id == approver_id
    )
    rows = await session.execute(
        select(Approval)
        .where(
            who,
            Approval.status == "pending",
            Approval.workspace_id == workspace_id,
        )
        .order_by(Approval.expires_at)
        .limit(limit)
    )
    return list(rows.scalars())
