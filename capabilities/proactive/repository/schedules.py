"""Schedules: the business half of a recurring task (its Temporal Schedule is the other half).

Every write is idempotent: a row is created under the id chosen when the confirmation was
shown (a double click creates it once), and a run's outcome is counted once per workflow id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from capabilities.proactive.contracts.schedules import Recurrence, RunOutcomeKind
from capabilities.proactive.repository import standing
from capabilities.proactive.repository.standing import StandingRecord, common_fields
from lucy.contracts.ids import schedule_id_of
from lucy.db.models import Schedule


@dataclass(frozen=True)
class ScheduleRecord(StandingRecord):
    """A schedule with the Slack ids its Temporal Schedule and its messages need."""

    request_text: str
    recurrence: Recurrence
    is_active: bool
    paused_reason: str | None
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_outcome: str | None
    last_workflow_id: str | None
    consecutive_failures: int
    missed_runs: int
    config: dict[str, Any]

    @property
    def temporal_id(self) -> str:
        return schedule_id_of(str(self.id))


def _record(row: Any) -> ScheduleRecord:
    s: Schedule = row.Schedule
    return ScheduleRecord(
        **common_fields(row, s),
        request_text=s.intent_template,
        recurrence=Recurrence(
            text=str(s.config.get("when", "")),
            cron=s.cron_expression,
            every_seconds=s.every_seconds,
            timezone=s.timezone,
            description=s.description,
        ),
        is_active=s.is_active,
        paused_reason=s.paused_reason,
        next_run_at=s.next_run_at,
        last_run_at=s.last_run_at,
        last_outcome=s.last_outcome,
        last_workflow_id=s.last_workflow_id,
        consecutive_failures=s.consecutive_failures,
        missed_runs=s.missed_runs,
        config=dict(s.config),
    )


async def create_schedule(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    schedule_id: uuid.UUID,
    owner_id: uuid.UUID,
    channel_id: uuid.UUID,
    name: str,
    request_text: str,
    recurrence: Recurrence,
    config: dict[str, Any],
) -> bool:
    """Create the row under ``schedule_id``; False when it exists already (a second click)."""
    values = {
        "id": schedule_id,
        "workspace_id": workspace_id,
        "created_by": owner_id,
        "channel_id": channel_id,
        "name": name[:255],
        "cron_expression": recurrence.cron,
        "every_seconds": recurrence.every_seconds,
        "timezone": recurrence.timezone,
        "description": recurrence.description,
        "intent_template": request_text,
        "temporal_schedule_id": schedule_id_of(str(schedule_id)),
        "config": {**config, "when": recurrence.text},
    }
    return await standing.insert_once(session=session, model=Schedule, values=values)


STORE = standing.Store(Schedule, _record)


async def count_live_schedules(*, session: AsyncSession, workspace_id: uuid.UUID) -> int:
    return await STORE.count_live(session, workspace_id)


async def get_schedule(
    *, session: AsyncSession, workspace_id: uuid.UUID, schedule_id: uuid.UUID
) -> ScheduleRecord | None:
    return await STORE.get(session, workspace_id, schedule_id)


async def list_schedules(
    *, session: AsyncSession, workspace_id: uuid.UUID, owner_id: uuid.UUID | None = None
) -> list[ScheduleRecord]:
    """The workspace's live rows (``owner_id``: only theirs), oldest first."""
    return await STORE.list(session, workspace_id, owner_id)


async def set_schedule_active(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    schedule_id: uuid.UUID,
    active: bool,
    reason: str | None = None,
) -> None:
    """Pause (with a reason) or resume; resuming forgets the failures that paused it."""
    values: dict[str, Any] = {"is_active": active, "paused_reason": None if active else reason}
    if active:
        values["consecutive_failures"] = 0
    await standing.set_values(
        session=session, model=Schedule, workspace_id=workspace_id, row_id=schedule_id, **values
    )


async def delete_schedule(*, session: AsyncSession, workspace_id: uuid.UUID, schedule_id: uuid.UUID) -> None:
    """Soft-delete: the row stays for the record; its Temporal Schedule goes."""
    await standing.soft_delete(
        session=session, model=Schedule, workspace_id=workspace_id, row_id=schedule_id, is_active=False
    )


async def set_next_run(
    *, session: AsyncSession, workspace_id: uuid.UUID, schedule_id: uuid.UUID, next_run_at: datetime | None
) -> None:
    await session.execute(
        update(Schedule)
        .where(Schedule.workspace_id == workspace_id, Schedule.id == schedule_id)
        .values(next_run_at=next_run_at)
    )


