"""A run of a schedule (source ``schedule``): claim it, open its thread, report how it ended.

A Temporal Schedule starts the task with the creator as requester, so the run is theirs: the
claim (``schedules.claim_run``) takes it against their quota and rate limits like any request,
and refuses it when the schedule was deleted meanwhile. A run that goes ahead posts its first
message in the channel and works in that message's thread, like any task thread. When it ends,
``schedules.run_finished`` records the outcome on the schedule, which pauses after too many
failures in a row; the owner is told once, in a DM.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from capabilities.proactive.activities.schedules import ScheduleActivities
    from capabilities.task.activities.slack import SlackActivities
from capabilities.proactive.contracts.schedules import RunClaim, RunOutcome, RunOutcomeKind, ScheduledRun
from capabilities.task.contracts.task import TaskInput, TaskState
from capabilities.task.workflow import options
from capabilities.task.workflow.posting import post
from lucy.contracts.ids import TaskStatus, idempotency_key
from lucy.contracts.slack import PostMessageRequest
from lucy.slack.text import escape_mrkdwn

_SCHEDULED_AT = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


def is_scheduled(task: TaskInput) -> bool:
    return bool(task.schedule_id)


async def open_run(task: TaskInput, state: TaskState) -> RunClaim:
    """Claim the run; tell the channel (once) why not, or open the run's own thread."""
    info = workflow.info()
    # Temporal sets when the schedule meant this run to start; a first step much later means
    # Lucy's workers were down at the time.
    due = info.typed_search_attributes.get(_SCHEDULED_AT) or info.start_time
    late = max(0, int((workflow.now() - due).total_seconds()))
    claim = await workflow.execute_activity_method(
        ScheduleActivities.claim_run,
        ScheduledRun(
            schedule_id=task.schedule_id,
            workflow_id=info.workflow_id,
            workspace_id=task.workspace_id,
            slack_team_id=task.slack_team_id,
            slack_user_id=task.slack_user_id,
            slack_channel_id=task.slack_channel_id,
            text=task.text,
            scheduled_at=due.isoformat(timespec="minutes"),
            late_seconds=late,
        ),
        start_to_close_timeout=options.RECORD_TIMEOUT,
        schedule_to_close_timeout=options.RECORD_DEADLINE,
        retry_policy=options.RECORD_RETRY,
        summary="schedule: claim this run",
    )
    if not claim.run:
        if claim.notice:
            await post(
                task,
                state,
                claim.notice,
                step="schedule-notice",
                summary="slack: why it did not run",
                format=False,
            )
        return claim
    header = f":alarm_clock: Scheduled: *{escape_mrkdwn(claim.name)}*\n>{escape_mrkdwn(task.text)}"
    root = await post(
        task, state, header, step="schedule-run", summary="slack: open the run's thread", format=False
    )
    state.thread_ts = root or ""
    return claim


_OUTCOMES = {
    TaskStatus.COMPLETED: RunOutcomeKind.COMPLETED,
    TaskStatus.CANCELLED: RunOutcomeKind.CANCELLED,
}


async def close_run(task: TaskInput, final: TaskStatus) -> None:
    """Record how the run ended on its schedule; tell the owner if that paused it."""
    info = workflow.info()
    recorded = await workflow.execute_activity_method(
        ScheduleActivities.run_finished,
        RunOutcome(
            schedule_id=task.schedule_id,
            workspace_id=task.workspace_id,
            workflow_id=info.workflow_id,
            outcome=_OUTCOMES.get(final, RunOutcomeKind.FAILED).value,
            finished_at=workflow.now().isoformat(),
        ),
        start_to_close_timeout=options.RECORD_TIMEOUT,
        schedule_to_close_timeout=options.RECORD_DEADLINE,
        retry_policy=options.RECORD_RETRY,
        summary="schedule: record this run",
    )
    if recorded.notice and recorded.owner_slack_id:
        await workflow.execute_activity_method(
            SlackActivities.post_message,
            PostMessageRequest(
                channel=recorded.owner_slack_id,  # a user id: Slack posts it in the DM with Lucy
                text=recorded.notice,
                thread_ts=None,
                idempotency_key=idempotency_key(info.workflow_id, "schedule-paused"),
                format=False,
            ),
            start_to_close_timeout=options.SLACK_TIMEOUT,
            schedule_to_close_timeout=options.SLACK_DEADLINE,
            retry_policy=options.SLACK_RETRY,
            summary="slack: tell the owner the schedule paused",
        )
