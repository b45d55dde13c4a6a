"""``tenant_transaction``: the one way activities and listeners open a transaction scoped to a
workspace (as the application role, so row-level security decides what is seen)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from lucy.db.models import User
from lucy.db.repositories.tenants import tenant_transaction, upsert_user, upsert_workspace
from lucy.db.session import create_sessionmaker
from tests.conftest import new_team


async def _workspace(engine: AsyncEngine) -> uuid.UUID:
    async with create_sessionmaker(engine).begin() as session:
        return await upsert_workspace(session=session, slack_team_id=new_team())


async def _users(engine: AsyncEngine, workspace_id: uuid.UUID) -> list[str]:
    async with tenant_transaction(create_sessionmaker(engine), workspace_id) as session:
        rows = await session.execute(select(User.slack_user_id).order_by(User.slack_user_id))
        return list(rows.scalars())


async def test_it_sees_and_writes_only_its_workspace_and_commits(engine: AsyncEngine):
    sessions = create_sessionmaker(engine)
    a, b = await _workspace(engine), await _workspace(engine)
    async with tenant_transaction(sessions, a) as session:
        await upsert_user(session=session, workspace_id=a, slack_user_id="UA")
    async with tenant_transaction(sessions, b) as session:
        await upsert_user(session=session, workspace_id=b, slack_user_id="UB")
        scoped = await session.execute(select(func.current_setting("lucy.workspace_id")))
        assert scoped.scalar_one() == str(b)
    assert await _users(engine, a) == ["UA"]  # committed, and B's user is not visible
    assert await _users(engine, b) == ["UB"]


async def test_a_block_that_raises_leaves_nothing_behind(engine: AsyncEngine):
    ws = await _workspace(engine)
    with pytest.raises(RuntimeError, match="stop"):
        async with tenant_transaction(create_sessionmaker(engine), ws) as session:
            await upsert_user(session=session, workspace_id=ws, slack_user_id="UGONE")
            raise RuntimeError("stop")
    assert await _users(engine, ws) == []
