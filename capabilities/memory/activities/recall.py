"""The memories a task starts with: the ones most relevant to its request, from the requester's
own, the channel's and the workspace's (never another person's ``me``), each with its id,
scope, author, date and source link, cut to ``LUCY_MEMORY_RECALL_MAX_TOKENS``. Read by the
context activity (``context.prepare``), so the workflow gets them as an activity result."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from capabilities.budgets.rules import estimate_prompt_tokens
from capabilities.memory import repository as memories
from capabilities.memory.activities.embeddings import embed
from capabilities.memory.activities.tools import line
from capabilities.task.contracts.task import TaskInput
from lucy.db.repositories.tenants import tenant_transaction
from lucy.settings import LlmSettings

START_CANDIDATES = 20


@dataclass(frozen=True)
class StartingMemories:
    text: str = ""  # one line per memory, most relevant first ("" when none)
    from_others: bool = False  # some were written by someone other than the requester


async def starting_memories(
    sessions: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    settings: LlmSettings,
    task: TaskInput,
    *,
    guest: bool,
) -> StartingMemories:
    """The memories relevant to ``task``'s request, within the token cap."""
    query = " ".join(task.text.split())[:2000]
    if settings.memory_recall_max_tokens <= 0 or not query:
        return StartingMemories()
    workspace_id = uuid.UUID(task.workspace_id)
    viewer = memories.Viewer(task.slack_user_id, task.slack_channel_id, workspace_scope=not guest)
    async with tenant_transaction(sessions, workspace_id) as session:
        if not await memories.any_visible(session, workspace_id, viewer):
            return StartingMemories()  # nothing to find: no embeddings call on a task's start
    vectors = await embed(http, settings, [query])
    async with tenant_transaction(sessions, workspace_id) as session:
        rows = await memories.search(
            session,
            workspace_id,
            viewer,
            query,
            limit=START_CANDIDATES,
            embedding=vectors[0] if vectors else None,
        )
        shown = [memories.shown(r) for r in rows]
    lines: list[str] = []
    for memory in shown:
        candidate = line(memory)
        if estimate_prompt_tokens([*lines, candidate]) > settings.memory_recall_max_tokens:
            break
        lines.append(candidate)
    kept = shown[: len(lines)]
    return StartingMemories(
        text="\n".join(lines), from_others=any(m.author_slack_id != task.slack_user_id for m in kept)
    )
