"""Creating and changing schedules for a person: a schedule's rows, its limit, its backfill.

The rules every standing job follows (who may create and change one, the audit, the row before
its Temporal Schedule) are :mod:`capabilities.proactive.standing`'s.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from capabilities.proactive import recurrence
from capabilities.proactive.contracts.schedules import Recurrence, ScheduleOverlap, StandingAction
from capabilities.proactive.repository import schedules as rows
from capabilities.proactive.repository.schedules import ScheduleRecord
from capabilities.proactive.standing import Caller, NewRow, ScheduleRefused, StandingService, audit
from lucy.db.repositories.tenants import get_workspace, tenant_transaction
from lucy.logging import get_logger

log = get_logger(__name__)

DEFAULT_POLICY = {
    "overlap": ScheduleOverlap.SKIP.value,
    "catchup_window_seconds": 3600,
    "pause_after_failures": 3,
}
MAX_BACKFILL = timedelta(days=31)
MAX_BACKFILL_RUNS = 50


@dataclass(frozen=True)
class ScheduleDraft:
    """What the confirmation showed, carried by its Create button; re-checked on the click."""

    schedule_id: str  # chosen when the confirmation is shown: a second click creates nothing
    when: str
    timezone: str
    request: str
    slack_channel_id: str
    channel_type: str = "public"


def draft_recurrence(draft: ScheduleDraft, *, min_interval: timedelta, now: datetime) -> Recurrence:
    return recurrence.parse(draft.when, timezone=draft.timezone, min_interval=min_interval, now=now)


def schedule_name(request: str) -> str:
    words = " ".join(request.split())
    return words if len(words) <= 60 else words[:59] + "…"


class ScheduleService(StandingService[ScheduleRecord]):
    noun = "schedule"
    over_limit_hint = ", or ask an admin to raise the limit"
    store = rows.STORE

    async def create(self, draft: ScheduleDraft, caller: Caller, *, request_key: str) -> ScheduleRecord:
        """Create the schedule the confirmation showed (idempotent: the draft's id).

        Raises:
            ScheduleRefused: a guest, the workspace's schedule limit, or a "when" that no longer
                parses (the minimum interval changed since the confirmation).
        """
        self.refuse_guest(caller)
        try:
            when = draft_recurrence(draft, min_interval=self._min_interval, now=datetime.now(UTC))
        except recurrence.RecurrenceError as err:
            raise ScheduleRefused(str(err)) from None
        schedule_id = uuid.UUID(draft.schedule_id)

        values = {
            "schedule_id": schedule_id,
            "name": schedule_name(draft.request),
            "request_text": draft.request,
            "recurrence": when,
            "config": dict(DEFAULT_POLICY),
        }
        new = NewRow(
            schedule_id,
            draft.slack_channel_id,
            draft.channel_type,
            rows.create_schedule,
            values,
            {"when": when.text},
        )
        record = await self._create(caller, new, request_key=request_key)
        await self._note_next_run(record)
        log.info("schedule created", schedule_id=str(schedule_id), workspace_id=str(record.workspace_id))
        return record

    async def _live_and_limit(self, session: AsyncSession, workspace_id: uuid.UUID) -> tuple[int, int]:
        workspace = await get_workspace(session=session, workspace_id=workspace_id)
        limit = workspace.max_schedules if workspace else 10
        return await rows.count_live_schedules(session=session, workspace_id=workspace_id), limit

    async def _store_change(
        self, session: AsyncSession, record: ScheduleRecord, action: StandingAction, caller: Caller
    ) -> None:
        ws, schedule_id = record.workspace_id, record.id
        if action == StandingAction.PAUSE:
            reason = f"paused by <@{caller.slack_user_id}>"
            await rows.set_schedule_active(
                session=session, workspace_id=ws, schedule_id=schedule_id, active=False, reason=reason
            )
        elif action == StandingAction.RESUME:
            await rows.set_schedule_active(
                session=session, workspace_id=ws, schedule_id=schedule_id, active=True
            )
        elif action == StandingAction.DELETE:
            await rows.delete_schedule(session=session, workspace_id=ws, schedule_id=schedule_id)

    async def _after_change(self, record: ScheduleRecord) -> None:
        await self._note_next_run(record)

    async def backfill(
        self, schedule_id: str, start: datetime, end: datetime, caller: Caller, *, request_key: str
    ) -> tuple[ScheduleRecord, int]:
        """Run again the fires the schedule had between ``start`` and ``end`` (a missed window),
        for the owner or an admin. Returns the schedule and how many fires the window holds.

        Raises:
            ScheduleRefused: not theirs, a window in the future, backwards or too long, or empty.
        """
        record = await self._changeable(schedule_id, caller)
        if not start < end <= datetime.now(UTC) + timedelta(minutes=1):
            raise ScheduleRefused("The window must start before it ends, and end now or earlier.")
        if end - start > MAX_BACKFILL:
            raise ScheduleRefused(f"A backfill covers at most {MAX_BACKFILL.days} days at once.")
        fires = recurrence.runs_between(record.recurrence, start, end, limit=MAX_BACKFILL_RUNS + 1)
        if not fires:
            raise ScheduleRefused("No run of that schedule was due in that window.")
        if len(fires) > MAX_BACKFILL_RUNS:
            raise ScheduleRefused(
                f"That window holds more than {MAX_BACKFILL_RUNS} runs; choose a shorter one."
            )
        async with tenant_transaction(self._sessions, record.workspace_id) as session:
            await rows.add_backfill_window(
                session=session, workspace_id=record.workspace_id, schedule_id=record.id, start=start, end=end
            )
            window = f"{start.isoformat()} to {end.isoformat()}"
            await audit(
                session,
                record.workspace_id,
                caller,
                "schedule.backfill",
                record.id,
                request_key,
                window=window,
            )
        await self._mirror.backfill(record.temporal_id, start, end)
        return record, len(fires)

    async def _note_next_run(self, record: ScheduleRecord) -> None:
        facts = await self._mirror.facts(record.temporal_id)
        async with tenant_transaction(self._sessions, record.workspace_id) as session:
            await rows.set_next_run(
                session=session,
                workspace_id=record.workspace_id,
                schedule_id=record.id,
                next_run_at=facts.next_run_at if facts and not facts.paused else None,
            )
