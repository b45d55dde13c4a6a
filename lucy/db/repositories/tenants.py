"""Tenants: scoping a transaction to its workspace, workspaces (and their settings), users,
channels, flags."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lucy.db.models import (
    Channel,
    FeatureFlag,
    User,
    Workspace,
)


async def set_tenant(*, session: AsyncSession, workspace_id: uuid.UUID) -> None:
    """Scope the current transaction to ``workspace_id`` (row-level security key)."""
    await session.execute(
        select(func.set_config("lucy.workspace_id", str(workspace_id), True))  # True: transaction-local
    )


@asynccontextmanager
async def tenant_transaction(
    sessions: async_sessionmaker[AsyncSession], workspace_id: uuid.UUID
) -> AsyncIterator[AsyncSession]:
    """A transaction scoped to ``workspace_id`` (see :func:`set_tenant`): committed when the block
    ends, rolled back when it raises."""
    async with sessions.begin() as session:
        await set_tenant(session=session, workspace_id=workspace_id)
        yield session


class WorkspaceRemoved(Exception):
    """The Slack team's workspace was removed from Lucy (soft-deleted): it is not brought back
    by a new message; an operator restores it deliberately."""


async def upsert_workspace(
    *, session: AsyncSession, slack_team_id: str, name: str | None = None
) -> uuid.UUID:
    """The workspace id of a Slack team, creating it on first contact; also scopes the
    transaction to it (one round trip for both). Resolution goes through
    ``lucy_resolve_workspace`` (SECURITY DEFINER): the application role itself can never see
    another tenant's workspace row."""
    scoped = func.set_config(
        "lucy.workspace_id",
        func.coalesce(cast(func.lucy_resolve_workspace(slack_team_id, name), Text), ""),
        True,
    )
    resolved = (await session.execute(select(scoped))).scalar_one()
    if not resolved:
        raise WorkspaceRemoved(slack_team_id)
    return uuid.UUID(resolved)


async def get_workspace(*, session: AsyncSession, workspace_id: uuid.UUID) -> Workspace | None:
    return (await session.execute(select(Workspace).where(Workspace.id == workspace_id))).scalar_one_or_none()


async def upsert_user(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    slack_user_id: str,
    display_name: str | None = None,
    role: str | None = None,
    is_bot: bool = False,
    timezone: str | None = None,
) -> uuid.UUID:
    """The user id for a Slack user in a workspace, creating the user on first contact."""
    ins = insert(User).values(
        workspace_id=workspace_id,
        slack_user_id=slack_user_id,
        display_name=display_name,
        is_bot=is_bot,
        timezone=timezone,
        **({"role": role} if role else {}),
    )
    set_: dict[str, Any] = {
        "display_name": func.coalesce(ins.excluded.display_name, User.display_name),
        "timezone": func.coalesce(ins.excluded.timezone, User.timezone),
        "updated_at": func.now(),
    }
    if role:
        set_["role"] = ins.excluded.role
    stmt = ins.on_conflict_do_update(
        constraint="uq_users_workspace_slack_user", set_=set_, where=User.workspace_id == workspace_id
    ).returning(User.id)
    return (await session.execute(stmt)).scalar_one()


async def get_user(*, session: AsyncSession, workspace_id: uuid.UUID, slack_user_id: str) -> User | None:
    return (
        await session.execute(
            select(User).where(
                User.workspace_id == workspace_id,
                User.slack_user_id == slack_user_id,
                User.deleted_at.is_(None),
            )
        )
    ).scalar_one_or_none()


async def get_channel(
    *, session: AsyncSession, workspace_id: uuid.UUID, channel_id: uuid.UUID
) -> Channel | None:
    return (
        await session.execute(
            select(Channel).where(Channel.id == channel_id, Channel.workspace_id == workspace_id)
        )
    ).scalar_one_or_none()


async def upsert_channel(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    slack_channel_id: str,
    channel_type: str = "public",
    name: str | None = None,
) -> uuid.UUID:
    """The channel id for a Slack conversation in a workspace, creating it on first contact."""
    ins = insert(Channel).values(
        workspace_id=workspace_id,
        slack_channel_id=slack_channel_id,
        channel_type=channel_type,
        name=name,
        memory_scope_key=f"{workspace_id}:{slack_channel_id}",
    )
    stmt = ins.on_conflict_do_update(
        constraint="uq_channels_workspace_slack_channel",
        set_={"name": func.coalesce(ins.excluded.name, Channel.name), "updated_at": func.now()},
        where=Channel.workspace_id == workspace_id,
    ).returning(Channel.id)
    return (await session.execute(stmt)).scalar_one()


async def is_feature_enabled(
    *, session: AsyncSession, workspace_id: uuid.UUID, flag_key: str, default: bool = False
) -> bool:
    enabled = (
        await session.execute(
            select(FeatureFlag.enabled).where(
                FeatureFlag.workspace_id == workspace_id,
                FeatureFlag.flag_key == flag_key,
                FeatureFlag.deleted_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    return default if enabled is None else bool(enabled)


async def list_workspace_ids(*, session: AsyncSession) -> list[uuid.UUID]:
    """Every workspace id. Only the schema owner can see them all (maintenance commands)."""
    return list((await session.execute(select(Workspace.id).order_by(Workspace.id))).scalars())


async def workspace_settings(*, session: AsyncSession, workspace_id: uuid.UUID) -> dict[str, Any]:
    """A workspace's ``settings`` (empty when it cannot be seen)."""
    value = (
        await session.execute(select(Workspace.settings).where(Workspace.id == workspace_id))
    ).scalar_one_or_none()
    return dict(value or {})


async def update_workspace_settings(
    *, session: AsyncSession, workspace_id: uuid.UUID, values: dict[str, Any]
) -> None:
    """Merge ``values`` into a workspace's ``settings`` (the transaction is scoped to it)."""
    await session.execute(
        update(Workspace)
        .where(Workspace.id == workspace_id)
        .values(settings=Workspace.settings.op("||")(bindparam("values", values, type_=JSONB)))
    )
