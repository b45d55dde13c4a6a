"""Thread look-up index: a reply in a Slack thread finds the thread's latest task.

Ingress asks "which task lives in this thread?" for every person's reply in a thread of a
channel Lucy is in (``repositories.latest_thread_task``); without this index that is a scan
of the workspace's tasks.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_tasks_thread",
        "tasks",
        ["workspace_id", "slack_channel_id", "slack_thread_ts", "created_at"],
        postgresql_include=["workflow_id", "status"],
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_thread", table_name="tasks")
