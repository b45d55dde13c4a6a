"""Monthly partitions of cost_log, audit_log and webhook_deliveries.

A write never waits for maintenance: a row whose month has no partition lands in the table's
DEFAULT partition (``<table>_default``, migration 0006). Maintenance then puts everything in
its place:

* ``drain_defaults`` moves rows waiting in a default partition into their months (created on
  the way), through the ``lucy_drain_default_partition`` SQL function: one transaction per
  table, ids and timestamps unchanged, nothing counted twice.
* ``ensure_partitions`` creates the current month and ``months_ahead`` more (idempotent,
  through ``lucy_ensure_month_partition``).
* ``drop_expired`` detaches and drops whole months older than the retention, the cheap way to
  delete time-series data (and the only way for the append-only audit_log).

All are safe to run repeatedly; run them as the schema owner (``LUCY_DATABASE_MIGRATION_URL``).
Nothing here remembers "the current month": every call takes ``today`` from its caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from lucy.db.models import PARTITIONED_TABLES

_NAME = re.compile(r"^(?P<parent>[a-z_]+)_(?P<year>\d{4})_(?P<month>\d{2})$")


def add_months(month: date, n: int) -> date:
    """The first day of the month ``n`` months after ``month``'s."""
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


@dataclass
class PartitionReport:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    drained: dict[str, int] = field(default_factory=dict)  # table -> rows moved out of its default


def default_partition(parent: str) -> str:
    return f"{parent}_default"


async def existing_partitions(conn: AsyncConnection, parent: str) -> list[str]:
    rows = await conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :parent ORDER BY 1"
        ),
        {"parent": parent},
    )
    return list(rows.scalars())


async def _all_partitions(conn: AsyncConnection) -> set[str]:
    return {name for parent in PARTITIONED_TABLES for name in await existing_partitions(conn, parent)}


async def waiting_in_default(conn: AsyncConnection) -> dict[str, int]:
    """Rows per table that wait in its default partition for maintenance (tables with none
    are left out). The schema owner sees every tenant's rows there (RLS is not forced)."""
    waiting = {}
    for parent in PARTITIONED_TABLES:
        name = default_partition(parent)
        if (await conn.execute(text("SELECT to_regclass(:n) IS NULL"), {"n": name})).scalar_one():
            continue
        count = (await conn.execute(text(f'SELECT count(*) FROM "{name}"'))).scalar_one()
        if count:
            waiting[parent] = int(count)
    return waiting


async def drain_defaults(conn: AsyncConnection) -> dict[str, int]:
    """Move the rows waiting in each default partition into their month partitions."""
    drained = {}
    for parent in PARTITIONED_TABLES:
        moved = (
            await conn.execute(text("SELECT lucy_drain_default_partition(:parent)"), {"parent": parent})
        ).scalar_one()
        if moved:
            drained[parent] = int(moved)
    return drained


async def ensure_partitions(conn: AsyncConnection, *, today: date, months_ahead: int = 3) -> list[str]:
    """Create this month's and the next ``months_ahead`` months' partitions; returns new ones."""
    created = []
    for parent in PARTITIONED_TABLES:
        before = set(await existing_partitions(conn, parent))
        for n in range(months_ahead + 1):
            month = add_months(today.replace(day=1), n)
            name = (
                await conn.execute(
                    text("SELECT lucy_ensure_month_partition(:parent, :month)"),
                    {"parent": parent, "month": month},
                )
            ).scalar_one()
            if name not in before:
                created.append(name)
    return created


async def drop_expired(conn: AsyncConnection, *, today: date, retention_months: int) -> list[str]:
    """Detach and drop partitions whose whole month is older than ``retention_months``."""
    oldest_kept = add_months(today.replace(day=1), -retention_months)
    dropped = []
    for parent in PARTITIONED_TABLES:
        for name in await existing_partitions(conn, parent):
            m = _NAME.match(name)  # (never the default partition)
            if not m or m["parent"] != parent:
                continue
            if date(int(m["year"]), int(m["month"]), 1) < oldest_kept:
                await conn.execute(text(f'ALTER TABLE "{parent}" DETACH PARTITION "{name}"'))
                await conn.execute(text(f'DROP TABLE "{name}"'))
                dropped.append(name)
    return dropped


async def maintain(
    conn: AsyncConnection, *, today: date, retention_months: int, months_ahead: int = 3
) -> PartitionReport:
    """Drain the default partitions, create months ahead, then drop months past retention."""
    before = {p for parent in PARTITIONED_TABLES for p in await existing_partitions(conn, parent)}
    drained = await drain_defaults(conn)
    after_drain = {p for parent in PARTITIONED_TABLES for p in await existing_partitions(conn, parent)}
    created = sorted(after_drain - before)
    created += [
        n for n in await ensure_partitions(conn, today=today, months_ahead=months_ahead) if n not in created
    ]
    return PartitionReport(
        created=created,
        dropped=await drop_expired(conn, today=today, retention_months=retention_months),
        drained=drained,
    )
