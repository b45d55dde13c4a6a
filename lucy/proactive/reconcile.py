"""Schedule rows and Temporal Schedules, reconciled in both directions.

The row is the truth. A live row whose Temporal Schedule vanished (a wiped or restored
cluster) gets it back; one whose paused state drifted is brought in line; a Temporal Schedule
that looks like Lucy's (``lucy-schedule-*``) with no live row behind it is deleted. Runs that
Temporal had to skip beyond the catch-up window (the cluster itself was down) are counted, so
the channel hears about them once. Run by ``lucy worker`` at start and by the maintenance
workflow; safe to run anywhere, any number of times. Monitors (``lucy-heartbeat-*``) are
reconciled the same way by :func:`reconcile_monitors` (a missed probe is not reported: the next
one says the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lucy.contracts import monitor_schedule_id_of, row_id_of_monitor, row_id_of_schedule, schedule_id_of
from lucy.db import repositories as repo
from lucy.db.repositories import monitors as monitor_rows
from lucy.db.repositories import schedules as rows
from lucy.db.repositories.schedules import ScheduleRecord
from lucy.logging import get_logger
from lucy.proactive.mirror import ScheduleMirror
from lucy.proactive.monitor_mirror import MonitorMirror

log = get_logger(__name__)


@dataclass
class Reconciled:
    recreated: list[str] = field(default_factory=list)  # Temporal Schedule ids put back
    resynced: list[str] = field(default_factory=list)  # paused state brought in line with the row
    deleted: list[str] = field(default_factory=list)  # Lucy-looking schedules without a live row
    missed: list[tuple[ScheduleRecord, int]] = field(default_factory=list)  # new misses to report


async def reconcile(
    sessions: async_sessionmaker[AsyncSession],
    mirror: ScheduleMirror,
    *,
    count_missed: bool = True,
    listed: set[str] | None = None,
) -> Reconciled:
    """Bring Temporal in line with the rows. ``count_missed``: also take the runs Temporal
    missed since the last report (the caller tells the channels). ``listed``: the namespace's
    schedule ids, when the caller has listed them already."""
    done = Reconciled()
    async with sessions.begin() as session:
        live = await rows.live_schedules(session=session)
    listed = await mirror.listed_ids() if listed is None else listed
    in_temporal = {i for i in listed if row_id_of_schedule(i) is not None}
    for workspace_id, schedule_id in live:
        async with sessions.begin() as session:
            await repo.set_tenant(session=session, workspace_id=workspace_id)
            record = await rows.get_schedule(
                session=session, workspace_id=workspace_id, schedule_id=schedule_id
            )
        if record is None:
            continue
        facts = await mirror.facts(record.temporal_id) if record.temporal_id in in_temporal else None
        if facts is None:
            await mirror.put(record)
            done.recreated.append(record.temporal_id)
            continue
        if facts.paused == record.is_active:
            await mirror.put(record)
            done.resynced.append(record.temporal_id)
        async with sessions.begin() as session:
            await repo.set_tenant(session=session, workspace_id=workspace_id)
            await rows.set_next_run(
                session=session,
                workspace_id=workspace_id,
                schedule_id=schedule_id,
                next_run_at=facts.next_run_at if record.is_active else None,
            )
            if count_missed and facts.missed:
                new = await rows.record_missed(
                    session=session,
                    workspace_id=workspace_id,
                    schedule_id=schedule_id,
                    missed_total=facts.missed,
                )
                if new:
                    done.missed.append((record, new))
    wanted = {schedule_id_of(str(schedule_id)) for _, schedule_id in live}
    return await _without_orphans(mirror, in_temporal - wanted, done, "schedules")


async def reconcile_monitors(
    sessions: async_sessionmaker[AsyncSession], mirror: MonitorMirror, *, listed: set[str] | None = None
) -> Reconciled:
    """Bring Temporal in line with the ``monitors`` rows, in both directions."""
    done = Reconciled()
    async with sessions.begin() as session:
        live = await monitor_rows.live_monitors(session=session)
    listed = await mirror.listed_ids() if listed is None else listed
    in_temporal = {i for i in listed if row_id_of_monitor(i) is not None}
    for workspace_id, monitor_id in live:
        async with sessions.begin() as session:
            await repo.set_tenant(session=session, workspace_id=workspace_id)
            record = await monitor_rows.get_heartbeat(
                session=session, workspace_id=workspace_id, monitor_id=monitor_id
            )
        if record is None:
            continue
        facts = await mirror.facts(record.temporal_id) if record.temporal_id in in_temporal else None
        if facts is None:
            await mirror.put_monitor(record)
            done.recreated.append(record.temporal_id)
        elif facts.paused == (record.status == "active"):
            await mirror.put_monitor(record)
            done.resynced.append(record.temporal_id)
    wanted = {monitor_schedule_id_of(str(monitor_id)) for _, monitor_id in live}
    return await _without_orphans(mirror, in_temporal - wanted, done, "monitors")


async def _without_orphans(
    mirror: ScheduleMirror, orphans: set[str], done: Reconciled, what: str
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
