"""Tasks and what happens in them: steps and approvals."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from lucy.contracts.ids import RECORDED_TASK_STATUSES, TaskSource
from lucy.db.models.base import (
    APPROVAL_ACTION_TYPES,
    APPROVAL_STATUSES,
    RISK_LEVELS,
    STEP_KINDS,
    STEP_STATUSES,
    TASK_INTENTS,
    Base,
    TimestampMixin,
    _enum,
    _jsonb,
    _uuid_pk,
    _workspace_fk,
)


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
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    requester_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    channel_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    workflow_id: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(
        _enum([s.value for s in TaskSource], "task_source"), nullable=False, server_default="mention"
    )
    status: Mapped[str] = mapped_column(
        _enum(RECORDED_TASK_STATUSES, "task_status"), nullable=False, server_default="created"
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
