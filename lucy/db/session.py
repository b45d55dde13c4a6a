"""Engine and session factory."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from lucy.metrics import DATABASE_ERRORS
from lucy.settings import DatabaseSettings


def create_engine(settings: DatabaseSettings, *, url: str | None = None, **kwargs: object) -> AsyncEngine:
    """An asyncpg engine for ``settings.database_url`` with a bounded pool (``kwargs`` override
    :func:`engine_options`: the one-connection engines of ``lucy db`` and the start-up checks)."""
    options = engine_options(settings)
    options.update(kwargs)
    engine = create_async_engine(url or settings.async_url, **options)
    event.listen(engine.sync_engine, "handle_error", _count_error)
    if not settings.database_pgbouncer:
        engine.dialect.do_ping = _ping_once  # type: ignore[method-assign]
    return engine


def _ping_once(dbapi_connection: Any) -> bool:
    """The pool's check before each checkout, in one round trip (``;``). SQLAlchemy's asyncpg
    ping wraps it in BEGIN and ROLLBACK, three round trips, which only PgBouncer's transaction
    mode needs (SQLAlchemy #10226); straight to PostgreSQL the statement alone shows the
    connection alive. The adapter's own ``ping()`` runs it, so a closed connection still
    raises the driver's error as SQLAlchemy's, and the pool replaces the connection."""
    level = dbapi_connection.isolation_level
    dbapi_connection.isolation_level = "autocommit"  # the adapter's ping then skips the transaction
    try:
        dbapi_connection.ping()
    finally:
        dbapi_connection.isolation_level = level
    return True


def engine_options(settings: DatabaseSettings) -> dict[str, object]:
    """The pool of one process (its connection budget, docs/postgres.md): at most
    ``pool_size + max_overflow`` connections; a caller that gets none within ``pool_timeout``
    raises ``sqlalchemy.exc.TimeoutError`` (an activity then fails and is retried, see
    :mod:`lucy.db.pool`); connections older than ``pool_recycle`` are replaced, and
    ``pool_pre_ping`` replaces those the server closed (restart, failover), so a database that
    was briefly down costs one failed attempt, not a broken pool.

    Behind PgBouncer in transaction mode (``database_pgbouncer``) consecutive transactions may
    run on different server connections, so no prepared statement may outlive its transaction:
    with neither SQLAlchemy's nor asyncpg's statement cache, asyncpg uses PostgreSQL's unnamed
    statement, parsed again with each execution and replaced by the next, so nothing is left on
    a server connection (unique statement names, the other known remedy, leave every statement
    whose close reaches another server connection behind: docs/postgres.md#pgbouncer). Lucy
    keeps no other session state (transaction-local settings and advisory locks only)."""
    connect_args: dict[str, object] = {"timeout": 5, "command_timeout": 30}
    if settings.database_pgbouncer:
        connect_args |= {"statement_cache_size": 0, "prepared_statement_cache_size": 0}
    return {
        "pool_size": settings.database_pool_size,
        "max_overflow": settings.database_max_overflow,
        "pool_timeout": settings.database_pool_timeout_seconds,
        "pool_recycle": settings.database_pool_recycle_seconds,
        "pool_pre_ping": True,
        "connect_args": connect_args,
    }


def _count_error(context: ExceptionContext) -> None:
    """``lucy_database_errors_total``: every database error SQLAlchemy handles (a server that
    cannot be reached at all shows as ``lucy_dependency_up{dependency="database"} 0`` instead)."""
    DATABASE_ERRORS.labels("disconnect" if context.is_disconnect else "other").inc()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
