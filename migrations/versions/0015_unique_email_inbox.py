"""One AgentMail inbox, one workspace.

``uq_workspaces_email_inbox``: a unique index on ``lower(settings->>'email_inbox')`` over live
workspaces with an inbox. A unique index holds across tenants whatever row-level security lets
a session see, so two workspaces binding the same inbox at once cannot both win: the second
waits for the first and fails (``/lucy email connect`` tells it the inbox is taken).

Live duplicates left by the old first-come binding are resolved first: the oldest workspace
keeps the inbox, the others lose the binding (``settings - 'email_inbox'``). Row-level security
is forced on ``workspaces``, for the owner too, so that is done tenant by tenant.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_workspaces_email_inbox"
LIVE_WITH_INBOX = "deleted_at IS NULL AND settings->>'email_inbox' <> ''"

UNBIND_DUPLICATES = """
DO $$
DECLARE
    v_ws record;
    v_prior text := current_setting('lucy.workspace_id', true);
    v_kept text[] := ARRAY[]::text[];
    v_inbox text;
BEGIN
    FOR v_ws IN SELECT w.id FROM public.workspaces w ORDER BY w.created_at, w.id LOOP
        PERFORM set_config('lucy.workspace_id', v_ws.id::text, true);
        SELECT lower(w.settings->>'email_inbox') INTO v_inbox FROM public.workspaces w
         WHERE w.id = v_ws.id AND w.deleted_at IS NULL AND w.settings->>'email_inbox' <> '';
        IF v_inbox IS NOT NULL AND v_inbox = ANY(v_kept) THEN
            UPDATE public.workspaces SET settings = settings - 'email_inbox' WHERE id = v_ws.id;
        ELSIF v_inbox IS NOT NULL THEN
            v_kept := v_kept || v_inbox;
        END IF;
        v_inbox := NULL;
    END LOOP;
    PERFORM set_config('lucy.workspace_id', coalesce(v_prior, ''), true);
END $$
"""


def upgrade() -> None:
    op.execute(UNBIND_DUPLICATES)
    op.execute(
        f"CREATE UNIQUE INDEX {INDEX} ON workspaces (lower(settings->>'email_inbox')) WHERE {LIVE_WITH_INBOX}"
    )


def downgrade() -> None:
    op.execute(f"DROP INDEX {INDEX}")
