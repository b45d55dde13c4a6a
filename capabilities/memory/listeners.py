"""``/lucy memory``: what Lucy remembers about the caller and in this channel, and forgetting.

* ``/lucy memory``: the caller's own memories, this channel's and the workspace's (a guest:
  not the workspace's), newest first, with id, text, author, date and source link;
* ``/lucy memory forget <id>``: the caller's own memory; a workspace admin (as Slack says now)
  any memory of the workspace;
* ``/lucy memory forget all``: every memory the caller wrote or that is theirs (``me``).

Forgetting deletes the row and what derives from it (:func:`capabilities.memory.repository.forget`).
Every answer is ephemeral, in plain words, and never loses anything on a bad id.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext
from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError

from capabilities.memory import repository as memories
from capabilities.memory.contracts import MemoryScope
from capabilities.memory.views import MEMORY_USAGE, memory_list_text
from capabilities.task.listeners.deps import listener_deps
from lucy.db.models import Memory
from lucy.db.repositories.tenants import upsert_workspace
from lucy.logging import get_logger
from lucy.roles import is_admin

log = get_logger(__name__)
LISTED = 25
TRY_AGAIN = "Sorry, I couldn't reach my memory just now; nothing was changed. Please try again."


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


async def _role(command: dict[str, Any], context: AsyncBoltContext) -> str | None:
    profile = await listener_deps(context).directory.get(
        context.client, str(command["team_id"]), str(command["user_id"])
    )
    return profile.role if profile else None


async def on_memory_list(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """``/lucy memory``."""
    team, user, channel = str(command["team_id"]), str(command["user_id"]), str(command["channel_id"])
    viewer = memories.Viewer(user, channel, workspace_scope=await _role(command, context) != "guest")
    try:
        async with listener_deps(context).sessions.begin() as session:
            workspace_id = await upsert_workspace(session=session, slack_team_id=team)
            rows = await memories.listed(session, workspace_id, viewer, LISTED)
            shown = [memories.shown(r) for r in rows]
    except (SQLAlchemyError, OSError) as exc:
        log.warning("memory list failed", error=exc.__class__.__name__)
        await ack(_ephemeral(TRY_AGAIN))
        return
    await ack(_ephemeral(memory_list_text(shown)))


async def on_memory_forget(
    ack: AsyncAck, rest: str, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    """``/lucy memory forget <id>|all``."""
    what = rest.strip()
    if not what:
        await ack(_ephemeral(MEMORY_USAGE))
        return
    try:
        text = await _forget(what, command, context)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("memory forget failed", error=exc.__class__.__name__)
        text = TRY_AGAIN
    await ack(_ephemeral(text))


async def _forget(what: str, command: dict[str, Any], context: AsyncBoltContext) -> str:
    team, user = str(command["team_id"]), str(command["user_id"])
    admin = what.lower() != "all" and is_admin(await _role(command, context))
    async with listener_deps(context).sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        if what.lower() == "all":
            own = or_(
                Memory.author_slack_id == user,
                (Memory.scope == MemoryScope.ME.value) & (Memory.scope_key == user),
            )
            rows = list(
                (
                    await session.execute(select(Memory).where(Memory.workspace_id == workspace_id, own))
                ).scalars()
            )
            done = await memories.forget(session, workspace_id, rows)
            log.info("memories forgotten", count=done, all=True)
            return f"Done: I forgot {done} of your memor{'y' if done == 1 else 'ies'}."
        row = await memories.get(session, workspace_id, what)
        if row is None:
            return f"There is no memory `{what[:40]}` here (already forgotten?). `/lucy memory` lists them."
        own_row = row.author_slack_id == user or (row.scope == MemoryScope.ME and row.scope_key == user)
        if not own_row and not admin:
            return "That memory isn't yours: only its author or a workspace admin can forget it."
        await memories.forget(session, workspace_id, [row])
    log.info("memory forgotten", by_admin=not own_row)
    return f"Done: I forgot memory `{what}`."
