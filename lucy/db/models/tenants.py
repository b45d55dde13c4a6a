"""Tenants: workspaces, their people and channels, agents, feature flags and rate-limit buckets."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from lucy.db.models.base import (
    AGENT_TYPES,
    CHANNEL_TYPES,
    USER_ROLES,
    WORKSPACE_PLANS,
    WORKSPACE_STATUSES,
    Base,
    TimestampMixin,
    _enum,
    _jsonb,
    _uuid_pk,
    _workspace_fk,
    _workspace_key,
)


class Workspace(TimestampMixin, Base):
    """A Slack team: the tenant root."""

    __tablename__ = "workspaces"
    __table_args__ = (
        Index("ix_workspaces_status_created", "status", "created_at"),
        Index(  # 0015: one AgentMail inbox, one live workspace, across tenants
            "uq_workspaces_email_inbox",
            text("lower(settings->>'email_inbox')"),
            unique=True,
            postgresql_where=text("deleted_at IS NULL AND settings->>'email_inbox' <> ''"),
        ),
    )

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
    workspace_id: Mapped[uuid.UUID] = _workspace_fk(index=True)
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
    workspace_id: Mapped[uuid.UUID] = _workspace_fk(index=True)
    slack_channel_id: Mapped[str] = mapped_column(String(32), nullable=False)
    name: Mapped[str | None] = mapped_column(String(255))
    channel_type: Mapped[str] = mapped_column(
        _enum(CHANNEL_TYPES, "channel_type"), nullable=False, server_default="public"
    )
    memory_scope_key: Mapped[str | None] = mapped_column(String(255))
    is_monitored: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    settings: Mapped[dict[str, Any]] = _jsonb()


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


class FeatureFlag(TimestampMixin, Base):
    """A per-workspace toggle (with an optional JSON value)."""

    __tablename__ = "feature_flags"
    __table_args__ = (UniqueConstraint("workspace_id", "flag_key", name="uq_feature_flags_workspace_key"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    flag_key: Mapped[str] = mapped_column(String(128), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    value: Mapped[dict[str, Any]] = _jsonb()


class RateLimit(Base):
    """Token-bucket state, one row per (workspace, bucket); updated atomically in SQL."""

    __tablename__ = "rate_limits"

    workspace_id: Mapped[uuid.UUID] = _workspace_key()
    bucket_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float, nullable=False)
    capacity: Mapped[float] = mapped_column(Float, nullable=False)
    refill_per_second: Mapped[float] = mapped_column(Float, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
