"""The email listener learns which AgentMail inboxes to subscribe to.

``lucy_email_inboxes()`` (SECURITY DEFINER, read-only): the AgentMail inbox ids bound to live
workspaces (``settings->>'email_inbox'``, lower-cased, de-duplicated), and nothing else (no
workspace id, no team, no settings). The listener (``lucy email-listener``, ``lucy ingress
--socket``) subscribes AgentMail's WebSocket to exactly these; the application role cannot see
other tenants' workspace rows, so it learns them only through this function.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "lucy_app_rw"
SEARCH_PATH = "SET search_path = pg_catalog, public, pg_temp"

INBOXES = f"""
CREATE FUNCTION lucy_email_inboxes()
RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER {SEARCH_PATH} AS $$
DECLARE
    v_ws uuid;
    v_prior text := current_setting('lucy.workspace_id', true);
    v_found text[] := ARRAY[]::text[];
    v_inbox text;
BEGIN
    -- Row-level security is forced on workspaces, for the owner too: look tenant by tenant.
    FOR v_ws IN SELECT w.id FROM public.workspaces w ORDER BY w.id LOOP
        PERFORM set_config('lucy.workspace_id', v_ws::text, true);
        SELECT lower(w.settings->>'email_inbox') INTO v_inbox FROM public.workspaces w
         WHERE w.id = v_ws AND w.deleted_at IS NULL AND coalesce(w.settings->>'email_inbox', '') <> '';
        IF v_inbox IS NOT NULL AND NOT v_inbox = ANY(v_found) THEN
            v_found := v_found || v_inbox;
        END IF;
        v_inbox := NULL;
    END LOOP;
    PERFORM set_config('lucy.workspace_id', coalesce(v_prior, ''), true);
    RETURN QUERY SELECT unnest(v_found) ORDER BY 1;
END $$
"""


def upgrade() -> None:
    op.execute(INBOXES)
    op.execute("REVOKE EXECUTE ON FUNCTION lucy_email_inboxes() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION lucy_email_inboxes() TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION lucy_email_inboxes()")
