"""The Temporal Schedules Lucy keeps on its namespace (what cron used to do): ``lucy-maintenance``
and the weekly ``lucy-patterns`` (recurring requests).

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
from capabilities.proactive.contracts.patterns import PatternScan
from lucy.contracts.ids import (
    MAINTENANCE_SCHEDULE_ID,
    MAINTENANCE_WORKFLOW_NAME,
    PATTERNS_SCHEDULE_ID,
    PATTERNS_WORKFLOW_NAME,
)
from lucy.logging import get_logger

log = get_logger(__name__)

MAINTENANCE_EVERY = timedelta(minutes=15)
PATTERNS_EVERY = timedelta(days=7)


def _every(
    workflow: str,
    arg: object,
    schedule_id: str,
    task_queue: str,
    *,
    every: timedelta,
    summary: str,
    catchup: timedelta,
) -> Schedule:
    """A schedule that starts ``workflow`` every ``every``: a slow run is never doubled up, and a
    run missed while the cluster was down is replayed only within ``catchup``."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            workflow, arg, id=f"{schedule_id}-run", task_queue=task_queue, static_summary=summary
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=catchup),
    )


def maintenance_schedule(task_queue: str, *, every: timedelta = MAINTENANCE_EVERY) -> Schedule:
    summary = "Lucy maintenance: partitions, orphaned claims, schedules reconciled"
    return _every(
        MAINTENANCE_WORKFLOW_NAME,
        MaintenanceInput(),
        MAINTENANCE_SCHEDULE_ID,
        task_queue,
        every=every,
        summary=summary,
        catchup=timedelta(minutes=5),
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
    return await _ensure(client, schedule_id, maintenance_schedule(task_queue, every=every), run_now=run_now)


def patterns_schedule(task_queue: str, *, every: timedelta = PATTERNS_EVERY) -> Schedule:
    """The weekly scan for recurring requests (``LucyPatternsWorkflow``)."""
    summary = "Lucy patterns: recurring requests found, each offered once as a schedule"
    return _every(
        PATTERNS_WORKFLOW_NAME,
        PatternScan(),
        PATTERNS_SCHEDULE_ID,
        task_queue,
        every=every,
        summary=summary,
        catchup=timedelta(hours=1),
    )


async def ensure_patterns_schedule(
    client: Client,
    task_queue: str,
    *,
    schedule_id: str = PATTERNS_SCHEDULE_ID,
    every: timedelta = PATTERNS_EVERY,
) -> str:
    """Create or update the ``lucy-patterns`` schedule; returns its id."""
    return await _ensure(client, schedule_id, patterns_schedule(task_queue, every=every), run_now=False)


async def _ensure(client: Client, schedule_id: str, schedule: Schedule, *, run_now: bool) -> str:
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("schedule created", schedule_id=schedule_id)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(replace)
        log.info("schedule updated", schedule_id=schedule_id)
    if run_now:
        await client.get_schedule_handle(schedule_id).trigger()  # overlap policy: skipped if running
    return schedule_id
