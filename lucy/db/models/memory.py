"""Memories: what the team asked Lucy to remember, one row each, scoped to a person (``me``), a
channel or the workspace, with where it came from (the author, the source Slack message, the
task). Retrieval reads ``search`` (a generated ``tsvector``, GIN-indexed) and, when an
embeddings endpoint is configured, ``embedding`` (``real[]``; cosine in SQL through pgvector
when the ``vector`` extension is installed, in Python otherwise). Forgetting deletes the row:
the generated column and the embedding go with it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import REAL, Computed, DateTime, Index, String, Text, func
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column

from lucy.db.models.base import Base, _enum, _workspace_fk

MEMORY_SCOPES = ("me", "channel", "workspace")


class Memory(Base):
    __tablename__ = "memories"
    __table_args__ = (
        Index("ix_memories_search", "search", postgresql_using="gin"),
        Index("ix_memories_workspace_scope", "workspace_id", "scope", "scope_key"),
        Index("ix_memories_source_key", "workspace_id", "source_key", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=sql("gen_random_uuid()")
    )
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    scope: Mapped[str] = mapped_column(_enum(MEMORY_SCOPES, "memory_scope"), nullable=False)
    # me: the person's Slack id; channel: the Slack channel id; workspace: "".
    scope_key: Mapped[str] = mapped_column(String(32), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    author_slack_id: Mapped[str] = mapped_column(String(32), nullable=False)
    source_channel_id: Mapped[str] = mapped_column(String(32), nullable=False, server_default="")
    source_ts: Mapped[str] = mapped_column(String(32), nullable=False, server_default="")
    source_workflow_id: Mapped[str] = mapped_column(String(255), nullable=False, server_default="")
    # The tasks of the duplicates the upkeep merged into this one: forgetting scrubs them too.
    merged_workflow_ids: Mapped[list[str]] = mapped_column(
        ARRAY(String(255)), nullable=False, server_default=sql("'{}'")
    )
    # The step that wrote it (workflow id + step): a retried activity writes it once.
    source_key: Mapped[str] = mapped_column(String(300), nullable=False)
    embedding: Mapped[list[float] | None] = mapped_column(ARRAY(REAL))
    search: Mapped[str] = mapped_column(
        TSVECTOR, Computed("to_tsvector('english', text)", persisted=True), nullable=False
    )
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
