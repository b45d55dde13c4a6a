"""Memories: ``memories``, what the team asked Lucy to remember (scoped to a person, a channel or
the workspace), with its provenance (author, source message, task). A tenant table with forced
row-level security, like the others. Full-text retrieval reads the generated ``search``
column (``to_tsvector('english', text)``, GIN-indexed); hybrid retrieval reads ``embedding``
(``real[]``). The ``vector`` extension is created when the server has it (pgvector computes the
cosine in SQL then); a server without it keeps working with full-text and Python's cosine.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "lucy_app_rw"
TABLE = "memories"
SEARCH_PATH = "SET search_path = pg_catalog, public, pg_temp"
# The workspaces that hold memories (ids only), for the nightly upkeep: row-level security is
# forced on memories, for the owner too, so it looks tenant by tenant.
MEMORY_WORKSPACES = f"""
CREATE FUNCTION lucy_memory_workspaces()
RETURNS TABLE (workspace_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER {SEARCH_PATH} AS $$
DECLARE
    v_ws uuid;
    v_prior text := current_setting('lucy.workspace_id', true);
BEGIN
    FOR v_ws IN SELECT w.id FROM public.workspaces w WHERE w.deleted_at IS NULL ORDER BY w.id LOOP
        PERFORM set_config('lucy.workspace_id', v_ws::text, true);
        RETURN QUERY SELECT v_ws WHERE EXISTS (SELECT 1 FROM public.memories m WHERE m.workspace_id = v_ws);
    END LOOP;
    PERFORM set_config('lucy.workspace_id', coalesce(v_prior, ''), true);
END $$
"""


def _vector_extension() -> None:
    """``CREATE EXTENSION vector`` when the server has it; nothing when it does not (or when
    the migrating role may not create it): a savepoint keeps the migration going."""
    bind = op.get_bind()
    available = bind.execute(
        sa.text("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")
    ).scalar_one()
    if not available:
        return
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    except sa.exc.DBAPIError:
        pass


def upgrade() -> None:
    _vector_extension()
    op.create_table(
        TABLE,
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column(
            "scope",
            sa.Enum("me", "channel", "workspace", name="memory_scope", native_enum=False,
                    create_constraint=True, length=32),
            nullable=False,
        ),
        sa.Column("scope_key", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author_slack_id", sa.String(32), nullable=False),
        sa.Column("source_channel_id", sa.String(32), server_default="", nullable=False),
        sa.Column("source_ts", sa.String(32), server_default="", nullable=False),
        sa.Column("source_workflow_id", sa.String(255), server_default="", nullable=False),
        sa.Column(
            "merged_workflow_ids", postgresql.ARRAY(sa.String(255)), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("source_key", sa.String(300), nullable=False),
        sa.Column("embedding", postgresql.ARRAY(sa.REAL()), nullable=True),
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('english', text)", persisted=True),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_memories_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memories")),
    )
    op.create_index("ix_memories_search", TABLE, ["search"], unique=False, postgresql_using="gin")
    op.create_index("ix_memories_workspace_scope", TABLE, ["workspace_id", "scope", "scope_key"], unique=False)
    op.create_index("ix_memories_source_key", TABLE, ["workspace_id", "source_key"], unique=True)
    op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {TABLE} USING (workspace_id = lucy_current_workspace()) "
        "WITH CHECK (workspace_id = lucy_current_workspace())"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {TABLE} TO {APP_ROLE}")
    op.execute(MEMORY_WORKSPACES)
    op.execute("REVOKE EXECUTE ON FUNCTION lucy_memory_workspaces() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION lucy_memory_workspaces() TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION lucy_memory_workspaces()")
    op.drop_table(TABLE)
