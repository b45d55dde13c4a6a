"""Monthly partitions of cost_log, audit_log and webhook_deliveries.

``ensure_partitions`` creates the current month and ``months_ahead`` more (idempotent, through
the ``lucy_ensure_month_partition`` SQL function the migrations installed). ``drop_expired``
detaches and drops whole months older than the retention, the cheap way to delete time-series
data (and the only way for the append-only audit_log). Both are safe to run repeatedly; run
them as the schema owner (``LUCY_DATABASE_MIGRATION_URL``).
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


async def existing_partitions(conn: AsyncConnection, parent: str) -> list[str]:
    rows = await conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :parent ORDER BY 1"
        ),
        {"parent": parent},
    )
    return list(rows.scalars())


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
            m = _NAME.match(name)
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
    """Create months ahead, then drop months past retention."""
    return PartitionReport(
        created=await ensure_partitions(conn, today=today, months_ahead=months_ahead),
        dropped=await drop_expired(conn, today=today, retention_months=retention_months),
    )
