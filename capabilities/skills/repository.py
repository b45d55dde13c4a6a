"""Skills in the store (``skill_versions``): every change writes a new version and keeps the old
ones; a skill's current state is its newest version. Scoped to one workspace by row-level
security (the session's transaction is scoped by the caller)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from capabilities.skills.format import Skill
from lucy.db.models import SkillVersion, Task, TaskFeedback, TaskStep


async def _lock(session: AsyncSession, workspace_id: uuid.UUID, name: str) -> None:
    """Serialise changes of one skill (two adds at once get versions n and n+1)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"skill:{workspace_id}:{name}"},
    )


async def newest(session: AsyncSession, workspace_id: uuid.UUID, name: str) -> SkillVersion | None:
    """The newest version of skill ``name`` (a removed skill's last one too), or None."""
    return (
        await session.execute(
            select(SkillVersion)
            .where(SkillVersion.workspace_id == workspace_id, SkillVersion.name == name)
            .order_by(SkillVersion.version.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def current_skills(
    session: AsyncSession, workspace_id: uuid.UUID, *, enabled_only: bool = False
) -> list[SkillVersion]:
    """Each skill's newest version, by name, leaving out removed skills (and disabled ones)."""
    latest = (
        select(SkillVersion)
        .where(SkillVersion.workspace_id == workspace_id)
        .order_by(SkillVersion.name, SkillVersion.version.desc())
        .ext(distinct_on(SkillVersion.name))
        .subquery()
    )
    rows = (
        await session.execute(select(SkillVersion).join(latest, SkillVersion.id == latest.c.id))
    ).scalars()
    return sorted(
        (r for r in rows if not r.removed and (r.enabled or not enabled_only)), key=lambda r: r.name
    )


async def skill_offers(session: AsyncSession, workspace_id: uuid.UUID) -> dict[str, str]:
    """The enabled skills, name -> description: what the model is offered."""
    return {s.name: s.description for s in await current_skills(session, workspace_id, enabled_only=True)}


async def add_skill(session: AsyncSession, workspace_id: uuid.UUID, skill: Skill, *, by: str) -> SkillVersion:
    """Write ``skill`` as a new version (version 1 for a new name), enabled."""
    await _lock(session, workspace_id, skill.name)
    before = await newest(session, workspace_id, skill.name)
    row = SkillVersion(
        workspace_id=workspace_id,
        name=skill.name,
        version=(before.version + 1) if before else 1,
        change="updated" if before is not None and not before.removed else "added",
        enabled=True,
        removed=False,
        description=skill.description,
        body=skill.body,
        source=skill.source,
        allowed_tools=list(skill.allowed_tools) if skill.allowed_tools is not None else None,
        model_tier=skill.model_tier,
        added_by=by,
        changed_by=by,
    )
    session.add(row)
    await session.flush()
    return row


async def change_skill(
    session: AsyncSession, workspace_id: uuid.UUID, name: str, change: str, *, by: str
) -> SkillVersion | None:
    """A new version of ``name`` that is enabled, disabled or removed (``change``); None when
    there is no such skill (or it was removed)."""
    await _lock(session, workspace_id, name)
    before = await newest(session, workspace_id, name)
    if before is None or before.removed:
        return None
    row = SkillVersion(
        workspace_id=workspace_id,
        name=name,
        version=before.version + 1,
        change=change,
        enabled=change == "enabled" or (change == "removed" and before.enabled),
        removed=change == "removed",
        description=before.description,
        body=before.body,
        source=before.source,
        allowed_tools=before.allowed_tools,
        model_tier=before.model_tier,
        added_by=before.added_by,
        changed_by=by,
    )
    session.add(row)
    await session.flush()
    return row


@dataclass(frozen=True)
class SkillTrouble:
    """A skill whose recent tasks went wrong repeatedly, and the versions those tasks used."""

    name: str
    thumbs_down: dict[str, int]  # version ("3") -> tasks with thumbs-down feedback
    failed: dict[str, int]  # version -> failed tasks


TROUBLE_AFTER = 2  # "repeatedly": this many tasks of a skill
TROUBLE_WINDOW = timedelta(days=30)


async def troubled_skills(
    session: AsyncSession, workspace_id: uuid.UUID, now: datetime
) -> list[SkillTrouble]:
    """Skills whose tasks of the last 30 days got thumbs-down or failed at least twice."""
    since = now - TROUBLE_WINDOW
    bad = (
        select(Task.skill, func.count(func.distinct(Task.id)))
        .join(
            TaskFeedback, (TaskFeedback.task_id == Task.id) & (TaskFeedback.workspace_id == Task.workspace_id)
        )
        .where(Task.workspace_id == workspace_id, Task.skill.is_not(None), Task.created_at >= since)
        .where(TaskFeedback.feedback == "bad")
        .group_by(Task.skill)
    )
    failed = (
        select(Task.skill, func.count())
        .where(Task.workspace_id == workspace_id, Task.skill.is_not(None), Task.created_at >= since)
        .where(Task.status == "failed")
        .group_by(Task.skill)
    )
    counts: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
    for which, query in enumerate((bad, failed)):
        for used, count in (await session.execute(query)).all():
            name, _, version = str(used).rpartition("@")
            counts.setdefault(name, ({}, {}))[which][version] = int(count)
    return [
        SkillTrouble(name=name, thumbs_down=down, failed=fail)
        for name, (down, fail) in sorted(counts.items())
        if sum(down.values()) >= TROUBLE_AFTER or sum(fail.values()) >= TROUBLE_AFTER
    ]


async def record_use(session: AsyncSession, workspace_id: uuid.UUID, workflow_id: str, used: str) -> None:
    """Record on the task's row the skill version it used (``name@version``); idempotent."""
    await session.execute(
        update(Task)
        .where(Task.workspace_id == workspace_id, Task.workflow_id == workflow_id)
        .values(skill=used)
    )


async def task_and_steps(
    session: AsyncSession, workspace_id: uuid.UUID, workflow_id: str
) -> tuple[Task, list[TaskStep]] | None:
    """A task and its tool steps that succeeded, in order (None: no such task here)."""
    task = (
        await session.execute(
            select(Task).where(Task.workspace_id == workspace_id, Task.workflow_id == workflow_id)
        )
    ).scalar_one_or_none()
    if task is None:
        return None
    steps = (
        await session.execute(
            select(TaskStep)
            .where(TaskStep.task_id == task.id, TaskStep.kind == "tool_use", TaskStep.status == "completed")
            .order_by(TaskStep.step_index)
        )
    ).scalars()
    return task, list(steps)
