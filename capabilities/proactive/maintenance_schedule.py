"""The maintenance Temporal Schedule Lucy keeps on its namespace (what cron used to do).

People's schedules are :mod:`capabilities.proactive`. ``ensure_maintenance_schedule`` is idempotent: it
creates the ``lucy-maintenance`` schedule, or updates its spec and action if it exists, so
every worker start converges on the same one.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from capabilities.proactive.contracts.maintenance import MaintenanceInput
from lucy.contracts.ids import MAINTENANCE_SCHEDULE_ID, MAINTENANCE_WORKFLOW_NAME
from lucy.logging import get_logger

log = get_logger(__name__)

MAINTENANCE_EVERY = timedelta(minutes=15)


def maintenance_schedule(task_queue: str, *, every: timedelta = MAINTENANCE_EVERY) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            MAINTENANCE_WORKFLOW_NAME,
            MaintenanceInput(),
            id=f"{MAINTENANCE_SCHEDULE_ID}-run",
            task_queue=task_queue,
            static_summary="Lucy maintenance: partitions, orphaned claims, schedules reconciled",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        # A slow run is never doubled up; a run missed while the cluster was down is not replayed.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(minutes=5)),
    )


async def ensure_maintenance_schedule(
    client: Client,
    task_queue: str,
    *,
    schedule_id: str = MAINTENANCE_SCHEDULE_ID,
    every: timedelta = MAINTENANCE_EVERY,
    run_now: bool = False,
) -> str:
    """Create or update the maintenance schedule; returns its id. ``run_now``: also run it at
    once (a worker starting reconciles schedule rows with Temporal straight away)."""
    schedule = maintenance_schedule(task_queue, every=every)
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("maintenance schedule created", schedule_id=schedule_id, every_s=every.total_seconds())
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(replace)
        log.info("maintenance schedule updated", schedule_id=schedule_id)
    if run_now:
        await client.get_schedule_handle(schedule_id).trigger()  # overlap policy: skipped if running
    return schedule_id
