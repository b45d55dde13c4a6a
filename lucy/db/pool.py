"""A worker whose connection pool is exhausted fails the activity, retryably, instead of hanging.

SQLAlchemy raises ``sqlalchemy.exc.TimeoutError`` when no connection of the process's pool
(``LUCY_DATABASE_POOL_SIZE`` + ``LUCY_DATABASE_MAX_OVERFLOW``) was free within
``LUCY_DATABASE_POOL_TIMEOUT_SECONDS``. :class:`PoolTimeoutInterceptor` turns it into an
``ApplicationError`` of type ``DatabasePoolTimeout`` that says so in plain words and is retried
with the activity's own backoff (no retry policy lists it as final), so the step runs again when
a connection is free and nothing is lost (docs/postgres.md#when-the-pool-is-exhausted).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import TimeoutError as PoolTimeout
from temporalio import worker
from temporalio.exceptions import ApplicationError

from lucy.metrics import DATABASE_ERRORS

POOL_TIMEOUT_TYPE = "DatabasePoolTimeout"


class PoolTimeoutInterceptor(worker.Interceptor):
    """Installed on Lucy's worker (``app/worker.py``)."""

    def intercept_activity(
        self, next: worker.ActivityInboundInterceptor
    ) -> worker.ActivityInboundInterceptor:
        return _Activity(next)


class _Activity(worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: worker.ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except PoolTimeout:
            DATABASE_ERRORS.labels("pool_timeout").inc()
            raise ApplicationError(
                "no database connection was free in time (every connection of this worker's pool "
                "was busy): the step is retried; if this repeats, raise LUCY_DATABASE_POOL_SIZE "
                "within the deployment's budget (docs/postgres.md)",
                type=POOL_TIMEOUT_TYPE,
                non_retryable=False,
            ) from None
