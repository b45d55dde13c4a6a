"""SQLAlchemy 2 models: the tenant store and the task record.

Every tenant table carries ``workspace_id``; every table has timezone-aware
``created_at`` / ``updated_at`` and a ``deleted_at`` for soft deletes. Enumerations are
stored as text with a CHECK constraint so that adding a value is a constraint swap in a
migration, not an ``ALTER TYPE``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
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
        Index(
            "ix_tasks_active",
            "workspace_id",
            "status",
            postgresql_where=text("status IN ('created', 'pending_approval', 'running')"),
        ),
        Index("ix_tasks_workspace_created", "workspace_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    requester_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    channel_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    workflow_id: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(
        _enum([s.value for s in TaskSource], "task_source"), nullable=False, server_default="mention"
    )
    status: Mapped[str] = mapped_column(
        _enum([s.value for s in TaskStatus], "task_status"), nullable=False, server_default="created"
    )
    intent: Mapped[str | None] = mapped_column(String(32))
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


__all__ = ["ACTIVE_TASK_STATUSES", "Base", "Channel", "Task", "User", "Workspace"]
