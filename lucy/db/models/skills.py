"""Workspace skills (``SKILL.md``): every version of every skill, kept. A skill's current
state is its newest version; adding, enabling, disabling and removing each write a new one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from lucy.db.models.base import Base, _enum, _uuid_pk

SKILL_CHANGES = ("added", "updated", "enabled", "disabled", "removed")


class SkillVersion(Base):
    __tablename__ = "skill_versions"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name", "version", name="uq_skill_versions_workspace_name_version"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    change: Mapped[str] = mapped_column(_enum(SKILL_CHANGES, "skill_change"), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False)
    removed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    description: Mapped[str] = mapped_column(String(1024), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False)  # the SKILL.md as it was added
    allowed_tools: Mapped[list[Any] | None] = mapped_column(JSONB)
    model_tier: Mapped[str | None] = mapped_column(String(32))
    added_by: Mapped[str] = mapped_column(String(32), nullable=False)  # who wrote this text
    changed_by: Mapped[str] = mapped_column(String(32), nullable=False)  # who made this version
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