async def record_run(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    schedule_id: uuid.UUID,
    workflow_id: str,
    outcome: str,
    finished_at: datetime,
    pause_after: int,
) -> tuple[bool, ScheduleRecord | None]:
    """Count one run's outcome (once per workflow id). Returns (this run paused the schedule,
    the schedule). A failure that reaches ``pause_after`` in a row pauses it."""
    failed = outcome == RunOutcomeKind.FAILED.value
    failures = (
        Schedule.consecutive_failures + 1
        if failed
        else (0 if outcome == RunOutcomeKind.COMPLETED.value else Schedule.consecutive_failures)
    )
    reason = f"paused after {pause_after} failed runs in a row"
    stmt = (
        update(Schedule)
        .where(
            Schedule.workspace_id == workspace_id,
            Schedule.id == schedule_id,
            Schedule.last_workflow_id.is_distinct_from(workflow_id),
        )
        .values(
            last_run_at=finished_at,
            last_outcome=outcome,
            last_workflow_id=workflow_id,
            consecutive_failures=failures,
            updated_at=func.now(),
        )
        .returning(Schedule.consecutive_failures, Schedule.is_active, Schedule.deleted_at)
    )
    counted = (await session.execute(stmt)).one_or_none()
    if counted is not None and failed and counted.consecutive_failures >= pause_after and counted.is_active:
        if counted.deleted_at is None:
            await set_schedule_active(
                session=session,
                workspace_id=workspace_id,
                schedule_id=schedule_id,
                active=False,
                reason=reason,
            )
    record = await get_schedule(session=session, workspace_id=workspace_id, schedule_id=schedule_id)
    # Paused by this run (also true for a retry of the activity that did it).
    paused = (
        record is not None
        and not record.is_active
        and record.paused_reason == reason
        and record.last_workflow_id == workflow_id
    )
    return paused, record


async def claim_quota_notice(
    *, session: AsyncSession, workspace_id: uuid.UUID, schedule_id: uuid.UUID, month: date, workflow_id: str
) -> bool:
    """Whether this refused run should tell the channel: the first refused run of the month
    (and a retry of that same run) does, later ones do not."""
    stmt = (
        update(Schedule)
        .where(
            Schedule.workspace_id == workspace_id,
            Schedule.id == schedule_id,
            Schedule.quota_notice_month.is_distinct_from(month) | (Schedule.last_workflow_id == workflow_id),
        )
        .values(
            quota_notice_month=month, last_workflow_id=workflow_id, last_outcome=RunOutcomeKind.REFUSED.value
        )
        .returning(Schedule.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def record_missed(
    *, session: AsyncSession, workspace_id: uuid.UUID, schedule_id: uuid.UUID, missed_total: int
) -> int:
    """Remember how many runs Temporal has missed in all (beyond the catch-up window); returns
    how many are new since the last report (0: nothing to say). The write is guarded by the
    value read, so two reporters never both report the same misses."""
    current = (
        await session.execute(
            select(Schedule.missed_runs).where(
                Schedule.workspace_id == workspace_id, Schedule.id == schedule_id
            )
        )
    ).scalar_one_or_none()
    if current is None or missed_total <= current:
        return 0
    won = await session.execute(
        update(Schedule)
        .where(
            Schedule.workspace_id == workspace_id, Schedule.id == schedule_id, Schedule.missed_runs == current
        )
        .values(missed_runs=missed_total)
        .returning(Schedule.id)
    )
    return missed_total - current if won.scalar_one_or_none() is not None else 0


async def live_schedules(*, session: AsyncSession) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(workspace id, schedule id) of every live schedule, across tenants (``lucy_live_schedules``)."""
    return await standing.live_ids(session=session, function="lucy_live_schedules", column="schedule_id")


MAX_BACKFILL_WINDOWS = 5


async def add_backfill_window(
    *, session: AsyncSession, workspace_id: uuid.UUID, schedule_id: uuid.UUID, start: datetime, end: datetime
) -> None:
    """Remember a backfilled window (the last few): its fires are late on purpose, so the run's
    claim lets them run instead of reporting them as missed."""
    current = (
        await session.execute(
            select(Schedule.config).where(Schedule.workspace_id == workspace_id, Schedule.id == schedule_id)
        )
    ).scalar_one_or_none()
    if current is None:
        return
    windows = [*current.get("backfills", []), [start.isoformat(), end.isoformat()]][-MAX_BACKFILL_WINDOWS:]
    await session.execute(
        update(Schedule)
        .where(Schedule.workspace_id == workspace_id, Schedule.id == schedule_id)
        .values(config={**current, "backfills": windows}, updated_at=func.now())
    )


def in_backfill(config: dict[str, Any], at: datetime) -> bool:
    """Whether a fire due ``at`` lies in a window someone backfilled."""
    for window in config.get("backfills", []):
        try:
            start, end = (datetime.fromisoformat(w) for w in window)
        except (TypeError, ValueError):
            continue
        if start <= at <= end:
            return True
    return False
