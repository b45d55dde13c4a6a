"""Monitors are called monitors in storage too: ``heartbeats`` becomes ``monitors``.

1. The table, its constraints and indexes (``pk_heartbeats``, ``fk_heartbeats_*``,
   ``uq_heartbeats_temporal_schedule_id``, the ``heartbeat_condition`` / ``heartbeat_status``
   checks) say ``monitor``. Row-level security, its ``tenant_isolation`` policy and the grants
   belong to the table, so they follow the rename.
2. ``lucy_live_heartbeats()`` becomes ``lucy_live_monitors()`` (the same SECURITY DEFINER,
   read-only, ids-only reader for the reconciler), returning ``(workspace_id, monitor_id)``.

What Temporal holds is unchanged: Schedule ids (``lucy-heartbeat-<row id>``), the workflow name
``LucyHeartbeatWorkflow``, the ``heartbeats.*`` activities and ``tasks.source = 'heartbeat'``.
The downgrade renames everything back.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-09
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "lucy_app_rw"
SEARCH_PATH = "SET search_path = pg_catalog, public, pg_temp"

LIVE = """
CREATE FUNCTION lucy_live_{table}()
RETURNS TABLE (workspace_id uuid, {column} uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER {search_path} AS $$
DECLARE
    v_ws uuid;
    v_prior text := current_setting('lucy.workspace_id', true);
BEGIN
    -- Row-level security is forced on {table}, for the owner too: look tenant by tenant.
    FOR v_ws IN SELECT w.id FROM public.workspaces w WHERE w.deleted_at IS NULL ORDER BY w.id LOOP
        PERFORM set_config('lucy.workspace_id', v_ws::text, true);
        RETURN QUERY
            SELECT m.workspace_id, m.id FROM public.{table} m
             WHERE m.workspace_id = v_ws AND m.deleted_at IS NULL
             ORDER BY m.id;
    END LOOP;
    PERFORM set_config('lucy.workspace_id', coalesce(v_prior, ''), true);
END $$
"""

# Every constraint and index of the table whose name holds ``old``, renamed to hold ``new``.
RENAME_NAMES = """
DO $$
DECLARE
    v record;
BEGIN
    FOR v IN SELECT conname AS name, contype FROM pg_constraint
              WHERE conrelid = 'public.{table}'::regclass AND conname LIKE '%{old}%' LOOP
        EXECUTE format('ALTER TABLE public.{table} RENAME CONSTRAINT %I TO %I',
                       v.name, replace(v.name, '{old}', '{new}'));
    END LOOP;
    FOR v IN SELECT indexname AS name FROM pg_indexes
              WHERE schemaname = 'public' AND tablename = '{table}' AND indexname LIKE '%{old}%' LOOP
        EXECUTE format('ALTER INDEX public.%I RENAME TO %I', v.name, replace(v.name, '{old}', '{new}'));
    END LOOP;
END $$
"""


def _rename(old: str, new: str) -> None:
    """Table ``{old}s`` becomes ``{new}s``, with its names and its live-rows function."""
    op.execute(f"DROP FUNCTION lucy_live_{old}s()")
    op.rename_table(f"{old}s", f"{new}s")
    op.execute(RENAME_NAMES.format(table=f"{new}s", old=old, new=new))
    op.execute(LIVE.format(table=f"{new}s", column=f"{new}_id", search_path=SEARCH_PATH))
    op.execute(f"REVOKE EXECUTE ON FUNCTION lucy_live_{new}s() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION lucy_live_{new}s() TO {APP_ROLE}")


def upgrade() -> None:
    _rename("heartbeat", "monitor")


def downgrade() -> None:
    _rename("monitor", "heartbeat")
