"""Engine and session factory."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from lucy.metrics import DATABASE_ERRORS
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
    engine = create_async_engine(url or settings.async_url, **options)
    event.listen(engine.sync_engine, "handle_error", _count_error)
    return engine


def _count_error(context: ExceptionContext) -> None:
    """``lucy_database_errors_total``: every database error SQLAlchemy handles (a server that
    cannot be reached at all shows as ``lucy_dependency_up{dependency="database"} 0`` instead)."""
    DATABASE_ERRORS.labels("disconnect" if context.is_disconnect else "other").inc()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
