"""Feedback on answers: ``task_feedback``, one row per (task, person who clicked), replaced by
a later click of the same person (Slack's feedback buttons under Lucy's answers). A tenant table
with forced row-level security, like the others; App Home counts it per month
(``ix_task_feedback_workspace_updated``). Additive: nothing else changes.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "lucy_app_rw"
TABLE = "task_feedback"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("task_id", sa.UUID(), nullable=False),
        sa.Column("slack_user_id", sa.String(32), nullable=False),
        sa.Column(
            "feedback",
            sa.Enum("good", "bad", name="feedback_value", native_enum=False, create_constraint=True, length=32),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_task_feedback_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_feedback_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("workspace_id", "task_id", "slack_user_id", name=op.f("pk_task_feedback")),
    )
    op.create_index("ix_task_feedback_workspace_updated", TABLE, ["workspace_id", "updated_at"], unique=False)
    op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {TABLE} USING (workspace_id = lucy_current_workspace()) "
        "WITH CHECK (workspace_id = lucy_current_workspace())"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {TABLE} TO {APP_ROLE}")


def downgrade() -> None:
    op.drop_table(TABLE)
