"""Tasks: ingress's claim (one SQL function), the running and finished states, steps, look-ups."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from lucy.contracts.ids import TaskStatus
from lucy.db.models import (
    Task,
    TaskStep,
)

TERMINAL_STATUSES = (
    TaskStatus.COMPLETED.value,
    TaskStatus.FAILED.value,
    TaskStatus.CANCELLED.value,
    TaskStatus.TIMEOUT.value,
)


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
            # A claim without a thread (a scheduled run) learns the thread the task opened.
            "slack_thread_ts": func.coalesce(
                Task.slack_thread_ts, func.nullif(ins.excluded.slack_thread_ts, "")
            ),
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


async def latest_thread_task(
    *, session: AsyncSession, workspace_id: uuid.UUID, slack_channel_id: str, slack_thread_ts: str
) -> Task | None:
    """The newest task in a Slack thread (a reply there goes to it, or starts a follow-up); a
    delegated sub-task works in its parent's thread, and replies there go to the parent."""
    return (
        await session.execute(
            select(Task)
            .where(
                Task.workspace_id == workspace_id,
                Task.slack_channel_id == slack_channel_id,
                Task.slack_thread_ts == slack_thread_ts,
                Task.source != "delegated",
            )
            .order_by(Task.created_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


def step_row(
    *,
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
) -> dict[str, Any]:
    """One ``task_steps`` row, keyed by its idempotency key (workflow id + step)."""
    return {
        "workspace_id": workspace_id,
        "task_id": task_id,
        "step_index": step_index,
        "kind": kind,
        "name": name,
        "status": status,
        "idempotency_key": idempotency_key,
        "input": input or {},
        "output": output or {},
        "error": error,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost_usd": Decimal(str(cost_usd)),
        "started_at": started_at,
        "completed_at": completed_at,
    }


async def record_step(*, session: AsyncSession, **row: Any) -> uuid.UUID:
    """Insert or update one task step (the fields of :func:`step_row`); returns its id."""
    stmt = _step_upsert(insert(TaskStep).values(step_row(**row)), row["workspace_id"])
    return (await session.execute(stmt.returning(TaskStep.id))).scalar_one()


async def record_steps(*, session: AsyncSession, workspace_id: uuid.UUID, rows: list[dict[str, Any]]) -> None:
    """Insert or update many task steps (rows of :func:`step_row`) in one statement, each keyed
    by its idempotency key as :func:`record_step`; of two rows with the same key the later wins
    (one statement may not update a row twice)."""
    latest = list({row["idempotency_key"]: row for row in rows}.values())
    if latest:
        await session.execute(_step_upsert(insert(TaskStep).values(latest), workspace_id))


def _step_upsert(ins: Any, workspace_id: uuid.UUID) -> Any:
    """``ins`` (an insert of task steps) updating a step that is there already: its outcome
    moves on, its completion time stays once set."""
    return ins.on_conflict_do_update(
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
    )
