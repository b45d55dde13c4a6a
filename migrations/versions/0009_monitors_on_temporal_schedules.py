"""Monitors mirrored to Temporal Schedules: what a heartbeat row keeps, probes as tasks.

1. ``heartbeats`` gains its owner (``created_by``: whose quota the probes use, who hears about
   the error state), ``description`` (the condition in plain words), ``alert_state`` (``ok`` or
   ``alerting``: a recovery is said once), ``last_evidence``, ``last_workflow_id`` and
   ``last_decision`` (a probe is counted once, and a retried record says the same thing) and
   ``error_reason``.
2. ``tasks.source`` accepts ``heartbeat``: each probe is a task row, counted like any request.
3. ``lucy_live_heartbeats()`` (SECURITY DEFINER, read-only, ids only): every live monitor of every
   live workspace, for the reconciler.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "lucy_app_rw"
SEARCH_PATH = "SET search_path = pg_catalog, public, pg_temp"
SOURCES = ("mention", "dm", "command", "thread_reply", "schedule")

LIVE = f"""
CREATE FUNCTION lucy_live_heartbeats()
RETURNS TABLE (workspace_id uuid, heartbeat_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER {SEARCH_PATH} AS $$
DECLARE
    v_ws uuid;
    v_prior text := current_setting('lucy.workspace_id', true);
BEGIN
    -- Row-level security is forced on heartbeats, for the owner too: look tenant by tenant.
    FOR v_ws IN SELECT w.id FROM public.workspaces w WHERE w.deleted_at IS NULL ORDER BY w.id LOOP
        PERFORM set_config('lucy.workspace_id', v_ws::text, true);
        RETURN QUERY
            SELECT h.workspace_id, h.id FROM public.heartbeats h
             WHERE h.workspace_id = v_ws AND h.deleted_at IS NULL
             ORDER BY h.id;
    END LOOP;
    PERFORM set_config('lucy.workspace_id', coalesce(v_prior, ''), true);
END $$
"""


def _sources(values: Sequence[str]) -> str:
    return "source IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    add = op.add_column
    add(
        "heartbeats",
        sa.Column(
            "created_by",
            sa.UUID(),
            sa.ForeignKey("users.id", ondelete="SET NULL", name=op.f("fk_heartbeats_created_by_users")),
        ),
    )
    add("heartbeats", sa.Column("description", sa.Text(), server_default="", nullable=False))
    add("heartbeats", sa.Column("alert_state", sa.String(16), server_default="ok", nullable=False))
    add("heartbeats", sa.Column("last_evidence", sa.Text()))
    add("heartbeats", sa.Column("last_workflow_id", sa.String(255)))
    add("heartbeats", sa.Column("last_decision", sa.String(16)))
    add("heartbeats", sa.Column("error_reason", sa.Text()))
    op.drop_constraint(op.f("ck_tasks_task_source"), "tasks", type_="check")
    op.create_check_constraint("task_source", "tasks", _sources((*SOURCES, "heartbeat")))
    op.execute(LIVE)
    op.execute("REVOKE EXECUTE ON FUNCTION lucy_live_heartbeats() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION lucy_live_heartbeats() TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION lucy_live_heartbeats()")
    op.execute("DELETE FROM tasks WHERE source = 'heartbeat'")
    op.drop_constraint(op.f("ck_tasks_task_source"), "tasks", type_="check")
    op.create_check_constraint("task_source", "tasks", _sources(SOURCES))
    for column in (
        "error_reason",
        "last_decision",
        "last_workflow_id",
        "last_evidence",
        "alert_state",
        "description",
        "created_by",
    ):
        op.drop_column("heartbeats", column)
