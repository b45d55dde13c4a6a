"""The declarative base, naming convention, enumerations and column helpers every model shares."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lucy.contracts.ids import TaskIntent

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


TASK_INTENTS = tuple(i.value for i in TaskIntent)


AGENT_TYPES = ("main", "personal", "custom")


STEP_KINDS = ("llm_call", "tool_use", "approval_wait")


STEP_STATUSES = ("running", "completed", "failed", "skipped")


APPROVAL_ACTION_TYPES = ("tool_execution", "code_deployment", "message_send", "data_export")


RISK_LEVELS = ("low", "medium", "high", "critical")


APPROVAL_STATUSES = ("pending", "approved", "rejected", "expired", "cancelled")


MONITOR_CONDITIONS = ("metric_threshold", "api_health", "schedule_miss", "custom")


MONITOR_STATUSES = ("active", "paused", "error")


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


def _workspace_fk(*, index: bool = False) -> Mapped[uuid.UUID]:
    """The row's workspace (deleted with it)."""
    return mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False, index=index)


def _workspace_key() -> Mapped[uuid.UUID]:
    """The row's workspace as the first part of its primary key (deleted with it)."""
    return mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)


class SeriesRow:
    """The columns every month-partitioned time-series row starts with (see :func:`_partitioned`):
    its id and ``created_at`` (together the primary key) and its workspace, without a foreign key
    (a partitioned table's rows outlive nothing: they are dropped by partition)."""

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)


def _partitioned(name: str, *extra: Any) -> tuple[Any, ...]:
    """Table args of a month-partitioned time-series table: the partition key is in the primary key."""
    return (
        PrimaryKeyConstraint("id", "created_at", name=f"pk_{name}"),
        *extra,
        {"postgresql_partition_by": "RANGE (created_at)"},
    )


class LedgerRow(SeriesRow):
    """A time-series row written once (``cost_log``, ``audit_log``): its idempotency key (from the
    workflow id and step, for example) makes a retried activity write nothing twice (see
    :func:`_ledger`)."""

    idempotency_key: Mapped[str] = mapped_column(String(64), nullable=False)


def _ledger(name: str, workspace_index: str) -> tuple[Any, ...]:
    """Table args of a :class:`LedgerRow` table: partitioned by month, read by workspace and time,
    one row per idempotency key in its month."""
    return _partitioned(
        name,
        Index(workspace_index, "workspace_id", "created_at"),
        UniqueConstraint("idempotency_key", "created_at", name=f"uq_{name}_idempotency_key"),
    )
