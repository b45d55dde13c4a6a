"""Hot-path indexes shaped by bench/db_hot_paths.py at the 10K-users scale.

- ix_tasks_workspace_created gains ``id`` (the task history keyset order) and includes
  ``status``: a history page answers from the index alone.
- ix_tasks_active includes ``created_at`` and ``id``: active tasks answer from the index alone.
- ix_approvals_pending gains ``expires_at``: pending approvals come out already ordered.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text("status IN ('created', 'pending_approval', 'running')")
PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.drop_index("ix_tasks_workspace_created", table_name="tasks")
    op.create_index(
        "ix_tasks_workspace_created", "tasks", ["workspace_id", "created_at", "id"], postgresql_include=["status"]
    )
    op.drop_index("ix_tasks_active", table_name="tasks", postgresql_where=ACTIVE)
    op.create_index(
        "ix_tasks_active",
        "tasks",
        ["workspace_id", "status"],
        postgresql_where=ACTIVE,
        postgresql_include=["created_at", "id"],
    )
    op.drop_index("ix_approvals_pending", table_name="approvals", postgresql_where=PENDING)
    op.create_index("ix_approvals_pending", "approvals", ["approver_id", "expires_at"], postgresql_where=PENDING)


def downgrade() -> None:
    op.drop_index("ix_approvals_pending", table_name="approvals", postgresql_where=PENDING)
    op.create_index("ix_approvals_pending", "approvals", ["approver_id"], postgresql_where=PENDING)
    op.drop_index("ix_tasks_active", table_name="tasks", postgresql_where=ACTIVE)
    op.create_index("ix_tasks_active", "tasks", ["workspace_id", "status"], postgresql_where=ACTIVE)
    op.drop_index("ix_tasks_workspace_created", table_name="tasks")
    op.create_index("ix_tasks_workspace_created", "tasks", ["workspace_id", "created_at"])
