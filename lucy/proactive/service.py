"""Creating and changing schedules for a person: the rules, the row, the Temporal Schedule, the audit.

Ingress calls this with who asked (Slack's signed payload says who; the role comes from
``users.info``). Only a schedule's owner or a workspace admin may change it; guests may not
create any. The row is written first and the Temporal Schedule second: if the second step
fails, the reconciler (worker start, maintenance) finishes it, because the row is the truth.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lucy.contracts.ids import idempotency_key
from lucy.contracts.schedules import Recurrence, ScheduleAction, ScheduleOverlap
from lucy.db import repositories as repo
from lucy.db.repositories import schedules as rows
from lucy.db.repositories.schedules import ScheduleRecord
from lucy.logging import get_logger
from lucy.proactive import recurrence
from lucy.proactive.mirror import StandingMirror
from lucy.roles import is_admin

log = get_logger(__name__)

DEFAULT_POLICY = {
    "overlap": ScheduleOverlap.SKIP.value,
    "catchup_window_seconds": 3600,
    "pause_after_failures": 3,
}
MAX_BACKFILL = timedelta(days=31)
MAX_BACKFILL_RUNS = 50


class ScheduleRefused(Exception):
    """A change the rules refuse; the message is for the person who asked, as is."""


@dataclass(frozen=True)
class Caller:
    """Who asks, as Slack vouches for them (signed payload) and ``users.info`` describes them."""

    slack_team_id: str
    slack_user_id: str
    role: str | None
    timezone: str = "UTC"


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


class ScheduleService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        mirror: StandingMirror,
        *,
        min_interval: timedelta,
    ) -> None:
        self._sessions = sessions
        self._mirror = mirror
        self._min_interval = min_interval

    async def create(self, draft: ScheduleDraft, caller: Caller, *, request_key: str) -> ScheduleRecord:
        """Create the schedule the confirmation showed (idempotent: the draft's id).

        Raises:
            ScheduleRefused: a guest, the workspace's schedule limit, or a "when" that no longer
                parses (the minimum interval changed since the confirmation).
        """
        if caller.role == "guest":
            raise ScheduleRefused("Guests can't create schedules. Ask a member of this workspace.")
        try:
            when = draft_recurrence(draft, min_interval=self._min_interval, now=datetime.now(UTC))
        except recurrence.RecurrenceError as err:
            raise ScheduleRefused(str(err)) from None
        schedule_id = uuid.UUID(draft.schedule_id)
        async with self._sessions.begin() as session:
            workspace_id = await repo.upsert_workspace(session=session, slack_team_id=caller.slack_team_id)
            record = await rows.get_schedule(
                session=session, workspace_id=workspace_id, schedule_id=schedule_id
            )
            if record is None:
                workspace = await repo.get_workspace(session=session, workspace_id=workspace_id)
                limit = workspace.max_schedules if workspace else 10
                if await rows.count_live_schedules(session=session, workspace_id=workspace_id) >= limit:
                    raise ScheduleRefused(
                        f"This workspace has {limit} schedules already, its limit. Delete one first "
                        "(`/lucy schedules`), or ask an admin to raise the limit."
                    )
                owner_id, channel_id = await owner_and_channel(
                    session, workspace_id, caller, draft.slack_channel_id, draft.channel_type
                )
                await rows.create_schedule(
                    session=session,
                    workspace_id=workspace_id,
                    schedule_id=schedule_id,
                    owner_id=owner_id,
                    channel_id=channel_id,
                    name=schedule_name(draft.request),
                    request_text=draft.request,
                    recurrence=when,
                    config=dict(DEFAULT_POLICY),
                )
                await audit(
                    session,
                    workspace_id,
                    caller,
                    "schedule.created",
                    schedule_id,
                    request_key,
                    when=when.text,
                )
                record = await rows.get_schedule(
                    session=session, workspace_id=workspace_id, schedule_id=schedule_id
                )
        assert record is not None
        await self._mirror.put(record)
        await self._note_next_run(record)
        log.info("schedule created", schedule_id=str(schedule_id), workspace_id=str(record.workspace_id))
        return record

    async def change(
        self, schedule_id: str, action: ScheduleAction, caller: Caller, *, request_key: str
    ) -> ScheduleRecord:
        """Pause, resume, run now or delete, for the owner or a workspace admin.

        Raises:
            ScheduleRefused: no such schedule in the caller's workspace, or not theirs to change.
        """
        record = await self._changeable(schedule_id, caller)
        note = f"{action.value} by {caller.slack_user_id}"
        async with self._sessions.begin() as session:
            await repo.set_tenant(session=session, workspace_id=record.workspace_id)
            if action == ScheduleAction.PAUSE:
                await rows.set_schedule_active(
                    session=session,
                    workspace_id=record.workspace_id,
                    schedule_id=record.id,
                    active=False,
                    reason=f"paused by <@{caller.slack_user_id}>",
                )
            elif action == ScheduleAction.RESUME:
                await rows.set_schedule_active(
                    session=session, workspace_id=record.workspace_id, schedule_id=record.id, active=True
                )
            elif action == ScheduleAction.DELETE:
                await rows.delete_schedule(
                    session=session, workspace_id=record.workspace_id, schedule_id=record.id
                )
            await audit(
                session, record.workspace_id, caller, f"schedule.{action.value}", record.id, request_key
            )
        if action == ScheduleAction.PAUSE:
            await self._mirror.pause(record.temporal_id, note)
        elif action == ScheduleAction.RESUME:
            await self._mirror.resume(record.temporal_id, note)
        elif action == ScheduleAction.RUN_NOW:
            await self._mirror.run_now(record.temporal_id)
        elif action == ScheduleAction.DELETE:
            await self._mirror.delete(record.temporal_id)
            return record
        await self._note_next_run(record)
        changed = await self.get(caller.slack_team_id, schedule_id)
        return changed or record

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
        async with self._sessions.begin() as session:
            await repo.set_tenant(session=session, workspace_id=record.workspace_id)
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

    async def _changeable(self, schedule_id: str, caller: Caller) -> ScheduleRecord:
        record = await self.get(caller.slack_team_id, schedule_id)
        if record is None:
            raise ScheduleRefused("I can't find that schedule in this workspace (it may have been deleted).")
        if record.owner_slack_id != caller.slack_user_id and not is_admin(caller.role):
            raise ScheduleRefused(
                f"Only <@{record.owner_slack_id}> (who created it) or a workspace admin can change it."
            )
        return record

    async def get(self, slack_team_id: str, schedule_id: str) -> ScheduleRecord | None:
        try:
            wanted = uuid.UUID(schedule_id)
        except ValueError:
            return None
        async with self._sessions.begin() as session:
            workspace_id = await repo.upsert_workspace(session=session, slack_team_id=slack_team_id)
            return await rows.get_schedule(session=session, workspace_id=workspace_id, schedule_id=wanted)

    async def visible_to(self, caller: Caller) -> list[ScheduleRecord]:
        """The caller's schedules; every schedule of the workspace for an admin."""
        async with self._sessions.begin() as session:
            workspace_id = await repo.upsert_workspace(session=session, slack_team_id=caller.slack_team_id)
            if is_admin(caller.role):
                return await rows.list_schedules(session=session, workspace_id=workspace_id)
            user = await repo.get_user(
                session=session, workspace_id=workspace_id, slack_user_id=caller.slack_user_id
            )
            if user is None:
                return []
            return await rows.list_schedules(session=session, workspace_id=workspace_id, owner_id=user.id)

    async def _note_next_run(self, record: ScheduleRecord) -> None:
        facts = await self._mirror.facts(record.temporal_id)
        async with self._sessions.begin() as session:
            await repo.set_tenant(session=session, workspace_id=record.workspace_id)
            await rows.set_next_run(
                session=session,
                workspace_id=record.workspace_id,
                schedule_id=record.id,
                next_run_at=facts.next_run_at if facts and not facts.paused else None,
            )


async def owner_and_channel(
    session: AsyncSession, workspace_id: uuid.UUID, caller: Caller, slack_channel_id: str, channel_type: str
) -> tuple[uuid.UUID, uuid.UUID]:
    """The ids of who creates a schedule or monitor, and of the channel it posts in (both
    recorded on the way, as ingress records everyone it meets)."""
    owner_id = await repo.upsert_user(
        session=session, workspace_id=workspace_id, slack_user_id=caller.slack_user_id, role=caller.role
    )
    channel_id = await repo.upsert_channel(
        session=session,
        workspace_id=workspace_id,
        slack_channel_id=slack_channel_id,
        channel_type=channel_type,
    )
    return owner_id, channel_id


async def audit(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    caller: Caller,
    action: str,
    entity_id: uuid.UUID,
    request_key: str,
    **details: Any,
) -> None:
    """One ``audit_log`` entry for a change to a schedule or a monitor (``action``'s first word
    is the entity type), once per request."""
    await repo.record_audit(
        session=session,
        workspace_id=workspace_id,
        idempotency_key=idempotency_key(action, str(entity_id), request_key),
        occurred_at=datetime.now(UTC),
        actor_type="user",
        actor_id=caller.slack_user_id,
        action=action,
        entity_type="heartbeat" if action.startswith("monitor.") else action.split(".")[0],
        entity_id=str(entity_id),
        details={"role": caller.role or "", **{k: v for k, v in details.items() if v}},
    )
