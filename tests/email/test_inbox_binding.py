"""One AgentMail inbox, one workspace (migration 0015): the database itself refuses a second
live workspace with the same inbox, whatever its case, across tenants, as the application role
that cannot see the other tenant's row; a racing second binding waits for the first and fails."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

BIND = "UPDATE workspaces SET settings = settings || CAST(:s AS jsonb) WHERE id = :w"


async def _workspace(conn: AsyncConnection) -> uuid.UUID:
    """A new workspace, the transaction scoped to it (as the application does)."""
    team = f"T{uuid.uuid4().hex[:10].upper()}"
    ws: uuid.UUID = (await conn.execute(text("SELECT lucy_resolve_workspace(:t)"), {"t": team})).scalar_one()
    await conn.execute(text("SELECT set_config('lucy.workspace_id', :w, true)"), {"w": str(ws)})
    return ws


async def _bind(conn: AsyncConnection, ws: uuid.UUID, inbox: str) -> None:
    await conn.execute(text(BIND), {"s": json.dumps({"email_inbox": inbox}), "w": str(ws)})


async def test_a_second_workspace_binding_the_same_inbox_waits_then_is_refused(engine: AsyncEngine):
    inbox = f"race-{uuid.uuid4().hex[:8]}@agentmail.to"
    async with engine.connect() as one, engine.connect() as two:
        await one.begin()
        await two.begin()
        first, second = await _workspace(one), await _workspace(two)
        await _bind(one, first, inbox)
        racing = asyncio.create_task(_bind(two, second, inbox.upper()))
        await asyncio.sleep(0.3)
        assert not racing.done()  # the second waits on the first's uncommitted binding
        await one.commit()
        with pytest.raises(IntegrityError, match="uq_workspaces_email_inbox"):
            await racing
        await two.rollback()


async def test_rebinding_in_the_same_workspace_and_unbound_workspaces_are_fine(engine: AsyncEngine):
    inbox = f"same-{uuid.uuid4().hex[:8]}@agentmail.to"
    async with engine.begin() as conn:
        ws = await _workspace(conn)
        await _bind(conn, ws, inbox)
        await _bind(conn, ws, inbox.upper())
        other = await _workspace(conn)
        await _bind(conn, other, "")  # no inbox: not unique
    async with engine.begin() as conn:
        await _workspace(conn)
        await _workspace(conn)
