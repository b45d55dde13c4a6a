"""Maintenance prunes remembered v1 webhook signatures.

A webhook trigger's deprecated v1 signature does not cover the delivery id, so the ingress
remembers each one in ``webhook_deliveries`` (``source = 'webhook_v1_signature'``) to refuse
the same signed request under another id. Once the signature's timestamp is past the 5-minute
tolerance no replay of it verifies, and the row serves nothing; until now it stayed until its
month's partition was dropped. ``lucy_prune_v1_signatures(before)`` (SECURITY DEFINER, every
tenant, only that source) deletes those recorded before ``before``; ``maintenance.reconcile_claims``
calls it with an hour's margin.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "lucy_app_rw"
SEARCH_PATH = "SET search_path = pg_catalog, public, pg_temp"
SIGNATURE = "lucy_prune_v1_signatures(timestamptz)"


def upgrade() -> None:
    op.execute(
        f"""
CREATE FUNCTION lucy_prune_v1_signatures(p_before timestamptz)
RETURNS integer LANGUAGE plpgsql VOLATILE SECURITY DEFINER {SEARCH_PATH} AS $$
DECLARE
    v_ws uuid;
    v_prior text := current_setting('lucy.workspace_id', true);
    v_gone integer;
    n integer := 0;
BEGIN
    -- Row-level security is forced on webhook_deliveries, for the owner too: tenant by tenant.
    FOR v_ws IN SELECT w.id FROM public.workspaces w ORDER BY w.id LOOP
        PERFORM set_config('lucy.workspace_id', v_ws::text, true);
        DELETE FROM public.webhook_deliveries d
         WHERE d.workspace_id = v_ws AND d.source = 'webhook_v1_signature' AND d.created_at < p_before;
        GET DIAGNOSTICS v_gone = ROW_COUNT;
        n := n + v_gone;
    END LOOP;
    PERFORM set_config('lucy.workspace_id', coalesce(v_prior, ''), true);
    RETURN n;
END $$
"""
    )
    op.execute(f"REVOKE EXECUTE ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
