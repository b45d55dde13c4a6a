"""Email and webhooks start tasks: their sources, finding a delivery again, finding the workspace.

1. ``tasks.source`` accepts ``email`` (mail to the workspace's AgentMail inbox) and ``webhook``
   (a signed POST to one of the workspace's webhook triggers).
2. ``ix_webhook_deliveries_external`` on ``(workspace_id, source, external_id)``: a redelivered
   webhook finds its first delivery (the table is partitioned by ``created_at``, so a unique
   constraint could not span months; ingress serialises a delivery id with a transaction-level
   advisory lock and looks it up here), and ``ix_webhook_deliveries_email_thread`` finds the
   Slack thread an email thread was announced in (``payload->>'thread_id'``).
3. ``lucy_email_inbox_workspace(inbox_id)`` (SECURITY DEFINER, read-only, ids only): the live
   workspace whose ``settings->>'email_inbox'`` is that AgentMail inbox, and its Slack team. The
   application role cannot see other tenants' workspace rows; ingress learns which tenant a mail
   belongs to only through this function. ``lucy_webhook_trigger_workspace(trigger_id)``, the
   same for a webhook trigger (a key of ``settings->'webhook_triggers'``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "lucy_app_rw"
SEARCH_PATH = "SET search_path = pg_catalog, public, pg_temp"
SOURCES = ("mention", "dm", "command", "thread_reply", "schedule", "heartbeat")

INBOX = f"""
CREATE FUNCTION lucy_email_inbox_workspace(p_inbox text)
RETURNS TABLE (workspace_id uuid, slack_team_id text)
LANGUAGE plpgsql STABLE SECURITY DEFINER {SEARCH_PATH} AS $$
DECLARE
    v_ws uuid;
    v_prior text := current_setting('lucy.workspace_id', true);
BEGIN
    -- Row-level security is forced on workspaces, for the owner too: look tenant by tenant.
    FOR v_ws IN SELECT w.id FROM public.workspaces w ORDER BY w.id LOOP
        PERFORM set_config('lucy.workspace_id', v_ws::text, true);
        RETURN QUERY
            SELECT w.id, w.slack_team_id::text FROM public.workspaces w
             WHERE w.id = v_ws AND w.deleted_at IS NULL
               AND lower(w.settings->>'email_inbox') = lower(p_inbox);
    END LOOP;
    PERFORM set_config('lucy.workspace_id', coalesce(v_prior, ''), true);
END $$
"""

TRIGGER = f"""
CREATE FUNCTION lucy_webhook_trigger_workspace(p_trigger text)
RETURNS TABLE (workspace_id uuid, slack_team_id text)
LANGUAGE plpgsql STABLE SECURITY DEFINER {SEARCH_PATH} AS $$
DECLARE
    v_ws uuid;
    v_prior text := current_setting('lucy.workspace_id', true);
BEGIN
    FOR v_ws IN SELECT w.id FROM public.workspaces w ORDER BY w.id LOOP
        PERFORM set_config('lucy.workspace_id', v_ws::text, true);
        RETURN QUERY
            SELECT w.id, w.slack_team_id::text FROM public.workspaces w
             WHERE w.id = v_ws AND w.deleted_at IS NULL
               AND coalesce(w.settings->'webhook_triggers', '{{}}'::jsonb) ? p_trigger;
    END LOOP;
    PERFORM set_config('lucy.workspace_id', coalesce(v_prior, ''), true);
END $$
"""


def _sources(values: Sequence[str]) -> str:
    return "source IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_tasks_task_source"), "tasks", type_="check")
    op.create_check_constraint("task_source", "tasks", _sources((*SOURCES, "email", "webhook")))
    op.create_index(
        "ix_webhook_deliveries_external",
        "webhook_deliveries",
        ["workspace_id", "source", "external_id"],
        unique=False,
    )
    op.create_index(
        "ix_webhook_deliveries_email_thread",
        "webhook_deliveries",
        ["workspace_id", sa.text("(payload->>'thread_id')")],
        unique=False,
        postgresql_where=sa.text("source = 'agentmail'"),
    )
    op.execute(INBOX)
    op.execute("REVOKE EXECUTE ON FUNCTION lucy_email_inbox_workspace(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION lucy_email_inbox_workspace(text) TO {APP_ROLE}")
    op.execute(TRIGGER)
    op.execute("REVOKE EXECUTE ON FUNCTION lucy_webhook_trigger_workspace(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION lucy_webhook_trigger_workspace(text) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION lucy_webhook_trigger_workspace(text)")
    op.execute("DROP FUNCTION lucy_email_inbox_workspace(text)")
    op.drop_index("ix_webhook_deliveries_email_thread", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_external", table_name="webhook_deliveries")
    op.execute("DELETE FROM tasks WHERE source IN ('email', 'webhook')")
    op.drop_constraint(op.f("ck_tasks_task_source"), "tasks", type_="check")
    op.create_check_constraint("task_source", "tasks", _sources(SOURCES))
