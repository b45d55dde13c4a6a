"""Repository functions. Keyword-only, take ``session=`` (and ``workspace_id=`` for tenant
data), never commit: the caller owns the transaction.

Tenant isolation is enforced twice: every query here filters by ``workspace_id``, and
PostgreSQL row-level security filters by the transaction's tenant, which
:func:`set_tenant` (or :func:`upsert_workspace`) sets. A session that never set its tenant
sees no tenant rows at all: isolation fails closed.

Every write is an upsert or a guarded update so that an activity retried after a crash, or a
Slack event delivered twice, converges on the same rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Text, case, cast, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from lucy.contracts import TaskStatus
from lucy.crypto import KeyRing
from lucy.db.models import (
    ACTIVE_TASK_STATUSES,
    Approval,
    AuditLog,
    Channel,
    CostLog,
    CostMonthly,
    FeatureFlag,
    Integration,
    IntegrationCredential,
    Schedule,
    Task,
    TaskStep,
    User,
    Workspace,
)

TERMINAL_STATUSES = (
    TaskStatus.COMPLETED.value,
    TaskStatus.FAILED.value,
    TaskStatus.CANCELLED.value,
    TaskStatus.TIMEOUT.value,
)


# --------------------------------------------------------------------------- tenants


async def set_tenant(*, session: AsyncSession, workspace_id: uuid.UUID) -> None:
    """Scope the current transaction to ``workspace_id`` (row-level security key)."""
    await session.execute(
        select(func.set_config("lucy.workspace_id", str(workspace_id), True))  # True: transaction-local
    )


class WorkspaceRemoved(Exception):
    """The Slack team's workspace was removed from Lucy (soft-deleted): it is not brought back
    by a new message; an operator restores it deliberately."""


async def upsert_workspace(
    *, session: AsyncSession, slack_team_id: str, name: str | None = None
) -> uuid.UUID:
    """The workspace id of a Slack team, creating it on first contact; also scopes the
    transaction to it (one round trip for both). Resolution goes through
    ``lucy_resolve_workspace`` (SECURITY DEFINER): the application role itself can never see
    another tenant's workspace row."""
    scoped = func.set_config(
        "lucy.workspace_id",
        func.coalesce(cast(func.lucy_resolve_workspace(slack_team_id, name), Text), ""),
        True,
    )
    resolved = (await session.execute(select(scoped))).scalar_one()
    if not resolved:
        raise WorkspaceRemoved(slack_team_id)
    return uuid.UUID(resolved)


async def get_workspace(*, session: AsyncSession, workspace_id: uuid.UUID) -> Workspace | None:
    return (await session.execute(select(Workspace).where(Workspace.id == workspace_id))).scalar_one_or_none()


async def upsert_user(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    slack_user_id: str,
    display_name: str | None = None,
    role: str | None = None,
    is_bot: bool = False,
    timezone: str | None = None,
) -> uuid.UUID:
    """The user id for a Slack user in a workspace, creating the user on first contact."""
    ins = insert(User).values(
        workspace_id=workspace_id,
        slack_user_id=slack_user_id,
        display_name=display_name,
        is_bot=is_bot,
        timezone=timezone,
        **({"role": role} if role else {}),
    )
    set_: dict[str, Any] = {
        "display_name": func.coalesce(ins.excluded.display_name, User.display_name),
        "timezone": func.coalesce(ins.excluded.timezone, User.timezone),
        "updated_at": func.now(),
    }
    if role:
        set_["role"] = ins.excluded.role
    stmt = ins.on_conflict_do_update(
        constraint="uq_users_workspace_slack_user", set_=set_, where=User.workspace_id == workspace_id
    ).returning(User.id)
    return (await session.execute(stmt)).scalar_one()


async def get_user(*, session: AsyncSession, workspace_id: uuid.UUID, slack_user_id: str) -> User | None:
    return (
        await session.execute(
            select(User).where(
                User.workspace_id == workspace_id,
                User.slack_user_id == slack_user_id,
                User.deleted_at.is_(None),
            )
        )
    ).scalar_one_or_none()


