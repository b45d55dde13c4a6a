"""The ``patterns`` rows (recurring requests Lucy noticed) and what the scan reads.

Every function runs inside a transaction already scoped to the workspace (``set_tenant``). A
row's ``status``: ``detected`` (found; offered when ``data.offer_after`` is unset or past),
``suggested`` (offered once), ``accepted`` (a schedule was created from it), ``dismissed``
(Never: not offered again). What the scan reads: requests people made themselves (mention, DM,
command) in a DM or a channel with ``is_monitored``, by people who did not turn patterns off.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from capabilities.proactive.patterns import Found, Request, draft_id
from lucy.db.models import Channel, Pattern, Schedule, User

_TS = DateTime(timezone=True)
PREFERENCE = "patterns"  # users.preferences key: "off" means never scanned
_REQUESTS = text(
    """
    SELECT u.slack_user_id, c.slack_channel_id, coalesce(u.timezone, 'UTC'), t.request_text, t.created_at
      FROM tasks t
      JOIN users u ON u.id = t.requester_id AND u.workspace_id = t.workspace_id
      JOIN channels c ON c.id = t.channel_id AND c.workspace_id = t.workspace_id
     WHERE t.workspace_id = :ws AND t.created_at >= :since AND t.deleted_at IS NULL
       AND t.source IN ('mention', 'dm', 'command') AND coalesce(t.request_text, '') <> ''
       AND (c.channel_type = 'im' OR c.is_monitored) AND NOT u.is_bot AND u.deleted_at IS NULL
       AND coalesce(u.preferences->>'patterns', 'on') <> 'off'
     ORDER BY t.created_at
    """
)


@dataclass(frozen=True)
class PatternRow:
    id: uuid.UUID
    status: str
    description: str
    occurrences: int
    data: dict[str, Any]

    @property
    def offer_after(self) -> datetime | None:
        value = self.data.get("offer_after")
        return datetime.fromisoformat(value) if isinstance(value, str) else None


async def workspaces(*, session: AsyncSession) -> list[uuid.UUID]:
    """The live workspaces (ids only, through the SECURITY DEFINER ``lucy_pattern_workspaces``)."""
    rows = await session.execute(text("SELECT workspace_id FROM lucy_pattern_workspaces()"))
    return [uuid.UUID(str(r)) for r in rows.scalars()]


async def requests_since(*, session: AsyncSession, workspace_id: uuid.UUID, since: datetime) -> list[Request]:
    rows = await session.execute(_REQUESTS, {"ws": workspace_id, "since": since})
    return [Request(str(u), str(c), str(tz), str(t), at) for u, c, tz, t, at in rows.all()]


async def record(*, session: AsyncSession, workspace_id: uuid.UUID, found: Found) -> None:
    """Insert or refresh the row of ``found`` (its status and ``offer_after`` are kept)."""
    user_id = select(User.id).where(
        User.workspace_id == workspace_id, User.slack_user_id == found.slack_user_id
    )
    channel_id = select(Channel.id).where(
        Channel.workspace_id == workspace_id, Channel.slack_channel_id == found.slack_channel_id
    )
    data = {
        "when": found.when,
        "timezone": found.timezone,
        "request": found.request,
        "slack_user_id": found.slack_user_id,
        "slack_channel_id": found.slack_channel_id,
    }
    ins = insert(Pattern).values(
        workspace_id=workspace_id,
        user_id=user_id.scalar_subquery(),
        channel_id=channel_id.scalar_subquery(),
        signature=found.signature,
        description=found.description,
        occurrences=found.occurrences,
        confidence=1.0,
        data=data,
        last_seen_at=found.last_seen_at,
    )
    await session.execute(
        ins.on_conflict_do_update(
            constraint="uq_patterns_workspace_signature",
            set_={
                "user_id": ins.excluded.user_id,
                "description": ins.excluded.description,
                "occurrences": ins.excluded.occurrences,
                "data": Pattern.data.concat(ins.excluded.data),
                "last_seen_at": ins.excluded.last_seen_at,
                "updated_at": func.now(),
            },
        )
    )


async def due_offers(*, session: AsyncSession, workspace_id: uuid.UUID, now: datetime) -> list[PatternRow]:
    """Rows never offered (or told Not now, and past it) whose requester still allows patterns."""
    rows = await session.execute(
        select(Pattern.id, Pattern.status, Pattern.description, Pattern.occurrences, Pattern.data)
        .join(User, User.id == Pattern.user_id)
        .where(
            Pattern.workspace_id == workspace_id,
            Pattern.status == "detected",
            Pattern.deleted_at.is_(None),
            func.coalesce((Pattern.data["offer_after"].astext).cast(_TS), now) <= now,
            func.coalesce(User.preferences["patterns"].astext, "on") != "off",
        )
        .order_by(Pattern.last_seen_at)
    )
    return [PatternRow(*r) for r in rows.all()]


async def set_status(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    pattern_id: uuid.UUID,
    status: str,
    slack_user_id: str | None = None,
    offer_after: datetime | None = None,
) -> bool:
    """Move a row to ``status`` (``slack_user_id``: only if it is that person's); whether it moved."""
    values: dict[str, Any] = {"status": status, "updated_at": func.now()}
    if offer_after is not None:
        values["data"] = Pattern.data.concat({"offer_after": offer_after.isoformat()})
    stmt = update(Pattern).where(Pattern.workspace_id == workspace_id, Pattern.id == pattern_id)
    if slack_user_id is not None:
        stmt = stmt.where(Pattern.data["slack_user_id"].astext == slack_user_id)
    moved = await session.execute(stmt.values(**values).returning(Pattern.id))
    return moved.first() is not None


async def of_user(*, session: AsyncSession, workspace_id: uuid.UUID, slack_user_id: str) -> list[PatternRow]:
    rows = await session.execute(
        select(Pattern.id, Pattern.status, Pattern.description, Pattern.occurrences, Pattern.data)
        .where(
            Pattern.workspace_id == workspace_id,
            Pattern.deleted_at.is_(None),
            Pattern.data["slack_user_id"].astext == slack_user_id,
        )
        .order_by(Pattern.last_seen_at.desc())
    )
    return [PatternRow(*r) for r in rows.all()]


async def scheduled(
    *, session: AsyncSession, workspace_id: uuid.UUID, pattern_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of ``pattern_ids`` became a live schedule (its Create was clicked)."""
    by_draft = {uuid.UUID(draft_id(p)): p for p in pattern_ids}
    found = await session.execute(
        select(Schedule.id).where(
            Schedule.workspace_id == workspace_id,
            Schedule.id.in_(list(by_draft)),
            Schedule.deleted_at.is_(None),
        )
    )
    return {by_draft[s] for s in found.scalars()}


async def set_preference(
    *, session: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID, on: bool
) -> None:
    """``/lucy settings patterns on|off``: the person's own choice, in ``users.preferences``."""
    await session.execute(
        update(User)
        .where(User.workspace_id == workspace_id, User.id == user_id)
        .values(
            preferences=User.preferences.concat({PREFERENCE: "on" if on else "off"}), updated_at=func.now()
        )
    )


async def set_monitored(
    *, session: AsyncSession, workspace_id: uuid.UUID, channel_id: uuid.UUID, on: bool
) -> None:
    """``/lucy settings patterns-channel on|off`` (admins): whether this channel is scanned."""
    await session.execute(
        update(Channel)
        .where(Channel.workspace_id == workspace_id, Channel.id == channel_id)
        .values(is_monitored=on, updated_at=func.now())
    )
