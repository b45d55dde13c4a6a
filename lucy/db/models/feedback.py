"""Feedback on answers: one thumbs up or down per person per task (Slack's feedback buttons);
a later click of the same person replaces the earlier one."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from lucy.contracts.ids import FEEDBACK_VALUES
from lucy.db.models.base import Base, _enum, _workspace_key


class TaskFeedback(Base):
    __tablename__ = "task_feedback"
    __table_args__ = (Index("ix_task_feedback_workspace_updated", "workspace_id", "updated_at"),)

    workspace_id: Mapped[uuid.UUID] = _workspace_key()
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    slack_user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    feedback: Mapped[str] = mapped_column(_enum(FEEDBACK_VALUES, "feedback_value"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
