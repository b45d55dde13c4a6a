"""The nightly memory upkeep: a real Temporal Schedule on the dev server starts
``LucyMemoryUpkeepWorkflow``, which forgets expired memories, merges duplicates (the oldest
stays) and reports the counts; a second run finds nothing more to do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from temporalio.client import ScheduleActionStartWorkflow, ScheduleCalendarSpec

from capabilities.memory import repository as memories
from capabilities.memory.contracts import (
    MEMORY_UPKEEP_WORKFLOW_NAME,
    MemoryScope,
    MemoryUpkeepInput,
    MemoryUpkeepReport,
)
from capabilities.memory.upkeep_schedule import ensure_memory_upkeep_schedule
from lucy.db.models import Memory
from lucy.db.repositories.tenants import set_tenant, upsert_workspace
from lucy.db.session import create_sessionmaker
from tests.conftest import Lucy, new_team, record_history
from tests.memory.test_memory_store import new_memory


async def test_the_schedule_runs_upkeep_that_expires_merges_and_counts(lucy: Lucy, engine):
    team = new_team()
    sessions = create_sessionmaker(engine)
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
    ids = []
    for memory in (
        new_memory("Standup is at 9:30"),
        new_memory("standup is   at 9:30 "),  # the same, typed differently, later
        new_memory("Standup is at 9:30", scope=MemoryScope.ME),  # the same text in another scope
        new_memory("the demo is today", expires=now - timedelta(minutes=1)),
        new_memory("the offsite is in May", expires=now + timedelta(days=30)),
    ):
        async with sessions.begin() as session:  # one transaction each: created one after the other
            await set_tenant(session=session, workspace_id=workspace_id)
            ids.append((await memories.add(session, workspace_id, memory))[0])
    first = ids[0]

    schedule_id = f"lucy-memory-upkeep-test-{uuid.uuid4().hex[:8]}"
    queue = lucy.settings.temporal.temporal_task_queue
    await ensure_memory_upkeep_schedule(lucy.client, queue, schedule_id=schedule_id)
    await ensure_memory_upkeep_schedule(lucy.client, queue, schedule_id=schedule_id)  # idempotent
    handle = lucy.client.get_schedule_handle(schedule_id)
    try:
        described = await handle.describe()
        action = described.schedule.action
        assert (
            isinstance(action, ScheduleActionStartWorkflow) and action.workflow == MEMORY_UPKEEP_WORKFLOW_NAME
        )
        (calendar,) = described.schedule.spec.calendars
        assert isinstance(calendar, ScheduleCalendarSpec) and len(calendar.hour) == 1  # nightly
        await handle.trigger()
        run_id = await _first_run(handle)
        report = await lucy.client.get_workflow_handle(run_id, result_type=MemoryUpkeepReport).result()
    finally:
        await handle.delete()
    await record_history(lucy, run_id, "lucy_memory_upkeep")
    assert report.merged >= 1 and report.expired >= 1
    async with sessions.begin() as session:
        await set_tenant(session=session, workspace_id=workspace_id)
        left = (
            await session.execute(
                select(Memory.text, Memory.scope).where(Memory.workspace_id == workspace_id)
            )
        ).all()
        assert sorted(left) == [
            ("Standup is at 9:30", "channel"),
            ("Standup is at 9:30", "me"),
            ("the offsite is in May", "channel"),
        ]
        assert (
            await session.execute(select(func.count()).where(Memory.id == first))
        ).scalar_one() == 1  # the oldest stays

    again = await lucy.client.execute_workflow(
        MEMORY_UPKEEP_WORKFLOW_NAME,
        MemoryUpkeepInput(),
        id=f"upkeep-again-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        result_type=MemoryUpkeepReport,
    )
    async with lucy.engine.connect() as conn:
        mine = (
            await conn.execute(
                text("SELECT count(*) FROM memories WHERE workspace_id = :w"), {"w": workspace_id}
            )
        ).scalar_one()
    assert mine == 3 and again.remaining >= 3


async def _first_run(handle) -> str:  # type: ignore[no-untyped-def]
    import asyncio

    for _ in range(200):
        described = await handle.describe()
        if described.info.recent_actions:
            return described.info.recent_actions[-1].action.workflow_id
        await asyncio.sleep(0.1)
    raise AssertionError("the schedule never started the upkeep")
