"""Feedback on answers (``task_feedback``): a click recorded once per person per task, a newer
click of the same person replacing it (never an older one arriving late), and an ``audit_log``
entry for each change; the month's counts for App Home."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from lucy.contracts.ids import FEEDBACK_VALUES, idempotency_key
from lucy.db.models import Task, TaskFeedback
from lucy.db.repositories.ledger import record_audit


@dataclass(frozen=True)
class FeedbackCounts:
    good: int
    bad: int


@dataclass(frozen=True)
class FeedbackRecorded:
    """What became of a click."""

    before: str  # the person's feedback before it ("" when none)
    recorded: bool  # False: the same click again, or a late copy of an older one (a newer stands)
    changed: bool  # the feedback changed (an audit entry was written)


async def record_feedback(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    workflow_id: str,
    slack_user_id: str,
    feedback: str,
    clicked_at: datetime,
) -> FeedbackRecorded | None:
    """Record ``slack_user_id``'s ``feedback`` on the task of ``workflow_id``, clicked at
    ``clicked_at`` (Slack's ``action_ts``); None when the workspace has no such task.

    The newest click wins: a redelivered click (same ``clicked_at``) or a late copy of an older
    one changes nothing, whatever order they arrive in; the same value clicked again only moves
    the time. Concurrent first clicks are settled by the primary key (the insert waits for the
    other transaction, then the newer click is applied over it under the row lock). An
    ``audit_log`` entry is written for each change of value, only when a row was written."""
    if feedback not in FEEDBACK_VALUES:
        raise ValueError(f"feedback must be one of {FEEDBACK_VALUES}")
    task_id = await _task_of(session, workspace_id, workflow_id)
    if task_id is None:
        return None
    click = _Click(workspace_id, workflow_id, task_id, slack_user_id, feedback, clicked_at)
    if await _insert_first_click(session, click):
        await _audit(session, click, "")
        return FeedbackRecorded(before="", recorded=True, changed=True)
    return await _apply_if_newer(session, click)


@dataclass(frozen=True)
class _Click:
    workspace_id: uuid.UUID
    workflow_id: str
    task_id: uuid.UUID
    slack_user_id: str
    feedback: str
    clicked_at: datetime


async def _task_of(session: AsyncSession, workspace_id: uuid.UUID, workflow_id: str) -> uuid.UUID | None:
    return (
        await session.execute(
            select(Task.id).where(Task.workspace_id == workspace_id, Task.workflow_id == workflow_id)
        )
    ).scalar_one_or_none()


async def _insert_first_click(session: AsyncSession, click: _Click) -> bool:
    """Insert the user's first feedback on the task; False when they already have a row."""
    inserted = (
        await session.execute(
            insert(TaskFeedback)
            .values(
                workspace_id=click.workspace_id,
                task_id=click.task_id,
                slack_user_id=click.slack_user_id,
                feedback=click.feedback,
                updated_at=click.clicked_at,
            )
            .on_conflict_do_nothing(constraint="pk_task_feedback")
            .returning(TaskFeedback.feedback)
        )
    ).scalar_one_or_none()
    return inserted is not None


async def _apply_if_newer(session: AsyncSession, click: _Click) -> FeedbackRecorded:
    """The row exists (maybe just committed by a concurrent first click): lock it, then apply
    this click only if it is newer than the one recorded."""
    key = (
        TaskFeedback.workspace_id == click.workspace_id,
        TaskFeedback.task_id == click.task_id,
        TaskFeedback.slack_user_id == click.slack_user_id,
    )
    before = (await session.execute(select(TaskFeedback.feedback).where(*key).with_for_update())).scalar_one()
    updated = (
        await session.execute(
            update(TaskFeedback)
            .where(*key, TaskFeedback.updated_at < click.clicked_at)
            .values(feedback=click.feedback, updated_at=click.clicked_at)
            .returning(TaskFeedback.feedback)
        )
    ).scalar_one_or_none()
    if updated is None:
        return FeedbackRecorded(before=before, recorded=False, changed=False)
    changed = before != click.feedback
    if changed:
        await _audit(session, click, before)
    return FeedbackRecorded(before=before, recorded=True, changed=changed)


async def _audit(session: AsyncSession, click: _Click, before: str) -> None:
    """The audit entry for a click that changed the feedback from ``before``."""
    workspace_id, workflow_id, task_id = click.workspace_id, click.workflow_id, click.task_id
    slack_user_id, clicked_at, after = click.slack_user_id, click.clicked_at, click.feedback
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
        after_state={"feedback": after},
    )


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
