"""Creating and changing monitors for a person: the rules, the row, the Temporal Schedule, the audit.

The rules every standing job follows (guests create none, only the owner or a workspace admin
changes one, every change is an ``audit_log`` entry, the row before its Temporal Schedule) are
:mod:`capabilities.proactive.standing`'s. Resuming a monitor in ``error`` clears the error and starts
probing again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from capabilities.proactive import conditions, recurrence
from capabilities.proactive.contracts.schedules import StandingAction
from capabilities.proactive.repository import monitors as rows
from capabilities.proactive.repository.monitors import MonitorRecord
from capabilities.proactive.standing import Caller, NewRow, ScheduleRefused, StandingService
from lucy.logging import get_logger

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


class MonitorService(StandingService[MonitorRecord]):
    noun = "monitor"
    store = rows.STORE

    async def create(self, draft: MonitorDraft, caller: Caller, *, request_key: str) -> MonitorRecord:
        """Create the monitor the confirmation showed (idempotent: the draft's id)."""
        self.refuse_guest(caller)
        every, spec = read_draft(draft, min_interval=self._min_interval)
        monitor_id = uuid.UUID(draft.monitor_id)

        values = {
            "monitor_id": monitor_id,
            "name": spec.description[:120],
            "kind": spec.kind,
            "config": spec.config,
            "description": spec.description,
            "every_seconds": every,
            "cooldown_seconds": DEFAULT_COOLDOWN_SECONDS,
        }
        details = {"condition": spec.config}
        new = NewRow(
            monitor_id, draft.slack_channel_id, draft.channel_type, rows.create_monitor_row, values, details
        )
        record = await self._create(caller, new, request_key=request_key)
        log.info("monitor created", monitor_id=str(monitor_id), kind=spec.kind)
        return record

    async def _refuse_over_limit(self, session: AsyncSession, workspace_id: uuid.UUID) -> None:
        if await rows.count_live_monitors(session=session, workspace_id=workspace_id) >= MAX_MONITORS:
            raise ScheduleRefused(
                f"This workspace has {MAX_MONITORS} monitors already, its limit. Delete one first "
                "(`/lucy monitors`)."
            )

    async def _store_change(
        self, session: AsyncSession, record: MonitorRecord, action: StandingAction, caller: Caller
    ) -> None:
        """Pause, resume (also out of ``error``) or delete."""
        ws, monitor_id = record.workspace_id, record.id
        if action in (StandingAction.PAUSE, StandingAction.RESUME):
            status = "paused" if action == StandingAction.PAUSE else "active"
            await rows.set_monitor_status(
                session=session, workspace_id=ws, monitor_id=monitor_id, status=status
            )
        elif action == StandingAction.DELETE:
            await rows.delete_monitor(session=session, workspace_id=ws, monitor_id=monitor_id)
