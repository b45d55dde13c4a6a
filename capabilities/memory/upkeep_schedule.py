"""The nightly memory-upkeep Temporal Schedule (``lucy-memory-upkeep``), kept like the
maintenance schedule: ``ensure_memory_upkeep_schedule`` creates it, or updates its spec and
action if it exists, so every worker start converges on the same one."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from capabilities.memory.contracts import (
    MEMORY_UPKEEP_SCHEDULE_ID,
    MEMORY_UPKEEP_WORKFLOW_NAME,
    MemoryUpkeepInput,
)
from lucy.logging import get_logger

log = get_logger(__name__)

UPKEEP_HOUR_UTC = 3  # nightly, at 03:17 UTC (off the hour, when little else runs)
UPKEEP_MINUTE = 17


def memory_upkeep_schedule(task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            MEMORY_UPKEEP_WORKFLOW_NAME,
            MemoryUpkeepInput(),
            id=f"{MEMORY_UPKEEP_SCHEDULE_ID}-run",
            task_queue=task_queue,
            static_summary="Lucy memory upkeep: expire, merge duplicates, count",
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    hour=[ScheduleRange(UPKEEP_HOUR_UTC)], minute=[ScheduleRange(UPKEEP_MINUTE)]
                )
            ]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(hours=1)),
    )


async def ensure_memory_upkeep_schedule(
    client: Client, task_queue: str, *, schedule_id: str = MEMORY_UPKEEP_SCHEDULE_ID
) -> str:
    """Create or update the nightly memory-upkeep schedule; returns its id."""
    schedule = memory_upkeep_schedule(task_queue)
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("memory upkeep schedule created", schedule_id=schedule_id)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(replace)
        log.info("memory upkeep schedule updated", schedule_id=schedule_id)
    return schedule_id
