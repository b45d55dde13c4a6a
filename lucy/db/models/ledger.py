"""The time series, partitioned by month: costs and their monthly rollup, audit log, webhook deliveries."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from lucy.db.models.base import (
    ACTOR_TYPES,
    WEBHOOK_STATUSES,
    Base,
    LedgerRow,
    SeriesRow,
    _enum,
    _jsonb,
    _ledger,
    _partitioned,
    _workspace_key,
)


class CostLog(LedgerRow, Base):
    """Every billable call (LLM, tool, API) with its cost. Partitioned by month; append-only."""

    __tablename__ = "cost_log"
    __table_args__ = _ledger("cost_log", "ix_cost_log_workspace_month")

    task_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    kind: Mapped[str] = mapped_column(String(32), nullable=False, server_default="llm")
    provider: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(255))
    prompt_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    completion_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), nullable=False, server_default=text("0"))


class CostMonthly(Base):
    """Exact monthly cost totals per workspace, maintained by a trigger on ``cost_log``."""

    __tablename__ = "cost_monthly"

    workspace_id: Mapped[uuid.UUID] = _workspace_key()
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    calls: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    completion_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(16, 6), nullable=False, server_default=text("0"))


class AuditLog(LedgerRow, Base):
    """Immutable record of what happened: UPDATE and DELETE fail in the database itself."""

    __tablename__ = "audit_log"
    __table_args__ = _ledger("audit_log", "ix_audit_log_workspace_created")

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


class WebhookDelivery(SeriesRow, Base):
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
        Index("ix_webhook_deliveries_external", "workspace_id", "source", "external_id"),  # 0011
        Index(
            "ix_webhook_deliveries_email_thread",
            "workspace_id",
            text("(payload->>'thread_id')"),
            postgresql_where=text("source = 'agentmail'"),
        ),
    )

    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )
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
