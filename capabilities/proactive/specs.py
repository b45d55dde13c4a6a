"""What each kind of standing job asks Temporal to do: its Temporal Schedule.

A schedule's fires start ``LucyTaskWorkflow`` with source ``schedule`` and the creator as
requester; Temporal appends the scheduled time to the run's workflow id, so one fire never runs
twice. A monitor's fires start ``LucyMonitorWorkflow`` every ``check_interval_seconds``; a probe
that could not run on time is not worth running late, so its catch-up window is one interval and
overlapping probes are skipped. :class:`~capabilities.proactive.mirror.StandingMirror` applies either.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from capabilities.proactive.contracts.monitors import MonitorInput
from capabilities.proactive.contracts.schedules import ScheduleOverlap
from capabilities.proactive.repository.monitors import MonitorRecord
from capabilities.proactive.repository.schedules import ScheduleRecord
from capabilities.task.contracts.task import TaskInput
from lucy.contracts.ids import (
    MONITOR_WORKFLOW_NAME,
    SA_SCHEDULE,
    SA_SOURCE,
    SA_WORKSPACE,
    TASK_WORKFLOW_NAME,
    TaskSource,
    monitor_workflow_id,
    scheduled_workflow_id,
    task_search_attributes,
)
from lucy.contracts.priority import task_priority

MAX_JITTER = timedelta(seconds=30)  # spreads schedules that share a minute


def build(record: ScheduleRecord | MonitorRecord, *, task_queue: str) -> Schedule:
    """The Temporal Schedule of a standing job, by its kind."""
    if isinstance(record, MonitorRecord):
        return build_monitor_schedule(record, task_queue=task_queue)
    return build_schedule(record, task_queue=task_queue)


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
            typed_search_attributes=task_search_attributes(
                team=record.slack_team_id,
                user=record.owner_slack_id,
                channel=record.slack_channel_id,
                thread="none",
                source=TaskSource.SCHEDULE.value,
                more=(SearchAttributePair(SA_SCHEDULE, str(record.id)),),
            ),
            static_summary=f"Lucy schedule {record.id} ({r.description})"[:200],
            priority=task_priority(TaskSource.SCHEDULE, record.slack_team_id),
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
            priority=task_priority(TaskSource.MONITOR, record.slack_team_id),
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
