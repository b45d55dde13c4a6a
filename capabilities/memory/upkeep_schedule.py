"""The nightly memory-upkeep Temporal Schedule (``lucy-memory-upkeep``), kept like the
maintenance schedule: ``ensure_memory_upkeep_schedule`` creates it, or updates its spec and
action if it exists, so every worker start converges on the same one."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client, Schedule, ScheduleCalendarSpec, ScheduleRange, ScheduleSpec

from capabilities.memory.contracts import (
    MEMORY_UPKEEP_SCHEDULE_ID,
    MEMORY_UPKEEP_WORKFLOW_NAME,
    MemoryUpkeepInput,
)
from lucy.temporal import ensure_schedule, recurring_schedule

UPKEEP_HOUR_UTC = 3  # nightly, at 03:17 UTC (off the hour, when little else runs)
UPKEEP_MINUTE = 17


def memory_upkeep_schedule(task_queue: str) -> Schedule:
    at = ScheduleCalendarSpec(hour=[ScheduleRange(UPKEEP_HOUR_UTC)], minute=[ScheduleRange(UPKEEP_MINUTE)])
    return recurring_schedule(
        MEMORY_UPKEEP_WORKFLOW_NAME,
        MemoryUpkeepInput(),
        schedule_id=MEMORY_UPKEEP_SCHEDULE_ID,
        task_queue=task_queue,
        spec=ScheduleSpec(calendars=[at]),
        summary="Lucy memory upkeep: expire, merge duplicates, count",
        catchup=timedelta(hours=1),
    )


async def ensure_memory_upkeep_schedule(
    client: Client, task_queue: str, *, schedule_id: str = MEMORY_UPKEEP_SCHEDULE_ID
) -> str:
    """Create or update the nightly memory-upkeep schedule; returns its id."""
    return await ensure_schedule(client, schedule_id, memory_upkeep_schedule(task_queue))
