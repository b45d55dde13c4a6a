"""Memories in PostgreSQL (``memories``, row-level security per workspace): write once per
step, find by full-text search (``websearch_to_tsquery`` over the generated ``search`` column,
ranked by ``ts_rank_cd``) and, given a query embedding, by cosine similarity (pgvector in SQL
when the ``vector`` extension is installed, Python otherwise), fused by reciprocal rank; list,
forget (the row, its generated index and embedding, and the verbatim copies in the record of
the task it came from) and the nightly upkeep (expire, merge duplicates, count).

Who may see what: a ``me`` memory only its owner, a ``channel`` memory that channel, a
``workspace`` memory everyone in the workspace (:func:`_visible`)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Text, and_, cast, delete, func, or_, select, text
from sqlalchemy.dialects.postgresql import TSQUERY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from capabilities.memory.contracts import MemoryScope, RecalledMemory
from lucy.db.models import Memory

RRF_K = 60  # reciprocal rank fusion's constant (Cormack et al.)
VECTOR_CANDIDATES = 2000  # the most rows compared by cosine in Python (no pgvector)
FORGOTTEN = "[forgotten]"


@dataclass(frozen=True)
class Viewer:
    """Who looks, and where: decides which scopes are visible."""

    slack_user_id: str
    slack_channel_id: str
    workspace_scope: bool = True  # guests see their own and the channel's only


@dataclass(frozen=True)
class NewMemory:
    scope: MemoryScope
    text: str
    author_slack_id: str
    source_channel_id: str
    source_ts: str
    source_workflow_id: str
    source_key: str
    embedding: list[float] | None = None
    expires_at: datetime | None = None


def scope_key(scope: MemoryScope, *, user: str, channel: str) -> str:
    return {MemoryScope.ME: user, MemoryScope.CHANNEL: channel, MemoryScope.WORKSPACE: ""}[scope]


def permalink(channel: str, ts: str) -> str:
    """A link to a Slack message (Slack redirects it to the workspace's own domain)."""
    if not channel or not ts:
        return ""
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


def _visible(viewer: Viewer) -> ColumnElement[bool]:
    scopes = [
        and_(Memory.scope == MemoryScope.ME.value, Memory.scope_key == viewer.slack_user_id),
        and_(Memory.scope == MemoryScope.CHANNEL.value, Memory.scope_key == viewer.slack_channel_id),
    ]
    if viewer.workspace_scope:
        scopes.append(Memory.scope == MemoryScope.WORKSPACE.value)
    live = or_(Memory.expires_at.is_(None), Memory.expires_at > func.now())
    return and_(or_(*scopes), live)


def shown(row: Memory) -> RecalledMemory:
    return RecalledMemory(
        id=str(row.id),
        scope=row.scope,
        text=row.text,
        author_slack_id=row.author_slack_id,
        created_at=row.created_at.isoformat(),
        link=permalink(row.source_channel_id, row.source_ts),
    )


async def add(session: AsyncSession, workspace_id: uuid.UUID, memory: NewMemory) -> tuple[uuid.UUID, bool]:
    """Write ``memory`` once (per ``source_key``); returns its id and whether it is new."""
    user = memory.author_slack_id
    values = {
        "workspace_id": workspace_id,
        "scope": memory.scope.value,
        "scope_key": scope_key(memory.scope, user=user, channel=memory.source_channel_id),
        "text": memory.text,
        "author_slack_id": user,
        "source_channel_id": memory.source_channel_id,
        "source_ts": memory.source_ts,
        "source_workflow_id": memory.source_workflow_id,
        "source_key": memory.source_key,
        "embedding": memory.embedding,
        "expires_at": memory.expires_at,
    }
    stmt = insert(Memory).values(**values).on_conflict_do_nothing().returning(Memory.id)
    new_id = (await session.execute(stmt)).scalar_one_or_none()
    if new_id is not None:
        return new_id, True
    existing = await session.execute(
        select(Memory.id).where(Memory.workspace_id == workspace_id, Memory.source_key == memory.source_key)
    )
    return existing.scalar_one(), False


async def full_text(
    session: AsyncSession, workspace_id: uuid.UUID, viewer: Viewer, query: str, limit: int
) -> list[Memory]:
    """The best full-text matches of ``query`` (any of its words; more and closer words rank higher)."""
    # websearch_to_tsquery parses what people type; its AND becomes OR so a long request still
    # matches a memory that shares some of its words (ts_rank_cd ranks fuller matches first).
    tsquery = cast(func.replace(cast(func.websearch_to_tsquery("english", query), Text), "&", "|"), TSQUERY)
    rank = func.ts_rank_cd(Memory.search, tsquery)
    stmt = (
        select(Memory)
        .where(Memory.workspace_id == workspace_id, _visible(viewer), Memory.search.op("@@")(tsquery))
        .order_by(rank.desc(), Memory.created_at.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def has_pgvector(session: AsyncSession) -> bool:
    found = await session.execute(text("SELECT count(*) FROM pg_extension WHERE extname = 'vector'"))
    return bool(found.scalar_one())


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


async def nearest(
    session: AsyncSession, workspace_id: uuid.UUID, viewer: Viewer, embedding: list[float], limit: int
) -> list[Memory]:
    """The memories whose embeddings are closest to ``embedding`` (same dimension only)."""
    same_dim = and_(
        Memory.workspace_id == workspace_id,
        _visible(viewer),
        Memory.embedding.is_not(None),
        func.cardinality(Memory.embedding) == len(embedding),
    )
    if await has_pgvector(session):
        vector = "[" + ",".join(f"{x:.7g}" for x in embedding) + "]"
        distance = text("CAST(memories.embedding AS vector) <=> CAST(:qv AS vector)").bindparams(qv=vector)
        stmt = select(Memory).where(same_dim).order_by(distance).limit(limit)
        return list((await session.execute(stmt)).scalars())
    rows = (
        await session.execute(
            select(Memory).where(same_dim).order_by(Memory.created_at.desc()).limit(VECTOR_CANDIDATES)
        )
    ).scalars()
    scored = sorted(rows, key=lambda m: cosine(m.embedding or [], embedding), reverse=True)
    return scored[:limit]


def fuse(*rankings: list[Memory], limit: int) -> list[Memory]:
    """Reciprocal rank fusion of several rankings of memories."""
    score: dict[uuid.UUID, float] = {}
    rows: dict[uuid.UUID, Memory] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking):
            score[row.id] = score.get(row.id, 0.0) + 1.0 / (RRF_K + rank + 1)
            rows[row.id] = row
    best = sorted(score, key=lambda i: score[i], reverse=True)
    return [rows[i] for i in best[:limit]]


async def search(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    viewer: Viewer,
    query: str,
    *,
    limit: int,
    embedding: list[float] | None = None,
) -> list[Memory]:
    """Full-text search, or hybrid (full-text fused with cosine) when ``embedding`` is given."""
    words = await full_text(session, workspace_id, viewer, query, limit * 4 if embedding else limit)
    if not embedding:
        return words
    return fuse(words, await nearest(session, workspace_id, viewer, embedding, limit * 4), limit=limit)


async def any_visible(session: AsyncSession, workspace_id: uuid.UUID, viewer: Viewer) -> bool:
    """Whether ``viewer`` may see any live memory at all (a cheap check before a search)."""
    stmt = select(Memory.id).where(Memory.workspace_id == workspace_id, _visible(viewer)).limit(1)
    return (await session.execute(stmt)).first() is not None


async def listed(session: AsyncSession, workspace_id: uuid.UUID, viewer: Viewer, limit: int) -> list[Memory]:
    """What a person sees with ``/lucy memory``: theirs and this channel's (and the workspace's)."""
    stmt = (
        select(Memory)
        .where(Memory.workspace_id == workspace_id, _visible(viewer))
        .order_by(Memory.created_at.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def get(session: AsyncSession, workspace_id: uuid.UUID, memory_id: str) -> Memory | None:
    try:
        key = uuid.UUID(memory_id.strip())
    except ValueError:
        return None
    row = await session.get(Memory, key)
    return row if row is not None and row.workspace_id == workspace_id else None


async def forget(session: AsyncSession, workspace_id: uuid.UUID, rows: Sequence[Memory]) -> int:
    """Delete ``rows`` and every copy derived from them (the generated search column and the
    embedding are in the row); the verbatim text in the record of the task it came from (the
    request, its steps, approvals, audit entries) becomes ``[forgotten]``."""
    for row in rows:
        for workflow_id in {row.source_workflow_id, *row.merged_workflow_ids}:
            await _scrub_source(session, workspace_id, workflow_id, row.text)
    ids = [row.id for row in rows]
    if not ids:
        return 0
    done = await session.execute(
        delete(Memory).where(Memory.workspace_id == workspace_id, Memory.id.in_(ids))
    )
    return int(getattr(done, "rowcount", 0) or 0)


# The verbatim text (case aside: merged duplicates differ in case) in the source task's record.
_SCRUB = (
    "UPDATE tasks SET request_text = regexp_replace(request_text, :t, :f, 'gi'), "
    "result_data = regexp_replace(result_data::text, :j, :f, 'gi')::jsonb "
    "WHERE workspace_id = :w AND workflow_id = :wf",
    "UPDATE task_steps s SET input = regexp_replace(s.input::text, :j, :f, 'gi')::jsonb, "
    "output = regexp_replace(s.output::text, :j, :f, 'gi')::jsonb, "
    "error = regexp_replace(s.error, :t, :f, 'gi') "
    "FROM tasks t WHERE s.task_id = t.id AND t.workspace_id = :w AND t.workflow_id = :wf",
    "UPDATE approvals SET summary = regexp_replace(summary, :t, :f, 'gi'), "
    "details = regexp_replace(details::text, :j, :f, 'gi')::jsonb "
    "WHERE workspace_id = :w AND workflow_id = :wf",
)


def _literal(text_: str) -> str:
    """``text_`` as a regular expression matching itself (every non-word character escaped)."""
    return "".join(c if c.isalnum() or c == "_" else "\\" + c for c in text_)


async def _scrub_source(session: AsyncSession, workspace_id: uuid.UUID, workflow_id: str, body: str) -> None:
    if not workflow_id or not body.strip():
        return
    quoted: str = (await session.execute(select(cast(func.to_jsonb(body), Text)))).scalar_one()
    params = {
        "t": _literal(body),
        "j": _literal(quoted[1:-1]),
        "f": FORGOTTEN,
        "w": workspace_id,
        "wf": workflow_id,
    }
    for sql in _SCRUB:
        await session.execute(text(sql), params)


async def expire(session: AsyncSession, workspace_id: uuid.UUID) -> int:
    """Forget the memories whose expiry has passed."""
    gone = (
        await session.execute(
            select(Memory).where(Memory.workspace_id == workspace_id, Memory.expires_at <= func.now())
        )
    ).scalars()
    return await forget(session, workspace_id, list(gone))


async def merge_duplicates(session: AsyncSession, workspace_id: uuid.UUID) -> int:
    """Keep the oldest of memories with the same text (case and spacing aside) in the same scope;
    delete the others. Returns how many were merged away."""
    normal = func.lower(func.regexp_replace(func.btrim(Memory.text), r"\s+", " ", "g"))
    first = (
        func.row_number()
        .over(partition_by=(Memory.scope, Memory.scope_key, normal), order_by=(Memory.created_at, Memory.id))
        .label("n")
    )
    keeper = func.first_value(Memory.id).over(
        partition_by=(Memory.scope, Memory.scope_key, normal), order_by=(Memory.created_at, Memory.id)
    )
    ranked = (
        select(Memory.id, first, keeper.label("keeper")).where(Memory.workspace_id == workspace_id).subquery()
    )
    pairs = (await session.execute(select(ranked.c.id, ranked.c.keeper).where(ranked.c.n > 1))).all()
    if not pairs:
        return 0
    extra = [dup for dup, _ in pairs]
    rows = {
        m.id: m
        for m in (
            await session.execute(select(Memory).where(Memory.id.in_([*extra, *(k for _, k in pairs)])))
        ).scalars()
    }
    for dup, kept in pairs:  # the kept memory remembers where its duplicates came from
        sources = {rows[kept].source_workflow_id, *rows[kept].merged_workflow_ids}
        added = {rows[dup].source_workflow_id, *rows[dup].merged_workflow_ids} - sources - {""}
        rows[kept].merged_workflow_ids = sorted({*rows[kept].merged_workflow_ids, *added})
    await session.flush()
    done = await session.execute(
        delete(Memory).where(Memory.workspace_id == workspace_id, Memory.id.in_(extra))
    )
    return int(getattr(done, "rowcount", 0) or 0)


async def counts(session: AsyncSession, workspace_id: uuid.UUID) -> dict[str, int]:
    rows = await session.execute(
        select(Memory.scope, func.count()).where(Memory.workspace_id == workspace_id).group_by(Memory.scope)
    )
    return {scope: int(n) for scope, n in rows.all()}


async def workspaces_with_memories(session: AsyncSession) -> list[uuid.UUID]:
    rows = await session.execute(text("SELECT workspace_id FROM lucy_memory_workspaces()"))
    return [uuid.UUID(str(r)) for r in rows.scalars()]
