"""The Temporal Schedules Lucy keeps on its namespace (what cron used to do): ``lucy-maintenance``
and the weekly ``lucy-patterns`` (recurring requests).

People's schedules are :mod:`capabilities.proactive`. ``ensure_maintenance_schedule`` is idempotent: it
creates the ``lucy-maintenance`` schedule, or updates its spec and action if it exists, so
every worker start converges on the same one.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client, Schedule, ScheduleIntervalSpec, ScheduleSpec

from capabilities.proactive.contracts.maintenance import MaintenanceInput
from capabilities.proactive.contracts.patterns import PatternScan
from lucy.contracts.ids import (
    MAINTENANCE_SCHEDULE_ID,
    MAINTENANCE_WORKFLOW_NAME,
    PATTERNS_SCHEDULE_ID,
    PATTERNS_WORKFLOW_NAME,
)
from lucy.temporal import ensure_schedule, recurring_schedule

MAINTENANCE_EVERY = timedelta(minutes=15)
PATTERNS_EVERY = timedelta(days=7)


def _every(every: timedelta) -> ScheduleSpec:
    return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)])


def maintenance_schedule(task_queue: str, *, every: timedelta = MAINTENANCE_EVERY) -> Schedule:
    return recurring_schedule(
        MAINTENANCE_WORKFLOW_NAME,
        MaintenanceInput(),
        schedule_id=MAINTENANCE_SCHEDULE_ID,
        task_queue=task_queue,
        spec=_every(every),
        summary="Lucy maintenance: partitions, orphaned claims, schedules reconciled",
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
    return await ensure_schedule(
        client, schedule_id, maintenance_schedule(task_queue, every=every), run_now=run_now
    )


def patterns_schedule(task_queue: str, *, every: timedelta = PATTERNS_EVERY) -> Schedule:
    """The weekly scan for recurring requests (``LucyPatternsWorkflow``)."""
    return recurring_schedule(
        PATTERNS_WORKFLOW_NAME,
        PatternScan(),
        schedule_id=PATTERNS_SCHEDULE_ID,
        task_queue=task_queue,
        spec=_every(every),
        summary="Lucy patterns: recurring requests found, each offered once as a schedule",
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
    return await ensure_schedule(client, schedule_id, patterns_schedule(task_queue, every=every))
