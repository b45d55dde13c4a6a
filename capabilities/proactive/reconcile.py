"""Schedule rows and Temporal Schedules, reconciled in both directions.

The row is the truth. A live row whose Temporal Schedule vanished (a wiped or restored
cluster) gets it back; one whose paused state drifted, or made before runs had a priority
(docs/scaling.md#priority-and-fairness), is brought in line; a Temporal Schedule
that looks like Lucy's (``lucy-schedule-*``) with no live row behind it is deleted. Runs that
Temporal had to skip beyond the catch-up window (the cluster itself was down) are counted, so
the channel hears about them once. Run by ``lucy worker`` at start and by the maintenance
workflow; safe to run anywhere, any number of times. Monitors (``lucy-heartbeat-*``) are
reconciled the same way by :func:`reconcile_monitors` (a missed probe is not reported: the next
one says the same).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from capabilities.proactive.mirror import ScheduleFacts, StandingMirror
from capabilities.proactive.repository import monitors as monitor_rows
from capabilities.proactive.repository import schedules as rows
from capabilities.proactive.repository.monitors import MonitorRecord
from capabilities.proactive.repository.schedules import ScheduleRecord
from lucy.contracts.ids import monitor_schedule_id_of, row_id_of_monitor, row_id_of_schedule, schedule_id_of
from lucy.contracts.priority import PriorityKey
from lucy.db.repositories.tenants import tenant_transaction
from lucy.logging import get_logger

log = get_logger(__name__)

Record = ScheduleRecord | MonitorRecord


@dataclass
class Reconciled:
    recreated: list[str] = field(default_factory=list)  # Temporal Schedule ids put back
    resynced: list[str] = field(default_factory=list)  # paused state brought in line with the row
    deleted: list[str] = field(default_factory=list)  # Lucy-looking schedules without a live row
    missed: list[tuple[ScheduleRecord, int]] = field(default_factory=list)  # new misses to report


@dataclass(frozen=True)
class ReconciledKind:
    """What the reconciler needs to know of one kind of standing job."""

    what: str  # "schedules" | "monitors", for the log
    live: Callable[..., Awaitable[list[tuple[uuid.UUID, uuid.UUID]]]]  # (workspace, row) ids
    get: Callable[[AsyncSession, uuid.UUID, uuid.UUID], Awaitable[Any]]  # the row, or None
    row_id_of: Callable[[str], str | None]  # a Temporal Schedule id -> its row id, if this kind's
    temporal_id_of: Callable[[str], str]  # a row id -> its Temporal Schedule id


SCHEDULES = ReconciledKind(
    "schedules", rows.live_schedules, rows.STORE.get, row_id_of_schedule, schedule_id_of
)
MONITORS = ReconciledKind(
    "monitors", monitor_rows.live_monitors, monitor_rows.STORE.get, row_id_of_monitor, monitor_schedule_id_of
)


def is_active(record: Record) -> bool:
    return record.is_active if isinstance(record, ScheduleRecord) else record.status == "active"


async def reconcile(
    sessions: async_sessionmaker[AsyncSession],
    mirror: StandingMirror,
    *,
    count_missed: bool = True,
    listed: set[str] | None = None,
) -> Reconciled:
    """Bring Temporal in line with the schedule rows. ``count_missed``: also take the runs
    Temporal missed since the last report (the caller tells the channels). ``listed``: the
    namespace's schedule ids, when the caller has listed them already."""

    async def noted(record: Record, facts: ScheduleFacts, done: Reconciled) -> None:
        assert isinstance(record, ScheduleRecord)
        await _note_schedule(sessions, record, facts, done, count_missed=count_missed)

    return await _reconcile(sessions, mirror, SCHEDULES, listed, noted)


async def reconcile_monitors(
    sessions: async_sessionmaker[AsyncSession], mirror: StandingMirror, *, listed: set[str] | None = None
) -> Reconciled:
    """Bring Temporal in line with the ``monitors`` rows, in both directions."""
    return await _reconcile(sessions, mirror, MONITORS, listed, None)


async def _reconcile(
    sessions: async_sessionmaker[AsyncSession],
    mirror: StandingMirror,
    kind: ReconciledKind,
    listed: set[str] | None,
    noted: Callable[[Record, ScheduleFacts, Reconciled], Awaitable[None]] | None,
) -> Reconciled:
    """Put back or resync each live row's Temporal Schedule (``noted`` then hears the facts of
    one that exists), then delete this kind's Temporal Schedules that no live row owns."""
    done = Reconciled()
    async with sessions.begin() as session:
        live = await kind.live(session=session)
    listed = await mirror.listed_ids() if listed is None else listed
    in_temporal = {i for i in listed if kind.row_id_of(i) is not None}
    for workspace_id, row_id in live:
        async with tenant_transaction(sessions, workspace_id) as session:
            record: Record | None = await kind.get(session, workspace_id, row_id)
        if record is None:
            continue
        facts = await mirror.facts(record.temporal_id) if record.temporal_id in in_temporal else None
        if facts is None:
            await mirror.put(record)
            done.recreated.append(record.temporal_id)
            continue
        if facts.paused == is_active(record) or facts.priority_key != PriorityKey.BACKGROUND:
            await mirror.put(record)  # drifted, or made before runs had a priority
            done.resynced.append(record.temporal_id)
        if noted is not None:
            await noted(record, facts, done)
    wanted = {kind.temporal_id_of(str(row_id)) for _, row_id in live}
    return await _without_orphans(mirror, in_temporal - wanted, done, kind.what)


async def _note_schedule(
    sessions: async_sessionmaker[AsyncSession],
    record: ScheduleRecord,
    facts: ScheduleFacts,
    done: Reconciled,
    *,
    count_missed: bool,
) -> None:
    """Keep a schedule's next run, and count the runs Temporal missed since the last report."""
    ws, schedule_id = record.workspace_id, record.id
    async with tenant_transaction(sessions, ws) as session:
        await rows.set_next_run(
            session=session,
            workspace_id=ws,
            schedule_id=schedule_id,
            next_run_at=facts.next_run_at if record.is_active else None,
        )
        if count_missed and facts.missed:
            new = await rows.record_missed(
                session=session, workspace_id=ws, schedule_id=schedule_id, missed_total=facts.missed
            )
            if new:
                done.missed.append((record, new))


async def _without_orphans(
    mirror: StandingMirror, orphans: set[str], done: Reconciled, what: str
) -> Reconciled:
    """Delete Lucy-looking Temporal Schedules that no live row owns; log what changed."""
    for orphan in sorted(orphans):
        if await mirror.delete(orphan):
            done.deleted.append(orphan)
    if done.recreated or done.resynced or done.deleted:
        log.info(
            f"{what} reconciled",
            recreated=len(done.recreated),
            resynced=len(done.resynced),
            deleted=len(done.deleted),
        )
    return done
