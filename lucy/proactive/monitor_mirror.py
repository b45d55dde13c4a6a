"""A monitor's Temporal half: the Temporal Schedule that fires ``LucyMonitorWorkflow``.

One ``monitors`` row, one Temporal Schedule (``lucy-heartbeat-<row id>``), every
``check_interval_seconds``. A probe that could not run on time is not worth running late, so the
catch-up window is one interval; overlapping probes are skipped. Pausing, resuming, deleting
and describing are the same as for schedules (:class:`~lucy.proactive.mirror.ScheduleMirror`).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from lucy.contracts import (
    MONITOR_WORKFLOW_NAME,
    SA_SCHEDULE,
    SA_SOURCE,
    SA_WORKSPACE,
    MonitorInput,
    TaskSource,
    monitor_workflow_id,
)
from lucy.db.repositories.monitors import MonitorRecord
from lucy.proactive.mirror import ScheduleMirror


def build_monitor_schedule(record: MonitorRecord, *, task_queue: str) -> Schedule:
    every = timedelta(seconds=record.every_seconds)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            MONITOR_WORKFLOW_NAME,
            MonitorInput(
                workspace_id=str(record.workspace_id),
                heartbeat_id=str(record.id),
                slack_team_id=record.slack_team_id,
            ),
            id=monitor_workflow_id(record.slack_team_id, str(record.id)),
            task_queue=task_queue,
            typed_search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(SA_WORKSPACE, record.slack_team_id),
                    SearchAttributePair(SA_SOURCE, TaskSource.MONITOR.value),
                    SearchAttributePair(SA_SCHEDULE, str(record.id)),
                ]
            ),
            static_summary=f"Lucy monitor {record.id} ({record.description})"[:200],
            execution_timeout=max(every, timedelta(minutes=5)),
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=every)], jitter=min(every / 10, timedelta(seconds=30))
        ),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP, catchup_window=max(every, timedelta(minutes=1))
        ),
        state=ScheduleState(
            paused=record.status != "active",
            note=(record.error_reason or record.status) if record.status != "active" else "",
        ),
    )


class MonitorMirror(ScheduleMirror):
    """Applies monitor rows to Temporal."""

    async def put_monitor(self, record: MonitorRecord) -> None:
        """Create the Temporal Schedule, or bring an existing one in line with the row."""
        schedule = build_monitor_schedule(record, task_queue=self._task_queue)
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