async def upsert_channel(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    slack_channel_id: str,
    channel_type: str = "public",
    name: str | None = None,
) -> uuid.UUID:
    """The channel id for a Slack conversation in a workspace, creating it on first contact."""
    ins = insert(Channel).values(
        workspace_id=workspace_id,
        slack_channel_id=slack_channel_id,
        channel_type=channel_type,
        name=name,
        memory_scope_key=f"{workspace_id}:{slack_channel_id}",
    )
    stmt = ins.on_conflict_do_update(
        constraint="uq_channels_workspace_slack_channel",
        set_={"name": func.coalesce(ins.excluded.name, Channel.name), "updated_at": func.now()},
        where=Channel.workspace_id == workspace_id,
    ).returning(Channel.id)
    return (await session.execute(stmt)).scalar_one()


# --------------------------------------------------------------------------- tasks and steps


async def claim_task(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    workflow_id: str,
    requester_id: uuid.UUID | None,
    channel_id: uuid.UUID | None,
    source: str,
    request_text: str,
    slack_channel_id: str,
    slack_thread_ts: str | None,
) -> uuid.UUID | None:
    """Create the task row (status ``created``) for a new request; None if it already exists.

    Ingress claims the row before it counts quotas and rate limits, in the same transaction, so
    a redelivered Slack event (which finds the row) is never counted twice.
    """
    stmt = (
        insert(Task)
        .values(
            workspace_id=workspace_id,
            workflow_id=workflow_id,
            requester_id=requester_id,
            channel_id=channel_id,
            source=source,
            status=TaskStatus.CREATED.value,
            request_text=request_text,
            slack_channel_id=slack_channel_id,
            slack_thread_ts=slack_thread_ts,
        )
        .on_conflict_do_nothing(index_elements=[Task.workflow_id])
        .returning(Task.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True)
class IngressClaim:
    """What ``lucy_ingress_claim`` decided for one Slack message."""

    workspace_id: uuid.UUID | None  # None: the workspace was removed (refused = workspace_removed)
    user_id: uuid.UUID | None
    channel_id: uuid.UUID | None
    claimed: bool  # False: a redelivery (the row existed)
    prior_error: str | None  # for a redelivery: the first delivery's error type ("Refused"...)
    refused: str | None  # user_rate | workspace_rate | quota | workspace_removed: may not run
    retry_after_s: float
    quota_used: int | None
    quota_limit: int | None


_INGRESS_CLAIM = text(
    "SELECT * FROM lucy_ingress_claim(:team, :user, :display_name, :role, :tz, :channel, :channel_type, "
    ":workflow_id, :source, :text, :thread_ts, :user_capacity, :user_rate, :ws_capacity, :ws_rate, :month)"
)


async def ingress_claim(
    *,
    session: AsyncSession,
    slack_team_id: str,
    slack_user_id: str,
    slack_channel_id: str,
    channel_type: str,
    workflow_id: str,
    source: str,
    request_text: str,
    slack_thread_ts: str | None,
    user_capacity: float,
    user_refill_per_second: float,
    workspace_capacity: float,
    workspace_refill_per_second: float,
    month: date,
    display_name: str | None = None,
    role: str | None = None,
    timezone: str | None = None,
) -> IngressClaim:
    """Ingress's whole transaction in one round trip (migration 0005): resolve the workspace and
    scope the transaction to it, upsert the user and the channel, claim the task row, and for a
    new claim take a token from the user's and the workspace's bucket and count the action
    against the monthly quota. Same statements, order and locks as the separate functions."""
    row = (
        await session.execute(
            _INGRESS_CLAIM,
            {
                "team": slack_team_id,
                "user": slack_user_id,
                "display_name": display_name,
                "role": role,
                "tz": timezone,
                "channel": slack_channel_id,
                "channel_type": channel_type,
                "workflow_id": workflow_id,
                "source": source,
                "text": request_text,
                "thread_ts": slack_thread_ts,
                "user_capacity": float(user_capacity),
                "user_rate": float(user_refill_per_second),
                "ws_capacity": float(workspace_capacity),
                "ws_rate": float(workspace_refill_per_second),
                "month": month.replace(day=1),
            },
        )
    ).one()
    return IngressClaim(
        workspace_id=row.workspace_id,
        user_id=row.user_id,
        channel_id=row.channel_id,
        claimed=bool(row.claimed),
        prior_error=row.prior_error,
        refused=row.refused,
        retry_after_s=float(row.retry_after or 0.0),
        quota_used=row.quota_used,
        quota_limit=row.quota_limit,
    )


async def list_user_tasks(
    *, session: AsyncSession, workspace_id: uuid.UUID, requester_id: uuid.UUID, limit: int = 10
) -> list[Task]:
    """A user's most recent tasks."""
    rows = await session.execute(
        select(Task)
        .where(
            Task.workspace_id == workspace_id, Task.requester_id == requester_id, Task.deleted_at.is_(None)
        )
        .order_by(Task.created_at.desc())
        .limit(limit)
    )
    return list(rows.scalars())


async def record_task_running(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    workflow_id: str,
    run_id: str,
    requester_id: uuid.UUID | None,
    channel_id: uuid.UUID | None,
    source: str,
    request_text: str,
    slack_channel_id: str,
    slack_thread_ts: str,
    started_at: datetime,
    intent: str | None = None,
) -> uuid.UUID:
    """Create the task row as running, or move an existing one there.

    A row that already reached a terminal status is left as it is (a late retry never
    resurrects a finished task).
    """
    ins = insert(Task).values(
        workspace_id=workspace_id,
        workflow_id=workflow_id,
        run_id=run_id,
        requester_id=requester_id,
        channel_id=channel_id,
        source=source,
        status=TaskStatus.RUNNING.value,
        request_text=request_text,
        slack_channel_id=slack_channel_id,
        slack_thread_ts=slack_thread_ts,
        started_at=started_at,
        intent=intent,
    )
    stmt = ins.on_conflict_do_update(
        index_elements=[Task.workflow_id],
        set_={
            "status": TaskStatus.RUNNING.value,
            "run_id": ins.excluded.run_id,
            "started_at": func.coalesce(Task.started_at, ins.excluded.started_at),
            "intent": func.coalesce(ins.excluded.intent, Task.intent),
            "updated_at": func.now(),
        },
        where=(Task.status.not_in(TERMINAL_STATUSES)) & (Task.workspace_id == workspace_id),
    ).returning(Task.id)
    task_id = (await session.execute(stmt)).scalar_one_or_none()
    if task_id is None:  # terminal already: return the existing row's id
        task_id = (
            await session.execute(
                select(Task.id).where(Task.workflow_id == workflow_id, Task.workspace_id == workspace_id)
            )
        ).scalar_one()
    return task_id


async def set_task_status(
    *, session: AsyncSession, workspace_id: uuid.UUID, workflow_id: str, status: str
) -> bool:
    """Move a non-terminal task to another non-terminal status (e.g. ``pending_approval``)."""
    result = await session.execute(
        update(Task)
        .where(
            Task.workflow_id == workflow_id,
            Task.workspace_id == workspace_id,
            Task.status.not_in(TERMINAL_STATUSES),
        )
        .values(status=status)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def record_task_finished(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    workflow_id: str,
    status: str,
    completed_at: datetime,
    model: str | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cost_usd: float = 0.0,
    error_type: str | None = None,
    error_message: str | None = None,
    result_data: dict[str, Any] | None = None,
) -> bool:
    """Move a task to a terminal status once. Returns False when it was already terminal."""
    if status not in TERMINAL_STATUSES:
        raise ValueError(f"{status!r} is not a terminal task status")
    stmt = (
        update(Task)
        .where(
            Task.workflow_id == workflow_id,
            Task.workspace_id == workspace_id,
            Task.status.not_in(TERMINAL_STATUSES),
        )
        .values(
            status=status,
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=Decimal(str(cost_usd)),
            error_type=error_type,
            error_message=error_message,
            result_data=result_data or {},
            completed_at=completed_at,
        )
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def get_task(*, session: AsyncSession, workspace_id: uuid.UUID, workflow_id: str) -> Task | None:
    """The task row of a workflow, if any."""
    return (
        await session.execute(
            select(Task).where(Task.workflow_id == workflow_id, Task.workspace_id == workspace_id)
        )
    ).scalar_one_or_none()


async def list_active_tasks(
    *, session: AsyncSession, workspace_id: uuid.UUID, limit: int = 100
) -> list[Task]:
    """Tasks still in flight (created / pending_approval / running): the ``ix_tasks_active`` path."""
    rows = await session.execute(
        select(Task)
        .where(Task.workspace_id == workspace_id, Task.status.in_(ACTIVE_TASK_STATUSES))
        .limit(limit)
    )
    return list(rows.scalars())


@dataclass(frozen=True)
class HistoryPage:
    tasks: list[Task]
    next_cursor: tuple[datetime, uuid.UUID] | None


async def task_history_page(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    before: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 20,
) -> HistoryPage:
    """Newest-first task history, keyset-paginated on (created_at, id)."""
    stmt = select(Task).where(Task.workspace_id == workspace_id, Task.deleted_at.is_(None))
    if before is not None:
        stmt = stmt.where(
            (Task.created_at < before[0]) | ((Task.created_at == before[0]) & (Task.id < before[1]))
        )
    rows = list(
        (await session.execute(stmt.order_by(Task.created_at.desc(), Task.id.desc()).limit(limit))).scalars()
    )
    cursor = (rows[-1].created_at, rows[-1].id) if len(rows) == limit else None
    return HistoryPage(tasks=rows, next_cursor=cursor)


async def record_step(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    task_id: uuid.UUID,
    step_index: int,
    kind: str,
    idempotency_key: str,
    name: str | None = None,
    status: str = "running",
    input: dict[str, Any] | None = None,
    output: dict[str, Any] | None = None,
    error: str | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cost_usd: float = 0.0,
    started_at: datetime | None = None,
    completed_at: datetime | None = None,
) -> uuid.UUID:
    """Insert or update a task step, keyed by its idempotency key (workflow id + step)."""
    ins = insert(TaskStep).values(
        workspace_id=workspace_id,
        task_id=task_id,
        step_index=step_index,
        kind=kind,
        name=name,
        status=status,
        idempotency_key=idempotency_key,
        input=input or {},
        output=output or {},
        error=error,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=Decimal(str(cost_usd)),
        started_at=started_at,
        completed_at=completed_at,
    )
    stmt = ins.on_conflict_do_update(
        constraint="uq_task_steps_idempotency_key",
        set_={
            "status": ins.excluded.status,
            "output": ins.excluded.output,
            "error": ins.excluded.error,
            "prompt_tokens": ins.excluded.prompt_tokens,
            "completion_tokens": ins.excluded.completion_tokens,
            "cost_usd": ins.excluded.cost_usd,
            "completed_at": func.coalesce(ins.excluded.completed_at, TaskStep.completed_at),
            "updated_at": func.now(),
        },
        where=TaskStep.workspace_id == workspace_id,
    ).returning(TaskStep.id)
    return (await session.execute(stmt)).scalar_one()


# --------------------------------------------------------------------------- approvals


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
) -> None:
    await session.execute(
        update(Approval)
        .where(Approval.id == approval_id, Approval.workspace_id == workspace_id)
        .values(slack_channel_id=channel, slack_message_ts=ts)
    )


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
    *, session: AsyncSession, workspace_id: uuid.UUID, approval_id: uuid.UUID, status: str, now: datetime
) -> bool:
    """Close one pending approval as ``expired`` or ``cancelled``; False if it was not pending."""
    if status not in ("expired", "cancelled"):
        raise ValueError(f"status must be expired or cancelled, not {status!r}")
    rows = await session.execute(
        update(Approval)
        .where(
            Approval.id == approval_id, Approval.workspace_id == workspace_id, Approval.status == "pending"
        )
        .values(status=status, decided_at=now)
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


async def get_channel(
    *, session: AsyncSession, workspace_id: uuid.UUID, channel_id: uuid.UUID
) -> Channel | None:
    return (
        await session.execute(
            select(Channel).where(Channel.id == channel_id, Channel.workspace_id == workspace_id)
        )
    ).scalar_one_or_none()


async def latest_thread_task(
    *, session: AsyncSession, workspace_id: uuid.UUID, slack_channel_id: str, slack_thread_ts: str
) -> Task | None:
    """The newest task in a Slack thread (a reply there goes to it, or starts a follow-up)."""
    return (
        await session.execute(
            select(Task)
            .where(
                Task.workspace_id == workspace_id,
                Task.slack_channel_id == slack_channel_id,
                Task.slack_thread_ts == slack_thread_ts,
            )
            .order_by(Task.created_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def expire_approvals(
    *, session: AsyncSession, workspace_id: uuid.UUID, now: datetime
) -> list[uuid.UUID]:
    """Mark every pending approval past its expiry as expired; returns their ids."""
    rows = await session.execute(
        update(Approval)
        .where(
            Approval.workspace_id == workspace_id, Approval.status == "pending", Approval.expires_at <= now
        )
        .values(status="expired", decided_at=now)
        .returning(Approval.id)
    )
    return list(rows.scalars())


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


# --------------------------------------------------------------------------- cost and audit


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
    """Append one cost entry once. ``occurred_at`` must come from the caller (the workflow's
    clock), so that a retried activity presents the same (key, time) and inserts nothing.
    The monthly aggregate follows in the same statement (trigger). Returns whether it inserted."""
    stmt = (
        insert(CostLog)
        .values(
            workspace_id=workspace_id,
            idempotency_key=idempotency_key,
            created_at=occurred_at,
            cost_usd=Decimal(str(cost_usd)),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            kind=kind,
            provider=provider,
            model=model,
            task_id=task_id,
            user_id=user_id,
        )
        .on_conflict_do_nothing(constraint="uq_cost_log_idempotency_key")
        .returning(CostLog.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


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


async def monthly_cost_from_log(*, session: AsyncSession, workspace_id: uuid.UUID, month: date) -> CostRollup:
    """The same totals summed from ``cost_log`` itself (slow; for audits and tests)."""
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    row = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(CostLog.prompt_tokens), 0),
                func.coalesce(func.sum(CostLog.completion_tokens), 0),
                func.coalesce(func.sum(CostLog.cost_usd), 0),
            ).where(
                CostLog.workspace_id == workspace_id, CostLog.created_at >= start, CostLog.created_at < end
            )
        )
    ).one()
    return CostRollup(int(row[0]), int(row[1]), int(row[2]), Decimal(row[3]))


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
    """Append an audit entry once (same idempotency rule as :func:`record_cost`)."""
    stmt = (
        insert(AuditLog)
        .values(
            workspace_id=workspace_id,
            idempotency_key=idempotency_key,
            created_at=occurred_at,
            actor_type=actor_type,
            actor_id=actor_id,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            task_id=task_id,
            workflow_id=workflow_id,
            before_state=before_state,
            after_state=after_state,
            details=details or {},
        )
        .on_conflict_do_nothing(constraint="uq_audit_log_idempotency_key")
        .returning(AuditLog.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


# --------------------------------------------------------------------------- quotas, flags, rate limits


@dataclass(frozen=True)
class QuotaResult:
    allowed: bool
    used: int
    limit: int


async def consume_actions(
    *, session: AsyncSession, workspace_id: uuid.UUID, month: date, amount: int = 1
) -> QuotaResult:
    """Atomically count ``amount`` actions against this month's quota, or refuse.

    One UPDATE does the month roll-over, the check and the increment, so concurrent
    callers can never push the counter past ``max_monthly_actions``.
    """
    month = month.replace(day=1)
    used_now = case((Workspace.usage_month == month, Workspace.current_month_actions), else_=0)
    stmt = (
        update(Workspace)
        .where(Workspace.id == workspace_id, used_now + amount <= Workspace.max_monthly_actions)
        .values(current_month_actions=used_now + amount, usage_month=month)
        .returning(Workspace.current_month_actions, Workspace.max_monthly_actions)
    )
    row = (await session.execute(stmt)).one_or_none()
    if row is not None:
        return QuotaResult(True, int(row[0]), int(row[1]))
    ws = await get_workspace(session=session, workspace_id=workspace_id)
    if ws is None:
        return QuotaResult(False, 0, 0)
    used = ws.current_month_actions if ws.usage_month == month else 0
    return QuotaResult(False, used, ws.max_monthly_actions)


@dataclass(frozen=True)
class QuotaUsage:
    users: QuotaResult
    integrations: QuotaResult
    schedules: QuotaResult


async def quota_usage(*, session: AsyncSession, workspace_id: uuid.UUID) -> QuotaUsage | None:
    """Counts of users, integrations and schedules against the plan's limits."""
    ws = await get_workspace(session=session, workspace_id=workspace_id)
    if ws is None:
        return None

    async def count(model: Any) -> int:
        return int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(model)
                    .where(model.workspace_id == workspace_id, model.deleted_at.is_(None))
                )
            ).scalar_one()
        )

    users, integrations, schedules = await count(User), await count(Integration), await count(Schedule)
    return QuotaUsage(
        users=QuotaResult(users < ws.max_users, users, ws.max_users),
        integrations=QuotaResult(integrations < ws.max_integrations, integrations, ws.max_integrations),
        schedules=QuotaResult(schedules < ws.max_schedules, schedules, ws.max_schedules),
    )


async def set_feature_flag(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    flag_key: str,
    enabled: bool,
    value: dict[str, Any] | None = None,
) -> None:
    ins = insert(FeatureFlag).values(
        workspace_id=workspace_id, flag_key=flag_key, enabled=enabled, value=value or {}
    )
    await session.execute(
        ins.on_conflict_do_update(
            constraint="uq_feature_flags_workspace_key",
            set_={"enabled": ins.excluded.enabled, "value": ins.excluded.value, "updated_at": func.now()},
            where=FeatureFlag.workspace_id == workspace_id,
        )
    )


async def is_feature_enabled(
    *, session: AsyncSession, workspace_id: uuid.UUID, flag_key: str, default: bool = False
) -> bool:
    enabled = (
        await session.execute(
            select(FeatureFlag.enabled).where(
                FeatureFlag.workspace_id == workspace_id,
                FeatureFlag.flag_key == flag_key,
                FeatureFlag.deleted_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    return default if enabled is None else bool(enabled)


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    tokens_left: float
    retry_after_s: float


_TAKE_TOKEN = text(
    """
    INSERT INTO rate_limits AS r (workspace_id, bucket_key, tokens, capacity, refill_per_second, updated_at)
    VALUES (CAST(:workspace_id AS uuid), :bucket_key, CAST(:capacity AS float8) - CAST(:cost AS float8),
            CAST(:capacity AS float8), CAST(:rate AS float8), clock_timestamp())
    ON CONFLICT (workspace_id, bucket_key) DO UPDATE SET
        tokens = LEAST(
            excluded.capacity,
            r.tokens + EXTRACT(EPOCH FROM clock_timestamp() - r.updated_at) * excluded.refill_per_second
        ) - CAST(:cost AS float8),
        capacity = excluded.capacity,
        refill_per_second = excluded.refill_per_second,
        updated_at = clock_timestamp()
    WHERE r.workspace_id = CAST(:workspace_id AS uuid)
      AND LEAST(
            excluded.capacity,
            r.tokens + EXTRACT(EPOCH FROM clock_timestamp() - r.updated_at) * excluded.refill_per_second
          ) >= CAST(:cost AS float8)
    RETURNING tokens
    """
)


async def take_token(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    bucket_key: str,
    capacity: float,
    refill_per_second: float,
    cost: float = 1.0,
) -> RateLimitResult:
    """Token bucket in one SQL statement: refill by elapsed time, then take ``cost`` or refuse.

    The row lock taken by ``ON CONFLICT DO UPDATE`` serialises concurrent takers, so a burst
    can never spend more than the bucket holds.
    """
    params = {
        "workspace_id": workspace_id,
        "bucket_key": bucket_key,
        "capacity": float(capacity),
        "rate": float(refill_per_second),
        "cost": float(cost),
    }
    left = (await session.execute(_TAKE_TOKEN, params)).scalar_one_or_none()
    if left is not None:
        return RateLimitResult(True, float(left), 0.0)
    current = (
        await session.execute(
            text(
                "SELECT LEAST(capacity, tokens + EXTRACT(EPOCH FROM clock_timestamp() - updated_at) "
                "* refill_per_second) FROM rate_limits WHERE workspace_id = :w AND bucket_key = :k"
            ),
            {"w": workspace_id, "k": bucket_key},
        )
    ).scalar_one_or_none()
    tokens = float(current or 0.0)
    wait = (float(cost) - tokens) / refill_per_second if refill_per_second > 0 else float("inf")
    return RateLimitResult(False, tokens, max(wait, 0.0))


# --------------------------------------------------------------------------- integrations and credentials


async def upsert_integration(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    provider: str,
    name: str = "default",
    provider_config: dict[str, Any] | None = None,
) -> uuid.UUID:
    ins = insert(Integration).values(
        workspace_id=workspace_id, provider=provider, name=name, provider_config=provider_config or {}
    )
    stmt = ins.on_conflict_do_update(
        constraint="uq_integrations_workspace_provider_name",
        set_={"provider_config": ins.excluded.provider_config, "updated_at": func.now()},
        where=Integration.workspace_id == workspace_id,
    ).returning(Integration.id)
    return (await session.execute(stmt)).scalar_one()


def _credential_aad(workspace_id: uuid.UUID, integration_id: uuid.UUID, credential_type: str) -> bytes:
    return f"{workspace_id}|{integration_id}|{credential_type}".encode()


async def store_credential(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    integration_id: uuid.UUID,
    credential_type: str,
    plaintext: str,
    keyring: KeyRing,
    expires_at: datetime | None = None,
) -> None:
    """Encrypt and store (or replace) one credential of an integration."""
    key_id, blob = keyring.encrypt(
        plaintext, aad=_credential_aad(workspace_id, integration_id, credential_type)
    )
    ins = insert(IntegrationCredential).values(
        workspace_id=workspace_id,
        integration_id=integration_id,
        credential_type=credential_type,
        key_id=key_id,
        encrypted_value=blob,
        expires_at=expires_at,
    )
    await session.execute(
        ins.on_conflict_do_update(
            constraint="uq_integration_credentials_type",
            set_={
                "key_id": ins.excluded.key_id,
                "encrypted_value": ins.excluded.encrypted_value,
                "expires_at": ins.excluded.expires_at,
                "updated_at": func.now(),
            },
            where=IntegrationCredential.workspace_id == workspace_id,
        )
    )


async def read_credential(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    integration_id: uuid.UUID,
    credential_type: str,
    keyring: KeyRing,
) -> str | None:
    """The decrypted credential, or None if there is none."""
    row = (
        await session.execute(
            select(IntegrationCredential).where(
                IntegrationCredential.workspace_id == workspace_id,
                IntegrationCredential.integration_id == integration_id,
                IntegrationCredential.credential_type == credential_type,
                IntegrationCredential.deleted_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return keyring.decrypt(
        row.key_id, row.encrypted_value, aad=_credential_aad(workspace_id, integration_id, credential_type)
    )


async def rotate_credentials(*, session: AsyncSession, workspace_id: uuid.UUID, keyring: KeyRing) -> int:
    """Re-encrypt this workspace's credentials that are not under the primary key; returns how many."""
    rows = (
        await session.execute(
            select(IntegrationCredential)
            .where(
                IntegrationCredential.workspace_id == workspace_id,
                IntegrationCredential.key_id != keyring.primary_id,
            )
            .with_for_update()
        )
    ).scalars()
    count = 0
    for row in rows:
        aad = _credential_aad(workspace_id, row.integration_id, row.credential_type)
        row.key_id, row.encrypted_value = keyring.encrypt(
            keyring.decrypt(row.key_id, row.encrypted_value, aad=aad), aad=aad
        )
        count += 1
    await session.flush()
    return count


async def list_workspace_ids(*, session: AsyncSession) -> list[uuid.UUID]:
    """Every workspace id. Only the schema owner can see them all (maintenance commands)."""
    return list((await session.execute(select(Workspace.id).order_by(Workspace.id))).scalars())
