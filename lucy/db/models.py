"""SQLAlchemy 2 models: the tenant store and the task record.

Every tenant table carries ``workspace_id``; every table has timezone-aware
``created_at`` / ``updated_at`` and a ``deleted_at`` for soft deletes. Enumerations are
stored as text with a CHECK constraint so that adding a value is a constraint swap in a
migration, not an ``ALTER TYPE``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lucy.contracts import TaskSource, TaskStatus

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

WORKSPACE_PLANS = ("starter", "pro", "enterprise")
WORKSPACE_STATUSES = ("active", "suspended", "churned")
USER_ROLES = ("owner", "admin", "member", "guest")
CHANNEL_TYPES = ("public", "private", "im", "mpim")
ACTIVE_TASK_STATUSES = ("created", "pending_approval", "running")
TASK_INTENTS = ("lookup", "tool_use", "reasoning", "code", "chat")
AGENT_TYPES = ("main", "personal", "custom")
STEP_KINDS = ("llm_call", "tool_use", "approval_wait")
STEP_STATUSES = ("running", "completed", "failed", "skipped")
APPROVAL_ACTION_TYPES = ("tool_execution", "code_deployment", "message_send", "data_export")
RISK_LEVELS = ("low", "medium", "high", "critical")
APPROVAL_STATUSES = ("pending", "approved", "rejected", "expired", "cancelled")
HEARTBEAT_CONDITIONS = ("metric_threshold", "api_health", "schedule_miss", "custom")
HEARTBEAT_STATUSES = ("active", "paused", "error")
INTEGRATION_STATUSES = ("active", "disabled", "error")
PATTERN_STATUSES = ("detected", "suggested", "accepted", "dismissed")
WEBHOOK_STATUSES = ("pending", "processing", "completed", "failed", "ignored")
ACTOR_TYPES = ("user", "lucy", "system")
# Time-series tables, range-partitioned by month on created_at (see migrations 0002).
PARTITIONED_TABLES = ("cost_log", "audit_log", "webhook_deliveries")


def _enum(values: tuple[str, ...] | list[str], name: str) -> Enum:
    return Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSONB}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()"))


def _jsonb() -> Mapped[dict[str, Any]]:
    return mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))


class Workspace(TimestampMixin, Base):
    """A Slack team: the tenant root."""

    __tablename__ = "workspaces"
    __table_args__ = (Index("ix_workspaces_status_created", "status", "created_at"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    slack_team_id: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    name: Mapped[str | None] = mapped_column(String(255))
    domain: Mapped[str | None] = mapped_column(String(255))
    plan: Mapped[str] = mapped_column(
        _enum(WORKSPACE_PLANS, "workspace_plan"), nullable=False, server_default="starter"
    )
    status: Mapped[str] = mapped_column(
        _enum(WORKSPACE_STATUSES, "workspace_status"), nullable=False, server_default="active"
    )
    settings: Mapped[dict[str, Any]] = _jsonb()
    # Quotas (plan gating) and this month's action counter (reset when usage_month changes).
    # This month's tokens and cost are in cost_monthly, kept exact by a trigger on cost_log.
    max_users: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("50"))
    max_monthly_actions: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1000"))
    max_integrations: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("5"))
    max_schedules: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("10"))
    usage_month: Mapped[date | None] = mapped_column(Date)
    current_month_actions: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))


class User(TimestampMixin, Base):
    """A member of a workspace (a human or a bot) who talks to Lucy."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("workspace_id", "slack_user_id", name="uq_users_workspace_slack_user"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False, index=True
    )
    slack_user_id: Mapped[str] = mapped_column(String(32), nullable=False)
    display_name: Mapped[str | None] = mapped_column(String(255))
    real_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    timezone: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(_enum(USER_ROLES, "user_role"), nullable=False, server_default="member")
    is_bot: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    preferences: Mapped[dict[str, Any]] = _jsonb()


