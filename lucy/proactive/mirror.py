"""A schedule row's Temporal half: the Temporal Schedule that fires its runs.

One row, one Temporal Schedule (``lucy-schedule-<row id>``). Every operation here is idempotent
(create-or-update, delete-if-there), because ingress, the worker at start and the maintenance
reconciler may all apply the same row. Each fire starts ``LucyTaskWorkflow`` with source
``schedule`` and the creator as requester; Temporal appends the scheduled time to the run's
workflow id, so one fire never runs twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from lucy.contracts import (
    SA_CHANNEL,
    SA_SCHEDULE,
    SA_SOURCE,
    SA_STATUS,
    SA_THREAD,
    SA_USER,
    SA_WORKSPACE,
    TASK_WORKFLOW_NAME,
    TaskInput,
    TaskSource,
    TaskStatus,
    scheduled_workflow_id,
)
from lucy.contracts.schedules import ScheduleOverlap
from lucy.db.repositories.schedules import ScheduleRecord

MAX_JITTER = timedelta(seconds=30)  # spreads schedules that share a minute


@dataclass(frozen=True)
class ScheduleFacts:
    """What Temporal says about a schedule: when it runs next, and runs it had to miss."""

    next_run_at: datetime | None
    missed: int  # fires missed beyond the catch-up window (a worker or the cluster was down)
    paused: bool


def build_schedule(record: ScheduleRecord, *, task_queue: str) -> Schedule:
    """The Temporal Schedule for a row: its spec, its policies and the task each fire starts."""
    r = record.recurrence
    config = record.config
    task = TaskInput(
        workspace_id=str(record.workspace_id),
        user_id=str(record.owner_id or ""),
        channel_id=str(record.channel_id or ""),
        slack_team_id=record.slack_team_id,
        slack_user_id=record.owner_slack_id,
        slack_channel_id=record.slack_channel_id,
        thread_ts="",  # each run opens its own thread in the channel
        message_ts="",
        text=record.request_text,
        source=TaskSource.SCHEDULE.value,
        schedule_id=str(record.id),
    )
    every = timedelta(seconds=r.every_seconds) if r.every_seconds else None
    jitter = min(MAX_JITTER, every / 10) if every else MAX_JITTER
    overlap = (
        ScheduleOverlapPolicy.BUFFER_ONE
        if config.get("overlap") == ScheduleOverlap.BUFFER_ONE.value
        else ScheduleOverlapPolicy.SKIP
    )
    return Schedule(
        action=ScheduleActionStartWorkflow(
            TASK_WORKFLOW_NAME,
            task,
            id=scheduled_workflow_id(record.slack_team_id, record.slack_channel_id, str(record.id)),
            task_queue=task_queue,
            typed_search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(SA_WORKSPACE, record.slack_team_id),
                    SearchAttributePair(SA_USER, record.owner_slack_id),
                    SearchAttributePair(SA_CHANNEL, record.slack_channel_id),
                    SearchAttributePair(SA_THREAD, "none"),
                    SearchAttributePair(SA_SOURCE, TaskSource.SCHEDULE.value),
                    SearchAttributePair(SA_STATUS, TaskStatus.CREATED.value),
                    SearchAttributePair(SA_SCHEDULE, str(record.id)),
                ]
            ),
            static_summary=f"Lucy schedule {record.id} ({r.description})"[:200],
        ),
        spec=ScheduleSpec(
            cron_expressions=[r.cron] if r.cron else [],
            intervals=[ScheduleIntervalSpec(every=every)] if every else [],
            time_zone_name=r.timezone,
            jitter=jitter,
        ),
        policy=SchedulePolicy(
            overlap=overlap,
            catchup_window=timedelta(seconds=int(config.get("catchup_window_seconds", 3600))),
        ),
        state=ScheduleState(
            paused=not record.is_active,
            note=(record.paused_reason or "paused") if not record.is_active else "",
        ),
    )


class ScheduleMirror:
    """Applies schedule rows to Temporal (the client's data converter seals the task input)."""

    def __init__(self, client: Client, *, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    async def put(self, record: ScheduleRecord) -> None:
        """Create the Temporal Schedule, or bring an existing one in line with the row."""
        schedule = build_schedule(record, task_queue=self._task_queue)
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
        return ScheduleFacts(
            next_run_at=times[0] if times else None,
            missed=desc.info.num_actions_missed_catchup_window,
            paused=desc.schedule.state.paused,
        )

    async def listed_ids(self) -> set[str]:
        """The id of every Temporal Schedule in the namespace (one listing; the reconcilers pick
        theirs: ``lucy-schedule-*`` and ``lucy-heartbeat-*``)."""
        return {listed.id async for listed in await self._client.list_schedules()}
