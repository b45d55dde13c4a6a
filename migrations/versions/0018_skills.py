"""Workspace skills: ``skill_versions`` (every version of every ``SKILL.md``, kept; a skill's
current state is its newest row) and ``tasks.skill`` ("name@version" of the skill a task used).
A tenant table with forced row-level security, like the others. Additive.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "lucy_app_rw"
TABLE = "skill_versions"
CHANGES = ("added", "updated", "enabled", "disabled", "removed")


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "change",
            sa.Enum(*CHANGES, name="skill_change", native_enum=False, create_constraint=True, length=32),
            nullable=False,
        ),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(1024), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("allowed_tools", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("model_tier", sa.String(32), nullable=True),
        sa.Column("added_by", sa.String(32), nullable=False),
        sa.Column("changed_by", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_skill_versions_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skill_versions")),
        sa.UniqueConstraint("workspace_id", "name", "version", name="uq_skill_versions_workspace_name_version"),
    )
    op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {TABLE} USING (workspace_id = lucy_current_workspace()) "
        "WITH CHECK (workspace_id = lucy_current_workspace())"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {TABLE} TO {APP_ROLE}")
    op.add_column("tasks", sa.Column("skill", sa.String(100), nullable=True))


def downgrade() -> None:
    op.drop_column("tasks", "skill")
    op.drop_table(TABLE)
