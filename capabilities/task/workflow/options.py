"""Timeouts and retry policies of the workflows' activities, named so that the Temporal UI and
this file tell the same story. Pure data, and the two helpers that build it: :func:`backoff`
(a retry policy) and :class:`ActivityOptions` (what one kind of call passes to
``workflow.execute_activity_method(..., **options.RECORD)``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TypedDict

from temporalio.common import RetryPolicy

from lucy.contracts.errors import ErrorType


class ActivityOptions(TypedDict, total=False):
    """The timeouts and the retry policy of one kind of activity call."""

    start_to_close_timeout: timedelta
    schedule_to_close_timeout: timedelta
    heartbeat_timeout: timedelta
    retry_policy: RetryPolicy


def backoff(first: timedelta, longest: timedelta, attempts: int, final: Sequence[str] = ()) -> RetryPolicy:
    """Retries that wait ``first``, then twice as long each time up to ``longest``; at most
    ``attempts`` tries (0: until the deadline); an error of a ``final`` type is never retried."""
    return RetryPolicy(
        initial_interval=first,
        backoff_coefficient=2.0,
        maximum_interval=longest,
        maximum_attempts=attempts,
        non_retryable_error_types=list(final),
    )


SECOND = timedelta(seconds=1)

# Writing the business record: a database that is down comes back, so the task waits for it
# (up to an hour); a row the database refuses is final.
RECORD_TIMEOUT = timedelta(seconds=30)
RECORD_DEADLINE = timedelta(hours=1)
RECORD_RETRY = backoff(SECOND, timedelta(seconds=30), 0, ["DatabaseRejected"])
RECORD = ActivityOptions(
    start_to_close_timeout=RECORD_TIMEOUT,
    schedule_to_close_timeout=RECORD_DEADLINE,
    retry_policy=RECORD_RETRY,
)

# A dead worker is noticed this long after its last heartbeat, instead of after a call's
# start-to-close timeout: the context read and the classification heartbeat every second or two
# (a worker killed with -9 during either had the task wait out the whole 30 s before).
LIVENESS = timedelta(seconds=5)

# Reading the task's context is a read: a few minutes of retries, then the task fails and says so.
CONTEXT = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=30),
    heartbeat_timeout=LIVENESS,
    schedule_to_close_timeout=timedelta(minutes=10),
    retry_policy=backoff(SECOND, timedelta(seconds=30), 20, ["DatabaseRejected"]),
)

LLM_TIMEOUT = timedelta(seconds=150)
# The LLM activity heartbeats every 2 s while it waits for (or streams) the completion: a dead
# worker is noticed after this long instead of after LLM_TIMEOUT.
LLM_HEARTBEAT = timedelta(seconds=10)
LLM_RETRY = backoff(
    2 * SECOND,
    timedelta(seconds=60),
    5,
    [
        ErrorType.LLM_REJECTED,
        ErrorType.LLM_UNAUTHORIZED,
        ErrorType.LLM_PAYMENT_REQUIRED,
        ErrorType.LLM_NOT_CONFIGURED,
    ],
)
LLM = ActivityOptions(
    start_to_close_timeout=LLM_TIMEOUT, heartbeat_timeout=LLM_HEARTBEAT, retry_policy=LLM_RETRY
)
CLASSIFY = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=30),
    heartbeat_timeout=LLM_HEARTBEAT,
    retry_policy=RetryPolicy(
        initial_interval=SECOND,
        maximum_attempts=2,  # a guess is fine: a failed classification falls back to "chat"
        non_retryable_error_types=LLM_RETRY.non_retryable_error_types,
    ),
)

SLACK_TIMEOUT = timedelta(seconds=20)
SLACK_RETRY = backoff(
    SECOND, timedelta(seconds=60), 20, [ErrorType.SLACK_REJECTED, ErrorType.SLACK_NOT_CONFIGURED]
)
SLACK = ActivityOptions(
    start_to_close_timeout=SLACK_TIMEOUT,
    schedule_to_close_timeout=timedelta(minutes=30),
    retry_policy=SLACK_RETRY,
)
PROGRESS = ActivityOptions(
    start_to_close_timeout=SLACK_TIMEOUT,
    schedule_to_close_timeout=timedelta(minutes=5),
    retry_policy=SLACK_RETRY,
)
# The assistant thread's status is a nicety: a few quick tries, then it is left as it is.
ASSISTANT = ActivityOptions(
    start_to_close_timeout=SLACK_TIMEOUT,
    schedule_to_close_timeout=timedelta(minutes=1),
    retry_policy=RetryPolicy(initial_interval=SECOND, maximum_attempts=3),
)

# Verifying who clicked: quick, a few tries, then the click is refused ("try again").
VERIFY_TIMEOUT = timedelta(seconds=10)
VERIFY = ActivityOptions(
    start_to_close_timeout=VERIFY_TIMEOUT,
    schedule_to_close_timeout=VERIFY_TIMEOUT * 3,
    retry_policy=RetryPolicy(initial_interval=SECOND, maximum_attempts=3),
)
