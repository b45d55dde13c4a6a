"""What schedules and monitors share in storage: one row per standing job, soft-deleted, owned
by the user who created it, posting in one channel.

The kind-specific modules (:mod:`~capabilities.proactive.repository.schedules`,
:mod:`~capabilities.proactive.repository.monitors`) pass their model (``Schedule`` or ``Monitor``) and turn
the rows read here into their records.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from lucy.db.models import Channel, Monitor, Schedule, User, Workspace

StandingModel = type[Schedule] | type[Monitor]


@dataclass(frozen=True)
class StandingRecord:
    """The part of a standing job every kind has: who owns it and where it posts, with the Slack
    ids its Temporal Schedule and its messages need."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    slack_team_id: str
    owner_id: uuid.UUID | None
    owner_slack_id: str
    channel_id: uuid.UUID | None
    slack_channel_id: str
    name: str


def common_fields(row: Any, job: Schedule | Monitor) -> dict[str, Any]:
    """The :class:`StandingRecord` fields of a row read by :func:`get_row` or :func:`list_rows`."""
    return {
        "id": job.id,
        "workspace_id": job.workspace_id,
        "slack_team_id": row.slack_team_id,
        "owner_id": job.created_by,
        "owner_slack_id": row.owner_slack_id or "",
        "channel_id": job.channel_id,
        "slack_channel_id": row.slack_channel_id or "",
        "name": job.name,
    }


R = TypeVar("R", bound=StandingRecord)


@dataclass(frozen=True)
class Store(Generic[R]):
    """One kind's rows: its model, and how a row read here becomes its record."""

    model: StandingModel
    record: Callable[[Any], R]

    async def get(self, session: AsyncSession, workspace_id: uuid.UUID, row_id: uuid.UUID) -> R | None:
        """The live row's record, or None."""
        row = await get_row(session=session, model=self.model, workspace_id=workspace_id, row_id=row_id)
        return self.record(row) if row is not None else None

    async def list(
        self, session: AsyncSession, workspace_id: uuid.UUID, owner_id: uuid.UUID | None
    ) -> list[R]:
        """The workspace's live records (``owner_id``: only theirs), oldest first."""
        found = await list_rows(
            session=session, model=self.model, workspace_id=workspace_id, owner_id=owner_id
        )
        return [self.record(r) for r in found]

    async def count_live(self, session: AsyncSession, workspace_id: uuid.UUID) -> int:
        return await count_live(session=session, model=self.model, workspace_id=workspace_id)


def _select(model: StandingModel) -> Any:
    return (
        select(
            model,
            Workspace.slack_team_id,
            User.slack_user_id.label("owner_slack_id"),
            Channel.slack_channel_id,
        )
        .join(Workspace, Workspace.id == model.workspace_id)
        .outerjoin(User, User.id == model.created_by)
        .outerjoin(Channel, Channel.id == model.channel_id)
        .where(model.deleted_at.is_(None))
    )


def of_row(model: StandingModel, workspace_id: uuid.UUID, row_id: uuid.UUID) -> tuple[Any, Any]:
    """The WHERE clauses that pick one row of a workspace."""
    return model.workspace_id == workspace_id, model.id == row_id


async def insert_once(*, session: AsyncSession, model: StandingModel, values: dict[str, Any]) -> bool:
    """Insert the row under ``values["id"]``; False when it exists already (a second click)."""
    stmt = (
        insert(model).values(**values).on_conflict_do_nothing(index_elements=[model.id]).returning(model.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def count_live(*, session: AsyncSession, model: StandingModel, workspace_id: uuid.UUID) -> int:
    stmt = select(func.count()).where(model.workspace_id == workspace_id, model.deleted_at.is_(None))
    return int((await session.execute(stmt)).scalar_one())


async def get_row(
    *, session: AsyncSession, model: StandingModel, workspace_id: uuid.UUID, row_id: uuid.UUID
) -> Any:
    """The live row (with its Slack ids), or None."""
    stmt = _select(model).where(*of_row(model, workspace_id, row_id))
    return (await session.execute(stmt)).one_or_none()


async def list_rows(
    *, session: AsyncSession, model: StandingModel, workspace_id: uuid.UUID, owner_id: uuid.UUID | None
) -> list[Any]:
    """The workspace's live rows (``owner_id``: only theirs), oldest first."""
    stmt = _select(model).where(model.workspace_id == workspace_id)
    if owner_id is not None:
        stmt = stmt.where(model.created_by == owner_id)
    return list((await session.execute(stmt.order_by(model.created_at, model.id))).all())


async def set_values(
    *, session: AsyncSession, model: StandingModel, workspace_id: uuid.UUID, row_id: uuid.UUID, **values: Any
) -> None:
    """Change one row (its ``updated_at`` too)."""
    await session.execute(
        update(model).where(*of_row(model, workspace_id, row_id)).values(**values, updated_at=func.now())
    )


async def soft_delete(
    *, session: AsyncSession, model: StandingModel, workspace_id: uuid.UUID, row_id: uuid.UUID, **values: Any
) -> None:
    """Soft-delete: the row stays for the record; its Temporal Schedule goes. ``values``: what
    else a deleted row of this kind says (not active)."""
    await session.execute(
        update(model)
        .where(*of_row(model, workspace_id, row_id), model.deleted_at.is_(None))
        .values(deleted_at=func.now(), updated_at=func.now(), **values)
    )


async def live_ids(*, session: AsyncSession, function: str, column: str) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(workspace id, row id) of every live row, across tenants, through the SECURITY DEFINER
    ``function`` (``lucy_live_schedules`` or ``lucy_live_monitors``) returning ``column``."""
    rows = (await session.execute(text(f"SELECT workspace_id, {column} FROM {function}()"))).all()
    return [(r.workspace_id, getattr(r, column)) for r in rows]
