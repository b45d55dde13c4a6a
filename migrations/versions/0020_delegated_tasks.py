"""Delegated sub-tasks: ``tasks.source`` accepts ``delegated``.

A task may split its work into sub-tasks (the ``delegate`` tool, docs/delegate.md); each runs as
a child ``LucyTaskWorkflow`` and is recorded as a task of its own, with source ``delegated``, so
its steps, costs and approvals are kept like any task's. No new table.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = ("mention", "dm", "command", "thread_reply", "schedule", "heartbeat", "email", "webhook")


def _sources(values: Sequence[str]) -> str:
    return "source IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_tasks_task_source"), "tasks", type_="check")
    op.create_check_constraint("task_source", "tasks", _sources((*SOURCES, "delegated")))


def downgrade() -> None:
    op.execute("DELETE FROM tasks WHERE source = 'delegated'")
    op.drop_constraint(op.f("ck_tasks_task_source"), "tasks", type_="check")
    op.create_check_constraint("task_source", "tasks", _sources(SOURCES))
