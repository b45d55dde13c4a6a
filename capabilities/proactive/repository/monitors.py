"""Monitors (the ``monitors`` table): the business half of a monitor (its Temporal Schedule is the other).

Every write is idempotent: a monitor is created under the id chosen when the confirmation was
shown, and a probe's verdict is applied once per workflow id (a retry gets the same decision
back, so its message is posted exactly once).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from capabilities.proactive.alerting import Decision, MonitorState, decide
from capabilities.proactive.repository import standing
from capabilities.proactive.repository.standing import StandingRecord, common_fields
from lucy.contracts.ids import monitor_schedule_id_of
from lucy.db.models import Monitor


@dataclass(frozen=True)
class MonitorRecord(StandingRecord):
    """A monitor with the Slack ids its Temporal Schedule and its messages need."""

    kind: str
    config: dict[str, Any]
    description: str
    every_seconds: int
    cooldown_seconds: int
    status: str  # active | paused | error
    alert_state: str
    consecutive_failures: int
    last_checked_at: datetime | None
    last_alerted_at: datetime | None
    last_evidence: str | None
    error_reason: str | None

    @property
    def temporal_id(self) -> str:
        return monitor_schedule_id_of(str(self.id))


def _record(row: Any) -> MonitorRecord:
    h: Monitor = row.Monitor
    return MonitorRecord(
        **common_fields(row, h),
        kind=h.condition_type,
        config=dict(h.condition_config),
        description=h.description,
        every_seconds=h.check_interval_seconds,
        cooldown_seconds=h.alert_cooldown_seconds,
        status=h.status,
        alert_state=h.alert_state,
        consecutive_failures=h.consecutive_failures,
        last_checked_at=h.last_checked_at,
        last_alerted_at=h.last_alerted_at,
        last_evidence=h.last_evidence,
        error_reason=h.error_reason,
    )


async def create_monitor_row(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    monitor_id: uuid.UUID,
    owner_id: uuid.UUID,
    channel_id: uuid.UUID,
    name: str,
    kind: str,
    config: dict[str, Any],
    description: str,
    every_seconds: int,
    cooldown_seconds: int,
) -> bool:
    """Create the row under ``monitor_id``; False when it exists already (a second click)."""
    values = {
        "id": monitor_id,
        "workspace_id": workspace_id,
        "created_by": owner_id,
        "channel_id": channel_id,
        "name": name[:255],
        "condition_type": kind,
        "condition_config": config,
        "description": description,
        "check_interval_seconds": every_seconds,
        "alert_cooldown_seconds": cooldown_seconds,
        "temporal_schedule_id": monitor_schedule_id_of(str(monitor_id)),
    }
    return await standing.insert_once(session=session, model=Monitor, values=values)


STORE = standing.Store(Monitor, _record)


async def count_live_monitors(*, session: AsyncSession, workspace_id: uuid.UUID) -> int:
    return await STORE.count_live(session, workspace_id)


async def get_monitor(
    *, session: AsyncSession, workspace_id: uuid.UUID, monitor_id: uuid.UUID
) -> MonitorRecord | None:
    return await STORE.get(session, workspace_id, monitor_id)


async def list_monitors(
    *, session: AsyncSession, workspace_id: uuid.UUID, owner_id: uuid.UUID | None = None
) -> list[MonitorRecord]:
    """The workspace's live rows (``owner_id``: only theirs), oldest first."""
    return await STORE.list(session, workspace_id, owner_id)


async def set_monitor_status(
    *, session: AsyncSession, workspace_id: uuid.UUID, monitor_id: uuid.UUID, status: str
) -> None:
    """``active`` (resume: the failure count and error reason are forgotten) or ``paused``."""
    values: dict[str, Any] = {"status": status}
    if status == "active":
        values.update(consecutive_failures=0, error_reason=None)
    await standing.set_values(
        session=session, model=Monitor, workspace_id=workspace_id, row_id=monitor_id, **values
    )


async def delete_monitor(*, session: AsyncSession, workspace_id: uuid.UUID, monitor_id: uuid.UUID) -> None:
    """Soft-delete: the row stays for the record; its Temporal Schedule goes."""
    await standing.soft_delete(
        session=session, model=Monitor, workspace_id=workspace_id, row_id=monitor_id, status="paused"
    )


async def record_probe(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    monitor_id: uuid.UUID,
    workflow_id: str,
    outcome: str,
    evidence: str,
    at: datetime,
) -> tuple[str, MonitorRecord | None]:
    """Apply one probe's outcome (once per workflow id, under the row's lock) and return what to
    say (``quiet``, ``alert``, ``reminder``, ``recovered`` or ``error``) and the monitor."""
    locked = (
        await session.execute(
            select(Monitor)
            .where(Monitor.workspace_id == workspace_id, Monitor.id == monitor_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if locked is None:
        return "quiet", None
    if locked.last_workflow_id == workflow_id:  # a retry: the same decision again
        record = await get_monitor(session=session, workspace_id=workspace_id, monitor_id=monitor_id)
        return locked.last_decision or "quiet", record
    decision: Decision = decide(
        MonitorState(locked.alert_state, locked.consecutive_failures, locked.last_alerted_at),
        outcome,
        now=at,
        cooldown=timedelta(seconds=locked.alert_cooldown_seconds),
    )
    values: dict[str, Any] = {
        "alert_state": decision.state.alert_state,
        "consecutive_failures": decision.state.consecutive_failures,
        "last_alerted_at": decision.state.last_alerted_at,
        "last_checked_at": at,
        "last_evidence": evidence[:2000],
        "last_workflow_id": workflow_id,
        "last_decision": decision.say,
        "updated_at": func.now(),
    }
    if decision.stop and locked.status == "active":
        values.update(status="error", error_reason=evidence[:500])
    await session.execute(
        update(Monitor).where(Monitor.workspace_id == workspace_id, Monitor.id == monitor_id).values(**values)
    )
    record = await get_monitor(session=session, workspace_id=workspace_id, monitor_id=monitor_id)
    return decision.say, record


async def live_monitors(*, session: AsyncSession) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(workspace id, monitor id) of every live monitor, across tenants (``lucy_live_monitors``)."""
    return await standing.live_ids(session=session, function="lucy_live_monitors", column="monitor_id")
