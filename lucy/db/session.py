"""Engine and session factory."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from lucy.settings import DatabaseSettings


def create_engine(settings: DatabaseSettings, *, url: str | None = None, **kwargs: object) -> AsyncEngine:
    """An asyncpg engine for ``settings.database_url`` with a bounded pool.

    ``pool_pre_ping`` replaces connections the server closed (restart, failover) so a
    database that was briefly down costs one failed activity attempt, not a broken pool.
    """
    options: dict[str, object] = {
        "pool_size": settings.database_pool_size,
        "max_overflow": settings.database_max_overflow,
        "pool_pre_ping": True,
        "pool_timeout": 10,
        "connect_args": {"timeout": 5, "command_timeout": 30},
    }
    options.update(kwargs)
    return create_async_engine(url or settings.async_url, **options)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
