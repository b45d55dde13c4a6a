"""Skills in the real database: versions kept and numbered per workspace, and the App Home flag
for a skill whose tasks failed repeatedly (once is not enough; other workspaces' tasks and old
tasks do not count)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from capabilities.skills import repository as skills
from capabilities.skills.format import parse_skill
from lucy.db.models import Task
from tests.kernel.db.test_store import new_task, new_workspace, tenant

SKILL = parse_skill("---\nname: triage\ndescription: Triage the inbox\n---\nRead, sort, answer.")


async def _used(engine: AsyncEngine, ws: uuid.UUID, skill: str, status: str, *, days_ago: int = 0) -> None:
    task_id = await new_task(engine, ws)
    async with tenant(engine, ws) as s:
        created = datetime.now(UTC) - timedelta(days=days_ago)
        await s.execute(
            update(Task).where(Task.id == task_id).values(skill=skill, status=status, created_at=created)
        )


async def test_versions_are_numbered_per_workspace_and_kept(engine: AsyncEngine):
    ws, other = await new_workspace(engine), await new_workspace(engine)
    async with tenant(engine, ws) as s:
        assert (await skills.add_skill(s, ws, SKILL, by="U1")).version == 1
        assert (await skills.change_skill(s, ws, "triage", "disabled", by="U2")).version == 2
        assert await skills.skill_offers(s, ws) == {}
        assert (await skills.change_skill(s, ws, "triage", "enabled", by="U2")).version == 3
        assert await skills.skill_offers(s, ws) == {"triage": "Triage the inbox"}
    async with tenant(engine, other) as s:
        assert await skills.current_skills(s, other) == []
        assert await skills.change_skill(s, other, "triage", "removed", by="U3") is None
        assert (await skills.add_skill(s, other, SKILL, by="U3")).version == 1


async def test_a_skill_whose_tasks_fail_repeatedly_is_flagged_with_its_versions(engine: AsyncEngine):
    ws, other = await new_workspace(engine), await new_workspace(engine)
    await _used(engine, ws, "triage@1", "failed")
    await _used(engine, ws, "triage@3", "completed")
    await _used(engine, ws, "triage@2", "failed", days_ago=45)  # too long ago
    await _used(engine, other, "triage@1", "failed")  # another workspace's
    now = datetime.now(UTC)
    async with tenant(engine, ws) as s:
        assert await skills.troubled_skills(s, ws, now) == []  # failed once: not repeatedly
    await _used(engine, ws, "triage@3", "failed")
    async with tenant(engine, ws) as s:
        (flag,) = await skills.troubled_skills(s, ws, now)
    assert flag == skills.SkillTrouble(name="triage", thumbs_down={}, failed={"1": 1, "3": 1})
