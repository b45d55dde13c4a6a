"""A workspace's MCP servers (``/lucy mcp add``): where each is, its cached tool catalog and the
admins' risk overrides. Its auth token is an ``integration_credentials`` row (encrypted)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from lucy.db.models.base import Base, _jsonb, _uuid_pk, _workspace_fk


class McpServer(Base):
    __tablename__ = "mcp_servers"
    __table_args__ = (UniqueConstraint("workspace_id", "name", name="uq_mcp_servers_workspace_name"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    name: Mapped[str] = mapped_column(String(32), nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    # {"tools": [checked tools], "skipped": [{"tool", "why"}]}: what the last listing found.
    catalog: Mapped[dict[str, Any]] = _jsonb()
    # {"<tool>": "low"|"high"}: an admin's word over the server's annotations.
    risk_overrides: Mapped[dict[str, Any]] = _jsonb()
    integration_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="SET NULL")
    )
    added_by: Mapped[str] = mapped_column(String(32), nullable=False)
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )
