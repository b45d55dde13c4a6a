"""Schedule activities: claim a scheduled run, record how it ended, reconcile with Temporal.

``claim_run`` takes a fire against the creator's quota and limits with the same database
function as ingress (so a scheduled run counts like any request), and refuses a fire that
arrives after the schedule was paused or deleted, or so late (Lucy's workers were down) that it
is past the schedule's catch-up window: that one is reported, not run. ``run_finished`` counts
failures in a row and pauses the schedule (both halves) when there are too many.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from capabilities.budgets.rules import defaults_from
from capabilities.proactive.activities import standing
from capabilities.proactive.contracts.schedules import (
    ChannelNotice,
    RunClaim,
    RunOutcome,
    RunRecorded,
    ScheduledRun,
    SchedulesReconciled,
)
from capabilities.proactive.mirror import StandingMirror
from capabilities.proactive.reconcile import reconcile, reconcile_monitors
from capabilities.proactive.repository import schedules as rows
from capabilities.proactive.repository.schedules import ScheduleRecord
from capabilities.task.repository import IngressClaim, record_task_running
from lucy.db.repositories.tenants import tenant_transaction
from lucy.logging import get_logger
from lucy.settings import BudgetSettings, LimitSettings
from lucy.slack.text import escape_mrkdwn

log = get_logger(__name__)


class ScheduleActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        mirror: StandingMirror,
        limits: LimitSettings,
        budgets: BudgetSettings | None = None,
    ) -> None:
        self._sessions = sessions
        self._mirror = mirror
        self._limits = limits
        self._budgets = defaults_from(budgets or BudgetSettings())

    @activity.defn(name="schedules.claim_run")
    async def claim_run(self, run: ScheduledRun) -> RunClaim:
        """Whether this fire runs; if not, what to tell the channel (once)."""
        workspace_id, schedule_id = uuid.UUID(run.workspace_id), uuid.UUID(run.schedule_id)
        fire = _fire(run)
        async with tenant_transaction(self._sessions, workspace_id) as session:
            record = await rows.get_schedule(
                session=session, workspace_id=workspace_id, schedule_id=schedule_id
            )
            if record is None or not record.is_active:
                log.info("fire of a deleted or paused schedule not run", schedule_id=run.schedule_id)
                return RunClaim(run=False)
            late = run.late_seconds - int(record.config.get("catchup_window_seconds", 3600))
            if late > 0 and not _backfilled(record.config, run.scheduled_at):
                return await _missed(session, run, fire, record)
            claim = await standing.claim_fire(session, fire, self._limits)
            if claim.workspace_id is None:
                return RunClaim(run=False)
            if not claim.claimed:
                again = await standing.claim_still_stands(session, fire) and not claim.prior_error
                return RunClaim(run=again, name=record.name)
            return await self._refused_or_run(session, run, fire, record, claim)

    async def _refused_or_run(
        self,
        session: AsyncSession,
        run: ScheduledRun,
        fire: standing.Fire,
        record: ScheduleRecord,
        claim: IngressClaim,
    ) -> RunClaim:
        """A claimed fire runs unless the owner's budgets, the quota or the rate limits refuse it;
        a refusal tells the channel (a quota or budget refusal, once a month)."""
        name = escape_mrkdwn(record.name)
        if claim.refused is None:
            words = await standing.budget_refusal(session, fire, claim, self._budgets)
            if words is None:
                return RunClaim(run=True, name=record.name)
            await standing.record_refused(session, fire, "Refused", words)
            first = await _first_notice_this_month(session, run)
            return RunClaim(
                run=False,
                name=record.name,
                notice=f":warning: *{name}* did not run: {words}" if first else "",
            )
        await standing.record_refused(session, fire, "Refused", claim.refused)
        if claim.refused != "quota":
            return RunClaim(
                run=False,
                name=record.name,
                notice=f"I skipped this run of *{name}*: too many requests at once. It runs next time.",
            )
        first = await _first_notice_this_month(session, run)
        notice = (
            f":warning: *{name}* did not run: this workspace has used all {claim.quota_limit} of this "
            "month's Lucy tasks. I won't repeat this notice this month; an admin can raise the limit."
        )
        return RunClaim(run=False, name=record.name, notice=notice if first else "")

    @activity.defn(name="schedules.run_finished")
    async def run_finished(self, outcome: RunOutcome) -> RunRecorded:
        """Count the run's outcome once; pause the schedule after too many failures in a row."""
        workspace_id, schedule_id = uuid.UUID(outcome.workspace_id), uuid.UUID(outcome.schedule_id)
        async with tenant_transaction(self._sessions, workspace_id) as session:
            current = await rows.get_schedule(
                session=session, workspace_id=workspace_id, schedule_id=schedule_id
            )
            if current is None:
                return RunRecorded(paused=False)
            pause_after = int(current.config.get("pause_after_failures", 3))
            paused, record = await rows.record_run(
                session=session,
                workspace_id=workspace_id,
                schedule_id=schedule_id,
                workflow_id=outcome.workflow_id,
                outcome=outcome.outcome,
                finished_at=datetime.fromisoformat(outcome.finished_at),
                pause_after=pause_after,
            )
        if not paused or record is None:
            return RunRecorded(paused=False)
        await self._mirror.pause(record.temporal_id, record.paused_reason or "paused after failures")
        log.info("schedule paused after failed runs", schedule_id=outcome.schedule_id)
        return RunRecorded(
            paused=True,
            owner_slack_id=record.owner_slack_id,
            notice=(
                f":pause_button: I paused your schedule *{escape_mrkdwn(record.name)}* "
                f"({escape_mrkdwn(record.recurrence.description)}): its last {pause_after} runs failed. "
                "Resume it from `/lucy schedules` once the cause is fixed."
            ),
        )

    @activity.defn(name="schedules.reconcile")
    async def reconcile(self, _: None = None) -> SchedulesReconciled:
        """Rows and Temporal Schedules (schedules and monitors) in line; the channels to tell
        about missed runs."""
        listed = await self._mirror.listed_ids()  # one listing for both reconcilers
        done = await reconcile(self._sessions, self._mirror, listed=listed)
        monitors = await reconcile_monitors(self._sessions, self._mirror, listed=listed)
        notices = [
            ChannelNotice(
                channel=record.slack_channel_id,
                text=(
                    f":warning: *{escape_mrkdwn(record.name)}* missed {missed} scheduled run(s): Temporal "
                    "could not start them within the catch-up window. Use *Run now* in `/lucy schedules` "
                    "to run it now."
                ),
                key=f"schedule-missed:{record.id}:{record.missed_runs + missed}",
            )
            for record, missed in done.missed
        ]
        return SchedulesReconciled(
            recreated=len(done.recreated) + len(monitors.recreated),
            resynced=len(done.resynced) + len(monitors.resynced),
            deleted=len(done.deleted) + len(monitors.deleted),
            notices=notices,
        )


def _backfilled(config: dict[str, object], scheduled_at: str) -> bool:
    try:
        due = datetime.fromisoformat(scheduled_at)
    except ValueError:
        return False
    return rows.in_backfill(dict(config), due)


def _fire(run: ScheduledRun) -> standing.Fire:
    return standing.Fire(
        workspace_id=uuid.UUID(run.workspace_id),
        workflow_id=run.workflow_id,
        slack_team_id=run.slack_team_id,
        slack_user_id=run.slack_user_id,
        slack_channel_id=run.slack_channel_id,
        source="schedule",
        request_text=run.text,
    )


async def _missed(
    session: AsyncSession, run: ScheduledRun, fire: standing.Fire, record: ScheduleRecord
) -> RunClaim:
    """A fire past the catch-up window (Lucy was not running): its record, not a run, and a notice."""
    await record_task_running(  # the record of a fire that did not run
        session=session,
        workspace_id=fire.workspace_id,
        workflow_id=run.workflow_id,
        run_id="",
        requester_id=record.owner_id,
        channel_id=record.channel_id,
        source="schedule",
        request_text=run.text,
        slack_channel_id=run.slack_channel_id,
        slack_thread_ts="",
        started_at=datetime.now(UTC),
    )
    await standing.record_refused(
        session, fire, "Missed", f"due at {run.scheduled_at}, past the catch-up window"
    )
    return RunClaim(
        run=False,
        name=record.name,
        notice=(
            f":warning: I missed the run of *{escape_mrkdwn(record.name)}* due at {run.scheduled_at} "
            "(Lucy was not running then) and it is past the catch-up window, so I "
            "skipped it. Use *Run now* in `/lucy schedules` to run it."
        ),
    )


async def _first_notice_this_month(session: AsyncSession, run: ScheduledRun) -> bool:
    """Whether this refused run tells the channel: one notice per schedule per month."""
    return await rows.claim_quota_notice(
        session=session,
        workspace_id=uuid.UUID(run.workspace_id),
        schedule_id=uuid.UUID(run.schedule_id),
        month=datetime.now(UTC).date().replace(day=1),
        workflow_id=run.workflow_id,
    )
