"""Creating and changing monitors for a person: the rules, the row, the Temporal Schedule, the audit.

The same rules as schedules (:mod:`lucy.proactive.service`): guests create none, only the owner
or a workspace admin changes one, every change is an ``audit_log`` entry, and the row is written
before its Temporal Schedule (the reconciler finishes a half-done change). Resuming a monitor in
``error`` clears the error and starts probing again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lucy.contracts.monitors import MonitorAction
from lucy.db import repositories as repo
from lucy.db.repositories import monitors as rows
from lucy.db.repositories.monitors import MonitorRecord
from lucy.logging import get_logger
from lucy.proactive import conditions, recurrence
from lucy.proactive.mirror import StandingMirror
from lucy.proactive.service import Caller, ScheduleRefused, audit, owner_and_channel
from lucy.roles import is_admin

log = get_logger(__name__)

DEFAULT_COOLDOWN_SECONDS = 3600
MAX_MONITORS = 20  # per workspace


@dataclass(frozen=True)
class MonitorDraft:
    """What the confirmation showed, carried by its Create button; parsed again on the click."""

    monitor_id: str
    every: str  # "every 5 minutes"
    condition: str  # "health https://..."
    slack_channel_id: str
    channel_type: str = "public"


def read_draft(draft: MonitorDraft, *, min_interval: timedelta) -> tuple[int, conditions.MonitorSpec]:
    """(seconds between probes, the condition) of a draft.

    Raises:
        ScheduleRefused: not an interval, too frequent, or not a condition Lucy reads.
    """
    try:
        when = recurrence.parse(draft.every, timezone="UTC", min_interval=min_interval, now=datetime.now(UTC))
        spec = conditions.parse(draft.condition)
    except (recurrence.RecurrenceError, conditions.MonitorSpecError) as err:
        raise ScheduleRefused(str(err)) from None
    if not when.every_seconds:
        raise ScheduleRefused('A monitor runs at a fixed interval: "every 15 minutes", "every 2 hours".')
    return when.every_seconds, spec


class MonitorService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], mirror: StandingMirror, *, min_interval: timedelta
    ) -> None:
        self._sessions = sessions
        self._mirror = mirror
        self._min_interval = min_interval

    async def create(self, draft: MonitorDraft, caller: Caller, *, request_key: str) -> MonitorRecord:
        """Create the monitor the confirmation showed (idempotent: the draft's id)."""
        if caller.role == "guest":
            raise ScheduleRefused("Guests can't create monitors. Ask a member of this workspace.")
        every, spec = read_draft(draft, min_interval=self._min_interval)
        monitor_id = uuid.UUID(draft.monitor_id)
        async with self._sessions.begin() as session:
            workspace_id = await repo.upsert_workspace(session=session, slack_team_id=caller.slack_team_id)
            record = await rows.get_heartbeat(
                session=session, workspace_id=workspace_id, monitor_id=monitor_id
            )
            if record is None:
                if await rows.count_live_monitors(session=session, workspace_id=workspace_id) >= MAX_MONITORS:
                    raise ScheduleRefused(
                        f"This workspace has {MAX_MONITORS} monitors already, its limit. Delete one first "
                        "(`/lucy monitors`)."
                    )
                owner_id, channel_id = await owner_and_channel(
                    session, workspace_id, caller, draft.slack_channel_id, draft.channel_type
                )
                await rows.create_heartbeat(
                    session=session,
                    workspace_id=workspace_id,
                    monitor_id=monitor_id,
                    owner_id=owner_id,
                    channel_id=channel_id,
                    name=spec.description[:120],
                    kind=spec.kind,
                    config=spec.config,
                    description=spec.description,
                    every_seconds=every,
                    cooldown_seconds=DEFAULT_COOLDOWN_SECONDS,
                )
                await audit(
                    session,
                    workspace_id,
                    caller,
                    "monitor.created",
                    monitor_id,
                    request_key,
                    condition=spec.config,
                )
                record = await rows.get_heartbeat(
                    session=session, workspace_id=workspace_id, monitor_id=monitor_id
                )
        assert record is not None
        await self._mirror.put(record)
        log.info("monitor created", monitor_id=str(monitor_id), kind=spec.kind)
        return record

    async def change(
        self, monitor_id: str, action: MonitorAction, caller: Caller, *, request_key: str
    ) -> MonitorRecord:
        """Pause, resume (also out of ``error``), run now or delete, for the owner or an admin."""
        record = await self.get(caller.slack_team_id, monitor_id)
        if record is None:
            raise ScheduleRefused("I can't find that monitor in this workspace (it may have been deleted).")
        if record.owner_slack_id != caller.slack_user_id and not is_admin(caller.role):
            raise ScheduleRefused(
                f"Only <@{record.owner_slack_id}> (who created it) or a workspace admin can change it."
            )
        note = f"{action.value} by {caller.slack_user_id}"
        async with self._sessions.begin() as session:
            await repo.set_tenant(session=session, workspace_id=record.workspace_id)
            ws, hb = record.workspace_id, record.id
            if action in (MonitorAction.PAUSE, MonitorAction.RESUME):
                status = "paused" if action == MonitorAction.PAUSE else "active"
                await rows.set_monitor_status(session=session, workspace_id=ws, monitor_id=hb, status=status)
            elif action == MonitorAction.DELETE:
                await rows.delete_heartbeat(session=session, workspace_id=ws, monitor_id=hb)
            await audit(
                session, record.workspace_id, caller, f"monitor.{action.value}", record.id, request_key
            )
        if action == MonitorAction.PAUSE:
            await self._mirror.pause(record.temporal_id, note)
        elif action == MonitorAction.RESUME:
            await self._mirror.resume(record.temporal_id, note)
        elif action == MonitorAction.RUN_NOW:
            await self._mirror.run_now(record.temporal_id)
        elif action == MonitorAction.DELETE:
            await self._mirror.delete(record.temporal_id)
            return record
        return await self.get(caller.slack_team_id, monitor_id) or record

    async def get(self, slack_team_id: str, monitor_id: str) -> MonitorRecord | None:
        try:
            wanted = uuid.UUID(monitor_id)
        except ValueError:
            return None
        async with self._sessions.begin() as session:
            workspace_id = await repo.upsert_workspace(session=session, slack_team_id=slack_team_id)
            return await rows.get_heartbeat(session=session, workspace_id=workspace_id, monitor_id=wanted)

    async def visible_to(self, caller: Caller) -> list[MonitorRecord]:
        """The caller's monitors; every monitor of the workspace for an admin."""
        async with self._sessions.begin() as session:
            workspace_id = await repo.upsert_workspace(session=session, slack_team_id=caller.slack_team_id)
            if is_admin(caller.role):
                return await rows.list_monitors(session=session, workspace_id=workspace_id)
            user = await repo.get_user(
                session=session, workspace_id=workspace_id, slack_user_id=caller.slack_user_id
            )
            if user is None:
                return []
            return await rows.list_monitors(session=session, workspace_id=workspace_id, owner_id=user.id)
