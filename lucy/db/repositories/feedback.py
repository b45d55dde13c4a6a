"""Feedback on answers (``task_feedback``): a click recorded once per person per task, a later
click of the same person replacing it, and an ``audit_log`` entry for each change; the month's
counts for App Home."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from lucy.contracts import FEEDBACK_VALUES, idempotency_key
from lucy.db.models import Task, TaskFeedback
from lucy.db.repositories.ledger import record_audit


@dataclass(frozen=True)
class FeedbackCounts:
    good: int
    bad: int


async def record_feedback(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    workflow_id: str,
    slack_user_id: str,
    feedback: str,
    clicked_at: datetime,
) -> str | None:
    """Record ``slack_user_id``'s ``feedback`` on the task of ``workflow_id``. Returns what it
    was before ("" when new), or None when the workspace has no such task. The same click
    delivered twice (same ``clicked_at``) or the same value clicked again changes nothing."""
    if feedback not in FEEDBACK_VALUES:
        raise ValueError(f"feedback must be one of {FEEDBACK_VALUES}")
    task_id = (
        await session.execute(
            select(Task.id).where(Task.workspace_id == workspace_id, Task.workflow_id == workflow_id)
        )
    ).scalar_one_or_none()
    if task_id is None:
        return None
    before = (
        await session.execute(
            select(TaskFeedback.feedback)
            .where(
                TaskFeedback.workspace_id == workspace_id,
                TaskFeedback.task_id == task_id,
                TaskFeedback.slack_user_id == slack_user_id,
            )
            .with_for_update()
        )
    ).scalar_one_or_none() or ""
    if before == feedback:
        return before
    stmt = insert(TaskFeedback).values(
        workspace_id=workspace_id,
        task_id=task_id,
        slack_user_id=slack_user_id,
        feedback=feedback,
        updated_at=clicked_at,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            constraint="pk_task_feedback",
            set_={"feedback": stmt.excluded.feedback, "updated_at": stmt.excluded.updated_at},
        )
    )
    await record_audit(
        session=session,
        workspace_id=workspace_id,
        idempotency_key=idempotency_key(workflow_id, "feedback", slack_user_id, clicked_at.isoformat()),
        occurred_at=clicked_at,
        actor_type="user",
        actor_id=slack_user_id,
        action="task.feedback",
        entity_type="task",
        entity_id=str(task_id),
        task_id=task_id,
        workflow_id=workflow_id,
        before_state={"feedback": before} if before else None,
        after_state={"feedback": feedback},
    )
    return before


async def monthly_feedback(*, session: AsyncSession, workspace_id: uuid.UUID, month: date) -> FeedbackCounts:
    """How many answers got a thumbs up and down in ``month`` (each person's latest click)."""
    start = datetime.combine(month.replace(day=1), time(), tzinfo=UTC)
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    end = datetime.combine(following, time(), tzinfo=UTC)
    rows = (
        await session.execute(
            select(TaskFeedback.feedback, func.count())
            .where(
                TaskFeedback.workspace_id == workspace_id,
                TaskFeedback.updated_at >= start,
                TaskFeedback.updated_at < end,
            )
            .group_by(TaskFeedback.feedback)
        )
    ).all()
    counts = {str(value): int(n) for value, n in rows}
    return FeedbackCounts(good=counts.get("good", 0), bad=counts.get("bad", 0))
