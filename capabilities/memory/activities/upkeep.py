"""The nightly memory upkeep (activity ``memory.upkeep``): in every workspace that holds
memories, forget those whose expiry has passed, merge duplicates (the same text in the same
scope: the oldest stays) and count what is left, by scope. Idempotent: a second run finds
nothing more to do. Reports counts only, never a memory's text."""

from __future__ import annotations

from collections import Counter

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from capabilities.memory import repository as memories
from capabilities.memory.contracts import MemoryUpkeepInput, MemoryUpkeepReport
from lucy.db.repositories.tenants import tenant_transaction


class MemoryUpkeepActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn(name="memory.upkeep")
    async def upkeep(self, request: MemoryUpkeepInput) -> MemoryUpkeepReport:
        async with self._sessions.begin() as session:
            workspaces = await memories.workspaces_with_memories(session)
        merged = expired = 0
        by_scope: Counter[str] = Counter()
        for workspace_id in workspaces:  # one transaction per workspace (row-level security)
            async with tenant_transaction(self._sessions, workspace_id) as session:
                expired += await memories.expire(session, workspace_id)
                merged += await memories.merge_duplicates(session, workspace_id)
                by_scope.update(await memories.counts(session, workspace_id))
            activity.heartbeat()
        report = MemoryUpkeepReport(
            workspaces=len(workspaces),
            merged=merged,
            expired=expired,
            remaining=sum(by_scope.values()),
            by_scope=dict(sorted(by_scope.items())),
        )
        activity.logger.info(
            "memory upkeep",
            extra={
                "workspaces": report.workspaces,
                "merged": merged,
                "expired": expired,
                "remaining": report.remaining,
            },
        )
        return report
