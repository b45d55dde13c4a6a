"""Feedback clicks in the real database: the newest click wins whatever order copies arrive in,
concurrent first clicks settle on the newer one, and the audit log has one entry per change."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from capabilities.feedback.repository import FeedbackRecorded, record_feedback
from lucy.db.models import AuditLog, Task, TaskFeedback
from tests.kernel.db.test_store import new_task, new_workspace, tenant


async def _task(engine: AsyncEngine) -> tuple[uuid.UUID, str]:
    ws = await new_workspace(engine)
    task_id = await new_task(engine, ws)
    async with tenant(engine, ws) as s:
        workflow_id = (await s.execute(select(Task.workflow_id).where(Task.id == task_id))).scalar_one()
    return ws, workflow_id


async def _click(
    engine: AsyncEngine, ws: uuid.UUID, workflow_id: str, feedback: str, at: datetime, user: str = "U0ANA"
) -> FeedbackRecorded | None:
    async with tenant(engine, ws) as s:
        return await record_feedback(
            session=s,
            workspace_id=ws,
            workflow_id=workflow_id,
            slack_user_id=user,
            feedback=feedback,
            clicked_at=at,
        )


async def _state(engine: AsyncEngine, ws: uuid.UUID, workflow_id: str) -> tuple[list[Any], list[Any]]:
    async with tenant(engine, ws) as s:
        rows = (await s.execute(select(TaskFeedback.feedback, TaskFeedback.updated_at))).all()
        audit = (
            await s.execute(
                select(AuditLog.before_state, AuditLog.after_state, AuditLog.created_at)
                .where(AuditLog.workflow_id == workflow_id, AuditLog.action == "task.feedback")
                .order_by(AuditLog.created_at)
            )
        ).all()
    return [tuple(r) for r in rows], [tuple(a) for a in audit]


async def test_a_late_copy_of_an_older_click_does_not_undo_a_newer_one(engine: AsyncEngine):
    ws, workflow_id = await _task(engine)
    old = datetime.now(UTC) - timedelta(seconds=30)
    new = old + timedelta(seconds=10)
    first = await _click(engine, ws, workflow_id, "bad", new)
    assert first == FeedbackRecorded(before="", recorded=True, changed=True)
    late = await _click(engine, ws, workflow_id, "good", old)  # delivered after the newer click
    assert late == FeedbackRecorded(before="bad", recorded=False, changed=False)
    rows, audit = await _state(engine, ws, workflow_id)
    assert rows == [("bad", new)]
    assert audit == [(None, {"feedback": "bad"}, new)]
    # A newer click still changes it, with its audit entry; the same value again only moves the time.
    assert await _click(engine, ws, workflow_id, "good", new + timedelta(seconds=5)) == FeedbackRecorded(
        before="bad", recorded=True, changed=True
    )
    again = await _click(engine, ws, workflow_id, "good", new + timedelta(seconds=8))
    assert again == FeedbackRecorded(before="good", recorded=True, changed=False)
    # good (t+5), good (t+8) then a late bad (t+6): the good of t+8 stands.
    assert (await _click(engine, ws, workflow_id, "bad", new + timedelta(seconds=6))).recorded is False  # type: ignore[union-attr]
    rows, audit = await _state(engine, ws, workflow_id)
    assert rows == [("good", new + timedelta(seconds=8))]
    assert [(a[0], a[1]) for a in audit] == [
        (None, {"feedback": "bad"}),
        ({"feedback": "bad"}, {"feedback": "good"}),
    ]


async def test_concurrent_first_clicks_settle_on_the_newer_one(engine: AsyncEngine):
    for _ in range(5):
        ws, workflow_id = await _task(engine)
        base = datetime.now(UTC) - timedelta(seconds=20)
        older, newer = base, base + timedelta(seconds=1)
        outcomes = await asyncio.gather(
            _click(engine, ws, workflow_id, "good", older), _click(engine, ws, workflow_id, "bad", newer)
        )
        rows, audit = await _state(engine, ws, workflow_id)
        assert rows == [("bad", newer)]
        firsts = [o for o in outcomes if o is not None and o.before == ""]
        assert len(firsts) == 1  # exactly one of them found no feedback before it
        # One entry per change of the row, each starting where the previous one ended.
        states = [a[1]["feedback"] for a in audit]
        assert states[-1] == "bad" and audit[0][0] is None
        for previous, entry in itertools.pairwise(audit):
            assert entry[0] == previous[1]
