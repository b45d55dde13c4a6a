"""Recurring requests (patterns): the weekly scan learns which workspaces to look at.

``lucy_pattern_workspaces()`` (SECURITY DEFINER, read-only, ids only): the live workspaces,
``(workspace_id)``. The application role cannot see other tenants' workspace rows; the scan then
reads each workspace's tasks, users, channels and ``patterns`` under that workspace's own
row-level security (``patterns`` exists since 0002, with forced RLS and ``tenant_isolation``).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "lucy_app_rw"
SEARCH_PATH = "SET search_path = pg_catalog, public, pg_temp"

WORKSPACES = f"""
CREATE FUNCTION lucy_pattern_workspaces()
RETURNS TABLE (workspace_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER {SEARCH_PATH} AS $$
DECLARE
    v_ws uuid;
    v_prior text := current_setting('lucy.workspace_id', true);
BEGIN
    -- Row-level security is forced on workspaces, for the owner too: look tenant by tenant.
    FOR v_ws IN SELECT w.id FROM public.workspaces w ORDER BY w.id LOOP
        PERFORM set_config('lucy.workspace_id', v_ws::text, true);
        RETURN QUERY SELECT w.id FROM public.workspaces w WHERE w.id = v_ws AND w.deleted_at IS NULL;
    END LOOP;
    PERFORM set_config('lucy.workspace_id', coalesce(v_prior, ''), true);
END $$
"""


def upgrade() -> None:
    op.execute(WORKSPACES)
    op.execute("REVOKE EXECUTE ON FUNCTION lucy_pattern_workspaces() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION lucy_pattern_workspaces() TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION lucy_pattern_workspaces()")
