"""SECURITY DEFINER hygiene, removed workspaces stay removed, and maintenance without the owner.

1. Every SECURITY DEFINER function pins ``search_path = pg_catalog, public, pg_temp`` and
   names its objects by schema, so a caller cannot plant a look-alike table or function in a
   schema it controls; ``EXECUTE`` is revoked from ``PUBLIC`` and granted to the application
   role only. (Functions without SECURITY DEFINER run with the caller's rights; they get the
   same ``search_path`` for predictability.)
2. ``lucy_resolve_workspace`` no longer un-deletes a soft-deleted workspace: a Slack team
   whose workspace was removed resolves to NULL, and ``lucy_ingress_claim`` refuses its
   requests (``refused = 'workspace_removed'``) instead of bringing it back.
3. The application role can keep partitions ready and find orphaned claims through two narrow
   SECURITY DEFINER functions, so the worker needs no owner connection:
   ``lucy_maintain_partitions(months_ahead)`` (drain the default partitions, create this month
   and the next ones; never drops anything: retention stays with ``lucy db partitions`` as the
   owner) and ``lucy_stale_claims(older_than, max_rows)`` (task rows still ``created``, per
   workspace, for the reconciler to check against Temporal).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "lucy_app_rw"
CLAIM_SIGNATURE = (
    "text, text, text, text, text, text, text, text, text, text, text, float8, float8, float8, float8, date"
)
SEARCH_PATH = "SET search_path = pg_catalog, public, pg_temp"

RESOLVE = f"""
CREATE OR REPLACE FUNCTION lucy_resolve_workspace(team_id text, team_name text DEFAULT NULL) RETURNS uuid
LANGUAGE sql SECURITY DEFINER {SEARCH_PATH} AS $$
    INSERT INTO public.workspaces AS w (slack_team_id, name)
    VALUES (team_id, team_name)
    ON CONFLICT (slack_team_id) DO UPDATE
        SET name = COALESCE(excluded.name, w.name), updated_at = now()
        WHERE w.deleted_at IS NULL
    RETURNING id
$$
"""

RESOLVE_0002 = """
CREATE OR REPLACE FUNCTION lucy_resolve_workspace(team_id text, team_name text DEFAULT NULL) RETURNS uuid
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    INSERT INTO workspaces AS w (slack_team_id, name)
    VALUES (team_id, team_name)
    ON CONFLICT (slack_team_id) DO UPDATE
        SET name = COALESCE(excluded.name, w.name), deleted_at = NULL, updated_at = now()
    RETURNING id
$$
"""

MAINTAIN = f"""
CREATE FUNCTION lucy_maintain_partitions(p_months_ahead int) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER {SEARCH_PATH} AS $$
DECLARE
    v_parent text;
    v_month date;
    v_moved bigint;
    v_before text[];
    v_drained jsonb := '{{}}'::jsonb;
BEGIN
    IF p_months_ahead IS NULL OR p_months_ahead < 0 OR p_months_ahead > 24 THEN
        RAISE EXCEPTION 'months ahead must be between 0 and 24' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(array_agg(c.relname::text), '{{}}') INTO v_before
      FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
      JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
     WHERE p.relname IN ('cost_log', 'audit_log', 'webhook_deliveries');
    FOREACH v_parent IN ARRAY ARRAY['cost_log', 'audit_log', 'webhook_deliveries'] LOOP
        v_moved := public.lucy_drain_default_partition(v_parent);
        IF v_moved > 0 THEN
            v_drained := v_drained || jsonb_build_object(v_parent, v_moved);
        END IF;
        FOR n IN 0..p_months_ahead LOOP
            v_month := (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => n))::date;
            PERFORM public.lucy_ensure_month_partition(v_parent, v_month);
        END LOOP;
    END LOOP;
    RETURN jsonb_build_object(
        'drained', v_drained,
        'created', coalesce((
            SELECT jsonb_agg(c.relname::text ORDER BY c.relname)
              FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
              JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
             WHERE p.relname IN ('cost_log', 'audit_log', 'webhook_deliveries')
               AND NOT (c.relname::text = ANY (v_before))
        ), '[]'::jsonb)
    );
