"""A workspace's MCP servers: ``mcp_servers``, one row per (workspace, name), with the cached
tool catalog and the admins' risk overrides; the server's token, when it has one, is an
``integrations`` row (provider ``mcp``) with its encrypted ``integration_credentials`` row, so
``lucy db rotate-keys`` re-encrypts it like every other credential. A tenant table with forced
row-level security, like the others; ``lucy_mcp_servers_due()`` (SECURITY DEFINER, ids and
names only) tells the maintenance schedule which catalogs to list again. Additive.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "lucy_app_rw"
TABLE = "mcp_servers"

# The maintenance schedule's refresh: which servers' catalogs are older than ``p_stale`` (ids
# and names only), looked up tenant by tenant because row-level security is forced.
DUE = """
CREATE FUNCTION lucy_mcp_servers_due(p_stale interval, p_limit integer)
RETURNS TABLE (workspace_id uuid, name text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_ws uuid;
    v_prior text := current_setting('lucy.workspace_id', true);
BEGIN
    FOR v_ws IN SELECT w.id FROM public.workspaces w WHERE w.deleted_at IS NULL ORDER BY w.id LOOP
        PERFORM set_config('lucy.workspace_id', v_ws::text, true);
        RETURN QUERY
            SELECT m.workspace_id, m.name::text FROM public.mcp_servers m
             WHERE m.workspace_id = v_ws
               AND (m.refreshed_at IS NULL OR m.refreshed_at < now() - p_stale)
             ORDER BY m.refreshed_at NULLS FIRST, m.name
             LIMIT p_limit;
    END LOOP;
    PERFORM set_config('lucy.workspace_id', coalesce(v_prior, ''), true);
END $$
"""


def _jsonb(name: str) -> sa.Column:
    return sa.Column(
        name, postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        _jsonb("catalog"),
        _jsonb("risk_overrides"),
        sa.Column("integration_id", sa.UUID(), nullable=True),
        sa.Column("added_by", sa.String(32), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_mcp_servers_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_mcp_servers_integration_id_integrations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mcp_servers")),
        sa.UniqueConstraint("workspace_id", "name", name="uq_mcp_servers_workspace_name"),
    )
    op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {TABLE} USING (workspace_id = lucy_current_workspace()) "
        "WITH CHECK (workspace_id = lucy_current_workspace())"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {TABLE} TO {APP_ROLE}")
    op.execute(DUE)
    op.execute("REVOKE EXECUTE ON FUNCTION lucy_mcp_servers_due(interval, integer) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION lucy_mcp_servers_due(interval, integer) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION lucy_mcp_servers_due(interval, integer)")
    op.drop_table(TABLE)
