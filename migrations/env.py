"""Alembic environment: async engine, URL from Lucy's settings.

The URL comes from ``config.attributes["url"]`` when the ``lucy db`` command passes one in,
otherwise from ``LUCY_DATABASE_URL`` through :func:`lucy.settings.get_settings`; the engine's
options (``LUCY_DATABASE_PGBOUNCER``, the timeouts) come from the settings too.
"""

from __future__ import annotations

import asyncio
import re

from alembic import context
from sqlalchemy.engine import Connection

from lucy.db.models import PARTITIONED_TABLES, Base
from lucy.db.session import create_engine
from lucy.settings import get_settings

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url")
    if url:
        return str(url)
    return get_settings().database.async_url


_PARTITION = re.compile(r"^(" + "|".join(PARTITIONED_TABLES) + r")_(\d{4}_\d{2}|default)$")


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Leave monthly partitions (``cost_log_2026_11``) out of model comparison: they are
    created by ``lucy db partitions``, not declared as models."""
    return not (type_ == "table" and name is not None and _PARTITION.match(name))


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        include_name=include_name,
        compare_type=True,
        compare_server_default=False,
        transaction_per_migration=True,
    )


def run_migrations_offline() -> None:
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        await connection.run_sync(_run_sync)
        return
    # One connection, configured like every other engine (PgBouncer included: each migration is
    # one transaction, so transaction pooling is enough).
    engine = create_engine(get_settings().database, url=_url(), pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run_sync)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
