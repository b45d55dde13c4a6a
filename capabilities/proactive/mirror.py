"""A standing job's Temporal half: the Temporal Schedule that fires its runs.

One row, one Temporal Schedule (``lucy-schedule-<row id>`` for a schedule, ``lucy-heartbeat-<row
id>`` for a monitor; :mod:`capabilities.proactive.specs` says what each fires). Every operation here is
idempotent (create-or-update, delete-if-there), because ingress, the worker at start and the
maintenance reconciler may all apply the same row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleOverlapPolicy,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from capabilities.proactive.repository.monitors import MonitorRecord
from capabilities.proactive.repository.schedules import ScheduleRecord
from capabilities.proactive.specs import build
from lucy.contracts.ids import SA_SCHEDULE, SA_WORKSPACE


@dataclass(frozen=True)
class ScheduleFacts:
    """What Temporal says about a schedule: when it runs next, and runs it had to miss."""

    next_run_at: datetime | None
    missed: int  # fires missed beyond the catch-up window (a worker or the cluster was down)
    paused: bool
    priority_key: int | None = None  # what its runs start with; None: none (made before priorities)


class StandingMirror:
    """Applies schedule and monitor rows to Temporal (the client's data converter seals the
    task input)."""

    def __init__(self, client: Client, *, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    async def put(self, record: ScheduleRecord | MonitorRecord) -> None:
        """Create the Temporal Schedule, or bring an existing one in line with the row."""
        schedule = build(record, task_queue=self._task_queue)
        attributes = TypedSearchAttributes(
            [
                SearchAttributePair(SA_WORKSPACE, record.slack_team_id),
                SearchAttributePair(SA_SCHEDULE, str(record.id)),
            ]
        )
        try:
            await self._client.create_schedule(record.temporal_id, schedule, search_attributes=attributes)
        except ScheduleAlreadyRunningError:

            def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=schedule)

            await self._client.get_schedule_handle(record.temporal_id).update(replace)

    async def pause(self, temporal_id: str, note: str) -> None:
        await self._client.get_schedule_handle(temporal_id).pause(note=note)

    async def resume(self, temporal_id: str, note: str) -> None:
        await self._client.get_schedule_handle(temporal_id).unpause(note=note)

    async def run_now(self, temporal_id: str) -> None:
        """One extra run now (the schedule's overlap policy still applies)."""
        await self._client.get_schedule_handle(temporal_id).trigger()

    async def backfill(self, temporal_id: str, start: datetime, end: datetime) -> None:
        """Run the fires the spec had between ``start`` and ``end`` (a missed window)."""
        await self._client.get_schedule_handle(temporal_id).backfill(
            ScheduleBackfill(start_at=start, end_at=end, overlap=ScheduleOverlapPolicy.ALLOW_ALL)
        )

    async def delete(self, temporal_id: str) -> bool:
        """Delete it; False when there was nothing to delete."""
        try:
            await self._client.get_schedule_handle(temporal_id).delete()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def facts(self, temporal_id: str) -> ScheduleFacts | None:
        """What Temporal knows about the schedule, or None when it does not exist."""
        try:
            desc = await self._client.get_schedule_handle(temporal_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        times = desc.info.next_action_times
        action = desc.schedule.action
        priority = action.priority if isinstance(action, ScheduleActionStartWorkflow) else None
        return ScheduleFacts(
            next_run_at=times[0] if times else None,
            missed=desc.info.num_actions_missed_catchup_window,
            paused=desc.schedule.state.paused,
            priority_key=priority.priority_key if priority else None,
        )

    async def listed_ids(self) -> set[str]:
        """The id of every Temporal Schedule in the namespace (one listing; the reconcilers pick
        theirs: ``lucy-schedule-*`` and ``lucy-heartbeat-*``)."""
        return {listed.id async for listed in await self._client.list_schedules()}
