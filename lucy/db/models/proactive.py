"""Proactive work and integrations: schedules, monitors, patterns, integrations and their credentials."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from lucy.db.models.base import (
    INTEGRATION_STATUSES,
    MONITOR_CONDITIONS,
    MONITOR_STATUSES,
    PATTERN_STATUSES,
    Base,
    TimestampMixin,
    _enum,
    _jsonb,
    _uuid_pk,
    _workspace_fk,
)


class Schedule(TimestampMixin, Base):
    """Recurring work, mirrored to a Temporal Schedule."""

    __tablename__ = "schedules"
    __table_args__ = (
        Index(
            "ix_schedules_next_run", "next_run_at", postgresql_where=text("is_active AND deleted_at IS NULL")
        ),
        UniqueConstraint("temporal_schedule_id", name="uq_schedules_temporal_schedule_id"),
        CheckConstraint("(every_seconds > 0) <> (cron_expression <> '')", name="every_seconds_or_cron"),
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
    config: Mapped[dict[str, Any]] = _jsonb()  # policies: overlap, catch-up window, pause after
    every_seconds: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    last_outcome: Mapped[str | None] = mapped_column(String(32))
    last_workflow_id: Mapped[str | None] = mapped_column(String(255))
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    paused_reason: Mapped[str | None] = mapped_column(Text)
    missed_runs: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    quota_notice_month: Mapped[date | None] = mapped_column(Date)


class Monitor(TimestampMixin, Base):
    """A proactive monitor: a condition checked on a schedule, alerting with a cooldown."""

    __tablename__ = "monitors"
    __table_args__ = (UniqueConstraint("temporal_schedule_id", name="uq_monitors_temporal_schedule_id"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    channel_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    condition_type: Mapped[str] = mapped_column(
        _enum(MONITOR_CONDITIONS, "monitor_condition"), nullable=False
    )
    condition_config: Mapped[dict[str, Any]] = _jsonb()
    check_interval_seconds: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("300"))
    alert_cooldown_seconds: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("3600"))
    status: Mapped[str] = mapped_column(
        _enum(MONITOR_STATUSES, "monitor_status"), nullable=False, server_default="active"
    )
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    last_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_alerted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    temporal_schedule_id: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    alert_state: Mapped[str] = mapped_column(String(16), nullable=False, server_default="ok")
    last_evidence: Mapped[str | None] = mapped_column(Text)
    last_workflow_id: Mapped[str | None] = mapped_column(String(255))
    last_decision: Mapped[str | None] = mapped_column(String(16))
    error_reason: Mapped[str | None] = mapped_column(Text)


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
