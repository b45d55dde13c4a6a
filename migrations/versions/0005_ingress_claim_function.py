"""The ingress transaction in one round trip: ``lucy_ingress_claim(...)``.

Ingress used to run about ten statements per Slack message (resolve the workspace and scope
the transaction, upsert the user and the channel, claim the task row, and for a new claim
take a token from the user's and the workspace's bucket and count the action against the
monthly quota). The function does the same work, in the same order and with the same
locking, in one call. It runs with the caller's rights (SECURITY INVOKER), so row-level
security applies to every statement after the workspace is resolved and the transaction is
scoped to it, exactly as before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "lucy_app_rw"
SIGNATURE = (
    "text, text, text, text, text, text, text, text, text, text, text, float8, float8, float8, float8, date"
)

CREATE = r"""
CREATE FUNCTION lucy_ingress_claim(
    p_team text, p_user text, p_display_name text, p_role text, p_timezone text,
    p_channel text, p_channel_type text, p_workflow_id text, p_source text, p_text text, p_thread_ts text,
    p_user_capacity float8, p_user_rate float8, p_ws_capacity float8, p_ws_rate float8, p_month date,
    OUT workspace_id uuid, OUT user_id uuid, OUT channel_id uuid, OUT claimed boolean,
    OUT prior_error text, OUT refused text, OUT retry_after float8, OUT quota_used int, OUT quota_limit int
)
LANGUAGE plpgsql SECURITY INVOKER SET search_path = public AS $fn$
#variable_conflict use_column
DECLARE
    v_task uuid;
    v_left float8;
    v_tokens float8;
    v_rate float8;
    v_bucket text;
    v_capacity float8;
BEGIN
    lucy_ingress_claim.workspace_id := lucy_resolve_workspace(p_team, NULL);
    PERFORM set_config('lucy.workspace_id', lucy_ingress_claim.workspace_id::text, true);

    INSERT INTO users AS u (workspace_id, slack_user_id, display_name, timezone, role, is_bot)
    VALUES (lucy_ingress_claim.workspace_id, p_user, p_display_name, p_timezone, COALESCE(p_role, 'member'), false)
    ON CONFLICT ON CONSTRAINT uq_users_workspace_slack_user DO UPDATE SET
        display_name = COALESCE(excluded.display_name, u.display_name),
        timezone = COALESCE(excluded.timezone, u.timezone),
        role = CASE WHEN p_role IS NULL THEN u.role ELSE excluded.role END,
        updated_at = now()
    WHERE u.workspace_id = lucy_ingress_claim.workspace_id
    RETURNING u.id INTO lucy_ingress_claim.user_id;

    INSERT INTO channels AS c (workspace_id, slack_channel_id, channel_type, memory_scope_key)
    VALUES (lucy_ingress_claim.workspace_id, p_channel, p_channel_type,
            lucy_ingress_claim.workspace_id::text || ':' || p_channel)
    ON CONFLICT ON CONSTRAINT uq_channels_workspace_slack_channel DO UPDATE SET updated_at = now()
    WHERE c.workspace_id = lucy_ingress_claim.workspace_id
    RETURNING c.id INTO lucy_ingress_claim.channel_id;

    INSERT INTO tasks (workspace_id, workflow_id, requester_id, channel_id, source, status,
                       request_text, slack_channel_id, slack_thread_ts)
    VALUES (lucy_ingress_claim.workspace_id, p_workflow_id, lucy_ingress_claim.user_id,
            lucy_ingress_claim.channel_id, p_source, 'created',
            p_text, p_channel, p_thread_ts)
    ON CONFLICT (workflow_id) DO NOTHING
    RETURNING id INTO v_task;

    claimed := v_task IS NOT NULL;
    retry_after := 0;
    IF NOT claimed THEN  -- a redelivery: say whether the first delivery was refused
        SELECT t.error_type INTO prior_error FROM tasks t
        WHERE t.workflow_id = p_workflow_id AND t.workspace_id = lucy_ingress_claim.workspace_id;
        RETURN;
    END IF;

    -- Token buckets: the user's, then the workspace's (refill by elapsed time, then take one).
    FOREACH v_bucket IN ARRAY ARRAY['user:' || p_user, 'workspace'] LOOP
        IF v_bucket = 'workspace' THEN
            v_capacity := p_ws_capacity; v_rate := p_ws_rate;
        ELSE
            v_capacity := p_user_capacity; v_rate := p_user_rate;
        END IF;
        v_left := NULL;
        INSERT INTO rate_limits AS r (workspace_id, bucket_key, tokens, capacity, refill_per_second, updated_at)
        VALUES (lucy_ingress_claim.workspace_id, v_bucket, v_capacity - 1, v_capacity, v_rate, clock_timestamp())
        ON CONFLICT ON CONSTRAINT pk_rate_limits DO UPDATE SET
            tokens = LEAST(excluded.capacity,
                           r.tokens + EXTRACT(EPOCH FROM clock_timestamp() - r.updated_at) * excluded.refill_per_second) - 1,
            capacity = excluded.capacity,
            refill_per_second = excluded.refill_per_second,
            updated_at = clock_timestamp()
        WHERE r.workspace_id = lucy_ingress_claim.workspace_id
          AND LEAST(excluded.capacity,
                    r.tokens + EXTRACT(EPOCH FROM clock_timestamp() - r.updated_at) * excluded.refill_per_second) >= 1
        RETURNING r.tokens INTO v_left;
        IF v_left IS NULL THEN
            SELECT LEAST(r.capacity, r.tokens + EXTRACT(EPOCH FROM clock_timestamp() - r.updated_at) * r.refill_per_second)
              INTO v_tokens FROM rate_limits r
             WHERE r.workspace_id = lucy_ingress_claim.workspace_id AND r.bucket_key = v_bucket;
            refused := CASE WHEN v_bucket = 'workspace' THEN 'workspace_rate' ELSE 'user_rate' END;
            retry_after := GREATEST((1 - COALESCE(v_tokens, 0)) / NULLIF(v_rate, 0), 0);
            RETURN;
        END IF;
    END LOOP;

    -- The monthly quota: roll over, check and count in one UPDATE.
    UPDATE workspaces w SET
        current_month_actions = CASE WHEN w.usage_month = p_month THEN w.current_month_actions ELSE 0 END + 1,
        usage_month = p_month
    WHERE w.id = lucy_ingress_claim.workspace_id
      AND CASE WHEN w.usage_month = p_month THEN w.current_month_actions ELSE 0 END + 1 <= w.max_monthly_actions
    RETURNING w.current_month_actions, w.max_monthly_actions INTO quota_used, quota_limit;
    IF quota_used IS NULL THEN
        SELECT CASE WHEN w.usage_month = p_month THEN w.current_month_actions ELSE 0 END, w.max_monthly_actions
          INTO quota_used, quota_limit FROM workspaces w WHERE w.id = lucy_ingress_claim.workspace_id;
        refused := 'quota';
    END IF;
END
$fn$
"""


def upgrade() -> None:
    op.execute(CREATE)
    op.execute(f"GRANT EXECUTE ON FUNCTION lucy_ingress_claim({SIGNATURE}) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION lucy_ingress_claim({SIGNATURE})")
