"""Schedules mirrored to Temporal Schedules: what a schedule row keeps, and a tenant-wide list.

1. ``schedules`` gains what the mirror and its runs need: ``every_seconds`` (an interval, when
   ``cron_expression`` is empty), ``description`` (the recurrence in plain words), the last
   run's ``last_outcome`` and ``last_workflow_id``, ``consecutive_failures`` (the schedule
   pauses after too many), ``paused_reason``, ``missed_runs`` (runs Temporal skipped beyond the
   catch-up window, as last reported in the channel) and ``quota_notice_month`` (one quota
   notice per schedule and month, not one per fire).
2. ``lucy_live_schedules()`` (SECURITY DEFINER, read-only, ids only): every live schedule of
   every live workspace, so the reconciler, as the application role, can compare rows with
   Temporal's schedules in both directions.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "lucy_app_rw"
SEARCH_PATH = "SET search_path = pg_catalog, public, pg_temp"

LIVE = f"""
CREATE FUNCTION lucy_live_schedules()
RETURNS TABLE (workspace_id uuid, schedule_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER {SEARCH_PATH} AS $$
DECLARE
    v_ws uuid;
    v_prior text := current_setting('lucy.workspace_id', true);
BEGIN
    -- Row-level security is forced on schedules, for the owner too: look tenant by tenant.
    FOR v_ws IN SELECT w.id FROM public.workspaces w WHERE w.deleted_at IS NULL ORDER BY w.id LOOP
        PERFORM set_config('lucy.workspace_id', v_ws::text, true);
        RETURN QUERY
            SELECT s.workspace_id, s.id FROM public.schedules s
             WHERE s.workspace_id = v_ws AND s.deleted_at IS NULL
             ORDER BY s.id;
    END LOOP;
    PERFORM set_config('lucy.workspace_id', coalesce(v_prior, ''), true);
END $$
"""


def upgrade() -> None:
    add = op.add_column
    add("schedules", sa.Column("every_seconds", sa.Integer(), server_default=sa.text("0"), nullable=False))
    add("schedules", sa.Column("description", sa.Text(), server_default="", nullable=False))
    add("schedules", sa.Column("last_outcome", sa.String(32)))
    add("schedules", sa.Column("last_workflow_id", sa.String(255)))
    add("schedules", sa.Column("consecutive_failures", sa.Integer(), server_default=sa.text("0"), nullable=False))
    add("schedules", sa.Column("paused_reason", sa.Text()))
    add("schedules", sa.Column("missed_runs", sa.Integer(), server_default=sa.text("0"), nullable=False))
    add("schedules", sa.Column("quota_notice_month", sa.Date()))
    op.create_check_constraint(
        "every_seconds_or_cron", "schedules", "(every_seconds > 0) <> (cron_expression <> '')"
    )
    op.execute(LIVE)
    op.execute("REVOKE EXECUTE ON FUNCTION lucy_live_schedules() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION lucy_live_schedules() TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION lucy_live_schedules()")
    op.drop_constraint(op.f("ck_schedules_every_seconds_or_cron"), "schedules", type_="check")
    for column in (
        "quota_notice_month",
        "missed_runs",
        "paused_reason",
        "consecutive_failures",
        "last_workflow_id",
        "last_outcome",
        "description",
        "every_seconds",
    ):
        op.drop_column("schedules", column)