class Channel(TimestampMixin, Base):
    """A Slack conversation Lucy works in (channel, private channel or DM)."""

    __tablename__ = "channels"
    __table_args__ = (
        UniqueConstraint("workspace_id", "slack_channel_id", name="uq_channels_workspace_slack_channel"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False, index=True
    )
    slack_channel_id: Mapped[str] = mapped_column(String(32), nullable=False)
    name: Mapped[str | None] = mapped_column(String(255))
    channel_type: Mapped[str] = mapped_column(
        _enum(CHANNEL_TYPES, "channel_type"), nullable=False, server_default="public"
    )
    memory_scope_key: Mapped[str | None] = mapped_column(String(255))
    is_monitored: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    settings: Mapped[dict[str, Any]] = _jsonb()


class Task(TimestampMixin, Base):
    """One unit of work: the business record of one ``LucyTaskWorkflow`` run."""

    __tablename__ = "tasks"
    __table_args__ = (
        # Hot paths (see bench/db_hot_paths.py): both answer from the index alone.
        Index(
            "ix_tasks_active",
            "workspace_id",
            "status",
            postgresql_where=text("status IN ('created', 'pending_approval', 'running')"),
            postgresql_include=["created_at", "id"],
        ),
        # (created_at, id) matches the keyset order of task_history_page exactly.
        Index(
            "ix_tasks_workspace_created", "workspace_id", "created_at", "id", postgresql_include=["status"]
        ),
        # A reply in a thread finds the thread's latest task (migration 0004).
        Index(
            "ix_tasks_thread",
            "workspace_id",
            "slack_channel_id",
            "slack_thread_ts",
            "created_at",
            postgresql_include=["workflow_id", "status"],
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    requester_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    channel_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    workflow_id: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(
        _enum([s.value for s in TaskSource], "task_source"), nullable=False, server_default="mention"
    )
    status: Mapped[str] = mapped_column(
        _enum([s.value for s in TaskStatus], "task_status"), nullable=False, server_default="created"
    )
    intent: Mapped[str | None] = mapped_column(_enum(TASK_INTENTS, "task_intent"))
    priority: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default=text("2"))
    request_text: Mapped[str | None] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = _jsonb()
    result_data: Mapped[dict[str, Any]] = _jsonb()
    slack_channel_id: Mapped[str | None] = mapped_column(String(32))
    slack_thread_ts: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(255))
    prompt_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    completion_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), nullable=False, server_default=text("0"))
    error_type: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def _workspace_fk() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False)