END $$
"""

STALE = f"""
CREATE FUNCTION lucy_stale_claims(p_older_than interval, p_max_rows int)
RETURNS TABLE (workspace_id uuid, workflow_id text)
LANGUAGE plpgsql SECURITY DEFINER {SEARCH_PATH} AS $$
DECLARE
    v_ws uuid;
    v_prior text := current_setting('lucy.workspace_id', true);
BEGIN
    -- Row-level security is forced on tasks, for the owner too: look tenant by tenant.
    FOR v_ws IN SELECT w.id FROM public.workspaces w ORDER BY w.id LOOP
        PERFORM set_config('lucy.workspace_id', v_ws::text, true);
        RETURN QUERY
            SELECT t.workspace_id, t.workflow_id::text FROM public.tasks t
             WHERE t.workspace_id = v_ws AND t.status = 'created'
               AND t.created_at < now() - p_older_than
             ORDER BY t.created_at
             LIMIT least(greatest(p_max_rows, 0), 1000);
    END LOOP;
    PERFORM set_config('lucy.workspace_id', coalesce(v_prior, ''), true);
END $$
"""

# lucy_ingress_claim (0005), refusing a removed workspace instead of claiming in it.
CLAIM_GUARD_OLD = """    lucy_ingress_claim.workspace_id := lucy_resolve_workspace(p_team, NULL);
    PERFORM set_config('lucy.workspace_id', lucy_ingress_claim.workspace_id::text, true);
"""
CLAIM_GUARD_NEW = """    lucy_ingress_claim.workspace_id := lucy_resolve_workspace(p_team, NULL);
    IF lucy_ingress_claim.workspace_id IS NULL THEN  -- the workspace was removed from Lucy
        refused := 'workspace_removed';
        claimed := false;
        retry_after := 0;
        RETURN;
    END IF;
    PERFORM set_config('lucy.workspace_id', lucy_ingress_claim.workspace_id::text, true);
"""


def _claim_function(guarded: bool) -> str:
    """0005's ``lucy_ingress_claim``, with or without the removed-workspace guard."""
    body = importlib.import_module("migrations.versions.0005_ingress_claim_function").CREATE
    if guarded:
        assert CLAIM_GUARD_OLD in body
        body = body.replace(CLAIM_GUARD_OLD, CLAIM_GUARD_NEW)
    return body.replace("CREATE FUNCTION lucy_ingress_claim(", "CREATE OR REPLACE FUNCTION lucy_ingress_claim(", 1)


def upgrade() -> None:
    op.execute(RESOLVE)
    op.execute(_claim_function(guarded=True))
    op.execute(MAINTAIN)
    op.execute(STALE)
    for fn in (
        "lucy_resolve_workspace(text, text)",
        "lucy_maintain_partitions(int)",
        "lucy_stale_claims(interval, int)",
        f"lucy_ingress_claim({CLAIM_SIGNATURE})",
        "lucy_current_workspace()",
    ):
        op.execute(f"REVOKE EXECUTE ON FUNCTION {fn} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {fn} TO {APP_ROLE}")
    for fn in (
        "lucy_current_workspace()",
        "lucy_cost_monthly_rollup()",
        "lucy_audit_log_immutable()",
        f"lucy_ingress_claim({CLAIM_SIGNATURE})",
    ):
        op.execute(f"ALTER FUNCTION {fn} {SEARCH_PATH}")


def downgrade() -> None:
    op.execute("DROP FUNCTION lucy_stale_claims(interval, int)")
    op.execute("DROP FUNCTION lucy_maintain_partitions(int)")
    op.execute(_claim_function(guarded=False))
    op.execute(f"ALTER FUNCTION lucy_ingress_claim({CLAIM_SIGNATURE}) SET search_path = public")
    op.execute(RESOLVE_0002)
    for fn in ("lucy_current_workspace()", "lucy_cost_monthly_rollup()", "lucy_audit_log_immutable()"):
        op.execute(f"ALTER FUNCTION {fn} RESET search_path")
