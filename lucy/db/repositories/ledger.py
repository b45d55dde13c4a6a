"""The ledger: cost entries (and their exact monthly rollup) and the append-only audit log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from lucy.db.models import (
    AuditLog,
    CostLog,
    CostMonthly,
)


def cost_row(
    *,
    workspace_id: uuid.UUID,
    idempotency_key: str,
    occurred_at: datetime,
    cost_usd: float | Decimal,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    kind: str = "llm",
    provider: str | None = None,
    model: str | None = None,
    task_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """One ``cost_log`` row. ``occurred_at`` must come from the caller (the workflow's clock), so
    that a retried activity presents the same (key, time) and inserts nothing."""
    return {
        "workspace_id": workspace_id,
        "idempotency_key": idempotency_key,
        "created_at": occurred_at,
        "cost_usd": Decimal(str(cost_usd)),
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "kind": kind,
        "provider": provider,
        "model": model,
        "task_id": task_id,
        "user_id": user_id,
    }


async def record_cost(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    idempotency_key: str,
    occurred_at: datetime,
    cost_usd: float | Decimal,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    kind: str = "llm",
    provider: str | None = None,
    model: str | None = None,
    task_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
) -> bool:
    """Append one cost entry (:func:`cost_row`) once. The monthly aggregate follows in the same
    statement (trigger). Returns whether it inserted."""
    row = cost_row(
        workspace_id=workspace_id,
        idempotency_key=idempotency_key,
        occurred_at=occurred_at,
        cost_usd=cost_usd,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        kind=kind,
        provider=provider,
        model=model,
        task_id=task_id,
        user_id=user_id,
    )
    stmt = (
        insert(CostLog)
        .values(row)
        .on_conflict_do_nothing(constraint="uq_cost_log_idempotency_key")
        .returning(CostLog.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def record_costs(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Append many cost entries (rows of :func:`cost_row`) in one statement, each once, by the
    rule of :func:`record_cost`."""
    if rows:
        await session.execute(
            insert(CostLog).values(rows).on_conflict_do_nothing(constraint="uq_cost_log_idempotency_key")
        )


@dataclass(frozen=True)
class CostRollup:
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal


async def monthly_cost(*, session: AsyncSession, workspace_id: uuid.UUID, month: date) -> CostRollup:
    """A workspace's totals for a month, from the maintained aggregate (one row read)."""
    row = (
        await session.execute(
            select(CostMonthly).where(
                CostMonthly.workspace_id == workspace_id, CostMonthly.month == month.replace(day=1)
            )
        )
    ).scalar_one_or_none()
    if row is None:
        return CostRollup(0, 0, 0, Decimal(0))
    return CostRollup(row.calls, row.prompt_tokens, row.completion_tokens, row.cost_usd)


def audit_row(
    *,
    workspace_id: uuid.UUID,
    idempotency_key: str,
    occurred_at: datetime,
    actor_type: str,
    action: str,
    actor_id: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    task_id: uuid.UUID | None = None,
    workflow_id: str | None = None,
    before_state: dict[str, Any] | None = None,
    after_state: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``audit_log`` row (``occurred_at`` from the caller, as in :func:`cost_row`)."""
    return {
        "workspace_id": workspace_id,
        "idempotency_key": idempotency_key,
        "created_at": occurred_at,
        "actor_type": actor_type,
        "actor_id": actor_id,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "task_id": task_id,
        "workflow_id": workflow_id,
        "before_state": before_state,
        "after_state": after_state,
        "details": details or {},
    }


async def record_audit(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    idempotency_key: str,
    occurred_at: datetime,
    actor_type: str,
    action: str,
    actor_id: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    task_id: uuid.UUID | None = None,
    workflow_id: str | None = None,
    before_state: dict[str, Any] | None = None,
    after_state: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> bool:
    """Append an audit entry (:func:`audit_row`) once, by the idempotency rule of
    :func:`record_cost`."""
    row = audit_row(
        workspace_id=workspace_id,
        idempotency_key=idempotency_key,
        occurred_at=occurred_at,
        actor_type=actor_type,
        action=action,
        actor_id=actor_id,
        entity_type=entity_type,
        entity_id=entity_id,
        task_id=task_id,
        workflow_id=workflow_id,
        before_state=before_state,
        after_state=after_state,
        details=details,
    )
    stmt = (
        insert(AuditLog)
        .values(row)
        .on_conflict_do_nothing(constraint="uq_audit_log_idempotency_key")
        .returning(AuditLog.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def record_audits(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Append many audit entries (rows of :func:`audit_row`) in one statement, each once, by the
    rule of :func:`record_audit`."""
    if rows:
        await session.execute(
            insert(AuditLog).values(rows).on_conflict_do_nothing(constraint="uq_audit_log_idempotency_key")
        )


async def record_user_change(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    user: str,
    entity_type: str,
    entity_id: str,
    verb: str,
    state: dict[str, Any],
    key: str,
    removed: bool = False,
) -> bool:
    """The audit entry (``<entity_type>.<verb>``, once per ``key``) of a person's change to a
    workspace's entity: ``state`` is what it became, or what it was when it is ``removed``."""
    return await record_audit(
        session=session,
        workspace_id=workspace_id,
        idempotency_key=key,
        occurred_at=datetime.now(UTC),
        actor_type="user",
        actor_id=user,
        action=f"{entity_type}.{verb}",
        entity_type=entity_type,
        entity_id=entity_id,
        before_state=state if removed else None,
        after_state=None if removed else state,
    )