class Agent(TimestampMixin, Base):
    """Lucy itself (``main``) and, later, personal or custom agents."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("workspace_id", "name", name="uq_agents_workspace_name"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    agent_type: Mapped[str] = mapped_column(
        _enum(AGENT_TYPES, "agent_type"), nullable=False, server_default="main"
    )
    owner_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    config: Mapped[dict[str, Any]] = _jsonb()
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))


class TaskStep(TimestampMixin, Base):
    """One step of a task: an LLM call, a tool use or a wait for approval."""

    __tablename__ = "task_steps"
    __table_args__ = (
        UniqueConstraint("task_id", "step_index", name="uq_task_steps_task_step"),
        UniqueConstraint("idempotency_key", name="uq_task_steps_idempotency_key"),
        Index("ix_task_steps_workspace_created", "workspace_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False)
    step_index: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(_enum(STEP_KINDS, "step_kind"), nullable=False)
    name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(
        _enum(STEP_STATUSES, "step_status"), nullable=False, server_default="running"
    )
    idempotency_key: Mapped[str] = mapped_column(String(64), nullable=False)
    input: Mapped[dict[str, Any]] = _jsonb()
    output: Mapped[dict[str, Any]] = _jsonb()
    error: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    completion_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), nullable=False, server_default=text("0"))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Approval(TimestampMixin, Base):
    """A human-in-the-loop request, shown as a Block Kit message."""

    __tablename__ = "approvals"
    __table_args__ = (
        # "What waits for me", oldest deadline first: the partial index is already in that order.
        Index(
            "ix_approvals_pending", "approver_id", "expires_at", postgresql_where=text("status = 'pending'")
        ),
        Index("ix_approvals_workspace_status", "workspace_id", "status"),
        UniqueConstraint("idempotency_key", name="uq_approvals_idempotency_key"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False)
    step_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("task_steps.id", ondelete="SET NULL"))
    workflow_id: Mapped[str] = mapped_column(String(255), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(64), nullable=False)
    requester_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approver_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action_type: Mapped[str] = mapped_column(
        _enum(APPROVAL_ACTION_TYPES, "approval_action_type"), nullable=False
    )
    risk_level: Mapped[str] = mapped_column(_enum(RISK_LEVELS, "risk_level"), nullable=False)
    status: Mapped[str] = mapped_column(
        _enum(APPROVAL_STATUSES, "approval_status"), nullable=False, server_default="pending"
    )
    summary: Mapped[str] = mapped_column(Text, nullable=False)
    details: Mapped[dict[str, Any]] = _jsonb()
    slack_channel_id: Mapped[str | None] = mapped_column(String(32))
    slack_message_ts: Mapped[str | None] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(Text)


class Schedule(TimestampMixin, Base):
    """Recurring work, mirrored to a Temporal Schedule."""

    __tablename__ = "schedules"
    __table_args__ = (
        Index(
            "ix_schedules_next_run", "next_run_at", postgresql_where=text("is_active AND deleted_at IS NULL")
        ),
        UniqueConstraint("temporal_schedule_id", name="uq_schedules_temporal_schedule_id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    channel_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    cron_expression: Mapped[str] = mapped_column(String(128), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, server_default="UTC")
    intent_template: Mapped[str] = mapped_column(Text, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    temporal_schedule_id: Mapped[str | None] = mapped_column(String(255))
    config: Mapped[dict[str, Any]] = _jsonb()


class Heartbeat(TimestampMixin, Base):
    """A proactive monitor: a condition checked on a schedule, alerting with a cooldown."""

    __tablename__ = "heartbeats"
    __table_args__ = (UniqueConstraint("temporal_schedule_id", name="uq_heartbeats_temporal_schedule_id"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    channel_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    condition_type: Mapped[str] = mapped_column(
        _enum(HEARTBEAT_CONDITIONS, "heartbeat_condition"), nullable=False
    )
    condition_config: Mapped[dict[str, Any]] = _jsonb()
    check_interval_seconds: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("300"))
    alert_cooldown_seconds: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("3600"))
    status: Mapped[str] = mapped_column(
        _enum(HEARTBEAT_STATUSES, "heartbeat_status"), nullable=False, server_default="active"
    )
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    last_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_alerted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    temporal_schedule_id: Mapped[str | None] = mapped_column(String(255))


class Integration(TimestampMixin, Base):
    """A connected provider (Linear, GitHub, Composio, AgentMail...)."""

    __tablename__ = "integrations"
    __table_args__ = (
        UniqueConstraint("workspace_id", "provider", "name", name="uq_integrations_workspace_provider_name"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    provider: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False, server_default="default")
    status: Mapped[str] = mapped_column(
        _enum(INTEGRATION_STATUSES, "integration_status"), nullable=False, server_default="active"
    )
    provider_config: Mapped[dict[str, Any]] = _jsonb()
    connected_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class IntegrationCredential(TimestampMixin, Base):
    """A secret of an integration, encrypted at rest (see :mod:`lucy.crypto`)."""

    __tablename__ = "integration_credentials"
    __table_args__ = (
        UniqueConstraint("integration_id", "credential_type", name="uq_integration_credentials_type"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    integration_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), nullable=False
    )
    credential_type: Mapped[str] = mapped_column(String(64), nullable=False)
    key_id: Mapped[str] = mapped_column(String(64), nullable=False)
    encrypted_value: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:  # never show the ciphertext, let alone a plaintext
        return f"IntegrationCredential(id={self.id}, type={self.credential_type!r}, key_id={self.key_id!r})"


class Pattern(TimestampMixin, Base):
    """A recurring request Lucy noticed, which may become a schedule."""

    __tablename__ = "patterns"
    __table_args__ = (UniqueConstraint("workspace_id", "signature", name="uq_patterns_workspace_signature"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    channel_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    signature: Mapped[str] = mapped_column(String(128), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)
    occurrences: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    confidence: Mapped[float] = mapped_column(Float, nullable=False, server_default=text("0"))
    status: Mapped[str] = mapped_column(
        _enum(PATTERN_STATUSES, "pattern_status"), nullable=False, server_default="detected"
    )
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("schedules.id", ondelete="SET NULL"))
    data: Mapped[dict[str, Any]] = _jsonb()
    first_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


def _partitioned(name: str, *extra: Any) -> tuple[Any, ...]:
    """Table args of a month-partitioned time-series table: the partition key is in the primary key."""
    return (
        PrimaryKeyConstraint("id", "created_at", name=f"pk_{name}"),
        *extra,
        {"postgresql_partition_by": "RANGE (created_at)"},
    )


class CostLog(Base):
    """Every billable call (LLM, tool, API) with its cost. Partitioned by month; append-only."""

    __tablename__ = "cost_log"
    __table_args__ = _partitioned(
        "cost_log",
        Index("ix_cost_log_workspace_month", "workspace_id", "created_at"),
        UniqueConstraint("idempotency_key", "created_at", name="uq_cost_log_idempotency_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    task_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    idempotency_key: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False, server_default="llm")
    provider: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(255))
    prompt_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    completion_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), nullable=False, server_default=text("0"))


class CostMonthly(Base):
    """Exact monthly cost totals per workspace, maintained by a trigger on ``cost_log``."""

    __tablename__ = "cost_monthly"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    calls: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    completion_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(16, 6), nullable=False, server_default=text("0"))


class AuditLog(Base):
    """Immutable record of what happened: UPDATE and DELETE fail in the database itself."""

    __tablename__ = "audit_log"
    __table_args__ = _partitioned(
        "audit_log",
        Index("ix_audit_log_workspace_created", "workspace_id", "created_at"),
        UniqueConstraint("idempotency_key", "created_at", name="uq_audit_log_idempotency_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(64), nullable=False)
    actor_type: Mapped[str] = mapped_column(_enum(ACTOR_TYPES, "actor_type"), nullable=False)
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    entity_type: Mapped[str | None] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(255))
    task_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    workflow_id: Mapped[str | None] = mapped_column(String(255))
    before_state: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after_state: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    details: Mapped[dict[str, Any]] = _jsonb()


class WebhookDelivery(Base):
    """An inbound webhook and its processing/retry state."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = _partitioned(
        "webhook_deliveries",
        Index("ix_webhook_deliveries_workspace_created", "workspace_id", "created_at"),
        Index(
            "ix_webhook_deliveries_retry",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'failed')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    source: Mapped[str] = mapped_column(String(64), nullable=False)
    event_type: Mapped[str | None] = mapped_column(String(128))
    external_id: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = _jsonb()
    status: Mapped[str] = mapped_column(
        _enum(WEBHOOK_STATUSES, "webhook_status"), nullable=False, server_default="pending"
    )
    attempt_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RateLimit(Base):
    """Token-bucket state, one row per (workspace, bucket); updated atomically in SQL."""

    __tablename__ = "rate_limits"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    bucket_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float, nullable=False)
    capacity: Mapped[float] = mapped_column(Float, nullable=False)
    refill_per_second: Mapped[float] = mapped_column(Float, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class FeatureFlag(TimestampMixin, Base):
    """A per-workspace toggle (with an optional JSON value)."""

    __tablename__ = "feature_flags"
    __table_args__ = (UniqueConstraint("workspace_id", "flag_key", name="uq_feature_flags_workspace_key"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    flag_key: Mapped[str] = mapped_column(String(128), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    value: Mapped[dict[str, Any]] = _jsonb()


# Tables with a workspace_id: row-level security applies to each of them.
TENANT_TABLES = tuple(
    t.name for t in Base.metadata.sorted_tables if "workspace_id" in t.c and t.name != "workspaces"
)

__all__ = [
    "ACTIVE_TASK_STATUSES",
    "PARTITIONED_TABLES",
    "TENANT_TABLES",
    "Agent",
    "Approval",
    "AuditLog",
    "Base",
    "Channel",
    "CostLog",
    "CostMonthly",
    "FeatureFlag",
    "Heartbeat",
    "Integration",
    "IntegrationCredential",
    "Pattern",
    "RateLimit",
    "Schedule",
    "Task",
    "TaskStep",
    "User",
    "WebhookDelivery",
    "Workspace",
]
