"""The full tenant and reporting store: 17 tables, monthly partitions, RLS, immutable audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 23:29:12.325147
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTITIONED = ("cost_log", "audit_log", "webhook_deliveries")
TENANT_TABLES = (
    "users",
    "channels",
    "agents",
    "tasks",
    "task_steps",
    "approvals",
    "schedules",
    "heartbeats",
    "integrations",
    "integration_credentials",
    "patterns",
    "cost_log",
    "cost_monthly",
    "audit_log",
    "webhook_deliveries",
    "rate_limits",
    "feature_flags",
)
APP_ROLE = "lucy_app_rw"

UPGRADE_SQL: list[str] = [
    # The tenant of the current transaction, set with set_config('lucy.workspace_id', id, true).
    """
    CREATE FUNCTION lucy_current_workspace() RETURNS uuid LANGUAGE sql STABLE AS
    $$ SELECT NULLIF(current_setting('lucy.workspace_id', true), '')::uuid $$
    """,
    # Monthly partitions: create one (idempotent), with RLS like its parent.
    """
    CREATE FUNCTION lucy_ensure_month_partition(parent text, month date) RETURNS text
    LANGUAGE plpgsql AS $$
    DECLARE
        start_at date := date_trunc('month', month)::date;
        name text := format('%s_%s', parent, to_char(start_at, 'YYYY_MM'));
    BEGIN
        IF to_regclass(name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                name, parent, start_at::timestamptz, (start_at + interval '1 month')::timestamptz
            );
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', name);
            EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', name);
            EXECUTE format(
                'CREATE POLICY tenant_isolation ON %I USING (workspace_id = lucy_current_workspace()) '
                'WITH CHECK (workspace_id = lucy_current_workspace())', name
            );
        END IF;
        RETURN name;
    END $$
    """,
    # audit_log is immutable: in the database itself, for every role including the owner.
    """
    CREATE FUNCTION lucy_audit_log_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$
    """,
    """
    CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION lucy_audit_log_immutable()
    """,
    """
    CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION lucy_audit_log_immutable()
    """,
    # cost_monthly stays exact: one statement-level trigger adds exactly the rows a statement
    # inserted (ON CONFLICT DO NOTHING retries insert nothing, so they add nothing).
    """
    CREATE FUNCTION lucy_cost_monthly_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO cost_monthly AS m (workspace_id, month, calls, prompt_tokens, completion_tokens, cost_usd)
        SELECT workspace_id, date_trunc('month', created_at AT TIME ZONE 'UTC')::date,
               count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost_usd)
        FROM new_rows
        GROUP BY 1, 2
        ON CONFLICT (workspace_id, month) DO UPDATE SET
            calls = m.calls + excluded.calls,
            prompt_tokens = m.prompt_tokens + excluded.prompt_tokens,
            completion_tokens = m.completion_tokens + excluded.completion_tokens,
            cost_usd = m.cost_usd + excluded.cost_usd;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER cost_log_monthly_rollup AFTER INSERT ON cost_log
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lucy_cost_monthly_rollup()
    """,
    # Row-level security: every tenant table, FORCE so that even the owner is filtered.
    *(
        stmt
        for t in TENANT_TABLES
        for stmt in (
            f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY tenant_isolation ON {t} USING (workspace_id = lucy_current_workspace()) "
            f"WITH CHECK (workspace_id = lucy_current_workspace())",
        )
    ),
    # workspaces: the application sees only its current tenant; the owner (not forced) resolves
    # a Slack team to its workspace through a SECURITY DEFINER function.
    "ALTER TABLE workspaces ENABLE ROW LEVEL SECURITY",
    "CREATE POLICY tenant_isolation ON workspaces USING (id = lucy_current_workspace())",
    """
    CREATE FUNCTION lucy_resolve_workspace(team_id text, team_name text DEFAULT NULL) RETURNS uuid
    LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
        INSERT INTO workspaces AS w (slack_team_id, name)
        VALUES (team_id, team_name)
        ON CONFLICT (slack_team_id) DO UPDATE
            SET name = COALESCE(excluded.name, w.name), deleted_at = NULL, updated_at = now()
        RETURNING id
    $$
    """,
    # The application role: neither owner nor superuser. Login roles are granted membership.
    f"""
    DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            CREATE ROLE {APP_ROLE} NOLOGIN;
        END IF;
    END $$
    """,
    f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}",
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}",
    f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {APP_ROLE}",
    f"REVOKE ALL ON alembic_version FROM {APP_ROLE}",
    f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}",
    f"GRANT EXECUTE ON FUNCTION lucy_resolve_workspace(text, text), lucy_current_workspace() TO {APP_ROLE}",
    # Partitions for this month and the next, after the grants: the application reaches them
    # only through their parent (``lucy db partitions`` creates the months ahead).
    *(
        f"SELECT lucy_ensure_month_partition('{t}', (now() + make_interval(months => {m}))::date)"
        for t in PARTITIONED
        for m in (0, 1)
    ),
]

DOWNGRADE_SQL: list[str] = [
    f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}",
    f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}",
    f"REVOKE ALL ON SCHEMA public FROM {APP_ROLE}",
    "DROP FUNCTION lucy_resolve_workspace(text, text)",
    "DROP POLICY tenant_isolation ON workspaces",
    "ALTER TABLE workspaces DISABLE ROW LEVEL SECURITY",
    *(
        stmt
        for t in ("users", "channels", "tasks")
        for stmt in (
            f"DROP POLICY tenant_isolation ON {t}",
            f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY",
            f"ALTER TABLE {t} DISABLE ROW LEVEL SECURITY",
        )
    ),
    "DROP TRIGGER cost_log_monthly_rollup ON cost_log",
    "DROP TRIGGER audit_log_no_truncate ON audit_log",
    "DROP TRIGGER audit_log_no_update_delete ON audit_log",
    # Partitions go with their parent tables (dropped below by drop_table).
]
DOWNGRADE_FUNCTIONS = (
    "DROP FUNCTION lucy_cost_monthly_rollup()",
    "DROP FUNCTION lucy_audit_log_immutable()",
    "DROP FUNCTION lucy_ensure_month_partition(text, date)",
    "DROP FUNCTION lucy_current_workspace()",
)


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column(
            "actor_type",
            sa.Enum(
                "user",
                "lucy",
                "system",
                name="actor_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=64), nullable=True),
        sa.Column("entity_id", sa.String(length=255), nullable=True),
        sa.Column("task_id", sa.UUID(), nullable=True),
        sa.Column("workflow_id", sa.String(length=255), nullable=True),
        sa.Column("before_state", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after_state", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", "created_at", name="pk_audit_log"),
        sa.UniqueConstraint("idempotency_key", "created_at", name="uq_audit_log_idempotency_key"),
        postgresql_partition_by="RANGE (created_at)",
    )
    op.create_index(
        "ix_audit_log_workspace_created", "audit_log", ["workspace_id", "created_at"], unique=False
    )
    op.create_table(
        "cost_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("task_id", sa.UUID(), nullable=True),
        sa.Column("user_id", sa.UUID(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), server_default="llm", nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=255), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("cost_usd", sa.Numeric(precision=12, scale=6), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", "created_at", name="pk_cost_log"),
        sa.UniqueConstraint("idempotency_key", "created_at", name="uq_cost_log_idempotency_key"),
        postgresql_partition_by="RANGE (created_at)",
    )
    op.create_index("ix_cost_log_workspace_month", "cost_log", ["workspace_id", "created_at"], unique=False)
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "processing",
                "completed",
                "failed",
                "ignored",
                name="webhook_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("attempt_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", "created_at", name="pk_webhook_deliveries"),
        postgresql_partition_by="RANGE (created_at)",
    )
    op.create_index(
        "ix_webhook_deliveries_retry",
        "webhook_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'failed')"),
    )
    op.create_index(
        "ix_webhook_deliveries_workspace_created",
        "webhook_deliveries",
        ["workspace_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "cost_monthly",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("calls", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("cost_usd", sa.Numeric(precision=16, scale=6), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_cost_monthly_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "month", name=op.f("pk_cost_monthly")),
    )
    op.create_table(
        "feature_flags",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("flag_key", sa.String(length=128), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "value",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_feature_flags_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_flags")),
        sa.UniqueConstraint("workspace_id", "flag_key", name="uq_feature_flags_workspace_key"),
    )
    op.create_table(
        "rate_limits",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("bucket_key", sa.String(length=128), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("capacity", sa.Float(), nullable=False),
        sa.Column("refill_per_second", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_rate_limits_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "bucket_key", name=op.f("pk_rate_limits")),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "agent_type",
            sa.Enum(
                "main",
                "personal",
                "custom",
                name="agent_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="main",
            nullable=False,
        ),
        sa.Column("owner_user_id", sa.UUID(), nullable=True),
        sa.Column(
            "config",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_user_id"], ["users.id"], name=op.f("fk_agents_owner_user_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_agents_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("workspace_id", "name", name="uq_agents_workspace_name"),
    )
    op.create_table(
        "heartbeats",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("channel_id", sa.UUID(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "condition_type",
            sa.Enum(
                "metric_threshold",
                "api_health",
                "schedule_miss",
                "custom",
                name="heartbeat_condition",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "condition_config",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("check_interval_seconds", sa.Integer(), server_default=sa.text("300"), nullable=False),
        sa.Column("alert_cooldown_seconds", sa.Integer(), server_default=sa.text("3600"), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "paused",
                "error",
                name="heartbeat_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="active",
            nullable=False,
        ),
        sa.Column("consecutive_failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("temporal_schedule_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_heartbeats_channel_id_channels"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_heartbeats_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeats")),
        sa.UniqueConstraint("temporal_schedule_id", name="uq_heartbeats_temporal_schedule_id"),
    )
    op.create_table(
        "integrations",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), server_default="default", nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "disabled",
                "error",
                name="integration_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="active",
            nullable=False,
        ),
        sa.Column(
            "provider_config",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("connected_by", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connected_by"],
            ["users.id"],
            name=op.f("fk_integrations_connected_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_integrations_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integrations")),
        sa.UniqueConstraint(
            "workspace_id", "provider", "name", name="uq_integrations_workspace_provider_name"
        ),
    )
    op.create_table(
        "schedules",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column("channel_id", sa.UUID(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("cron_expression", sa.String(length=128), nullable=False),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column("intent_template", sa.Text(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("temporal_schedule_id", sa.String(length=255), nullable=True),
        sa.Column(
            "config",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_schedules_channel_id_channels"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_schedules_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_schedules_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("temporal_schedule_id", name="uq_schedules_temporal_schedule_id"),
    )
    op.create_index(
        "ix_schedules_next_run",
        "schedules",
        ["next_run_at"],
        unique=False,
        postgresql_where=sa.text("is_active AND deleted_at IS NULL"),
    )
    op.create_table(
        "integration_credentials",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("integration_id", sa.UUID(), nullable=False),
        sa.Column("credential_type", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("encrypted_value", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_integration_credentials_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_integration_credentials_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_credentials")),
        sa.UniqueConstraint("integration_id", "credential_type", name="uq_integration_credentials_type"),
    )
    op.create_table(
        "patterns",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=True),
        sa.Column("channel_id", sa.UUID(), nullable=True),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("occurrences", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("confidence", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "detected",
                "suggested",
                "accepted",
                "dismissed",
                name="pattern_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="detected",
            nullable=False,
        ),
        sa.Column("schedule_id", sa.UUID(), nullable=True),
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "first_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column(
            "last_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_patterns_channel_id_channels"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_patterns_schedule_id_schedules"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_patterns_user_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_patterns_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patterns")),
        sa.UniqueConstraint("workspace_id", "signature", name="uq_patterns_workspace_signature"),
    )
    op.create_table(
        "task_steps",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("task_id", sa.UUID(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "llm_call",
                "tool_use",
                "approval_wait",
                name="step_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "running",
                "completed",
                "failed",
                "skipped",
                name="step_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="running",
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column(
            "input",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "output",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("cost_usd", sa.Numeric(precision=12, scale=6), server_default=sa.text("0"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_steps_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_task_steps_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_steps")),
        sa.UniqueConstraint("idempotency_key", name="uq_task_steps_idempotency_key"),
        sa.UniqueConstraint("task_id", "step_index", name="uq_task_steps_task_step"),
    )
    op.create_index(
        "ix_task_steps_workspace_created", "task_steps", ["workspace_id", "created_at"], unique=False
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("task_id", sa.UUID(), nullable=False),
        sa.Column("step_id", sa.UUID(), nullable=True),
        sa.Column("workflow_id", sa.String(length=255), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("requester_id", sa.UUID(), nullable=True),
        sa.Column("approver_id", sa.UUID(), nullable=True),
        sa.Column(
            "action_type",
            sa.Enum(
                "tool_execution",
                "code_deployment",
                "message_send",
                "data_export",
                name="approval_action_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "risk_level",
            sa.Enum(
                "low",
                "medium",
                "high",
                "critical",
                name="risk_level",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "approved",
                "rejected",
                "expired",
                "cancelled",
                name="approval_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("slack_channel_id", sa.String(length=32), nullable=True),
        sa.Column("slack_message_ts", sa.String(length=32), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.UUID(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["approver_id"], ["users.id"], name=op.f("fk_approvals_approver_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_approvals_decided_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"], ["users.id"], name=op.f("fk_approvals_requester_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["step_id"], ["task_steps.id"], name=op.f("fk_approvals_step_id_task_steps"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_approvals_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_approvals_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
        sa.UniqueConstraint("idempotency_key", name="uq_approvals_idempotency_key"),
    )
    op.create_index(
        "ix_approvals_pending",
        "approvals",
        ["approver_id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_approvals_workspace_status", "approvals", ["workspace_id", "status"], unique=False)
    op.add_column("tasks", sa.Column("agent_id", sa.UUID(), nullable=True))
    op.create_foreign_key(
        op.f("fk_tasks_agent_id_agents"), "tasks", "agents", ["agent_id"], ["id"], ondelete="SET NULL"
    )
    op.add_column(
        "workspaces", sa.Column("max_users", sa.Integer(), server_default=sa.text("50"), nullable=False)
    )
    op.add_column(
        "workspaces",
        sa.Column("max_monthly_actions", sa.Integer(), server_default=sa.text("1000"), nullable=False),
    )
    op.add_column(
        "workspaces", sa.Column("max_integrations", sa.Integer(), server_default=sa.text("5"), nullable=False)
    )
    op.add_column(
        "workspaces", sa.Column("max_schedules", sa.Integer(), server_default=sa.text("10"), nullable=False)
    )
    op.add_column("workspaces", sa.Column("usage_month", sa.Date(), nullable=True))
    op.add_column(
        "workspaces",
        sa.Column("current_month_actions", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )

    op.create_check_constraint(
        "task_intent", "tasks", "intent IN ('lookup', 'tool_use', 'reasoning', 'code', 'chat')"
    )
    for statement in UPGRADE_SQL:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE_SQL:
        op.execute(statement)
    op.drop_constraint("task_intent", "tasks", type_="check")
    op.drop_column("workspaces", "current_month_actions")
    op.drop_column("workspaces", "usage_month")
    op.drop_column("workspaces", "max_schedules")
    op.drop_column("workspaces", "max_integrations")
    op.drop_column("workspaces", "max_monthly_actions")
    op.drop_column("workspaces", "max_users")
    op.drop_constraint(op.f("fk_tasks_agent_id_agents"), "tasks", type_="foreignkey")
    op.drop_column("tasks", "agent_id")
    op.drop_index("ix_approvals_workspace_status", table_name="approvals")
    op.drop_index(
        "ix_approvals_pending", table_name="approvals", postgresql_where=sa.text("status = 'pending'")
    )
    op.drop_table("approvals")
    op.drop_index("ix_task_steps_workspace_created", table_name="task_steps")
    op.drop_table("task_steps")
    op.drop_table("patterns")
    op.drop_table("integration_credentials")
    op.drop_index(
        "ix_schedules_next_run",
        table_name="schedules",
        postgresql_where=sa.text("is_active AND deleted_at IS NULL"),
    )
    op.drop_table("schedules")
    op.drop_table("integrations")
    op.drop_table("heartbeats")
    op.drop_table("agents")
    op.drop_table("rate_limits")
    op.drop_table("feature_flags")
    op.drop_table("cost_monthly")
    op.drop_index("ix_webhook_deliveries_workspace_created", table_name="webhook_deliveries")
    op.drop_index(
        "ix_webhook_deliveries_retry",
        table_name="webhook_deliveries",
        postgresql_where=sa.text("status IN ('pending', 'failed')"),
    )
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_cost_log_workspace_month", table_name="cost_log")
    op.drop_table("cost_log")
    op.drop_index("ix_audit_log_workspace_created", table_name="audit_log")
    op.drop_table("audit_log")
    for statement in DOWNGRADE_FUNCTIONS:
        op.execute(statement)
