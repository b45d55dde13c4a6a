"""Timeouts and retry policies of the task workflow's activities, named so that the Temporal UI
and this file tell the same story. Pure data."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from lucy.contracts.errors import ErrorType

# Writing the business record: a database that is down comes back, so the task waits for it
# (up to an hour); a row the database refuses is final.
RECORD_TIMEOUT = timedelta(seconds=30)
RECORD_DEADLINE = timedelta(hours=1)
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,
    non_retryable_error_types=["DatabaseRejected"],
)

# Reading the task's context is a read: a few minutes of retries, then the task fails and says so.
CONTEXT_TIMEOUT = timedelta(seconds=30)
CONTEXT_DEADLINE = timedelta(minutes=10)
CONTEXT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=20,
    non_retryable_error_types=["DatabaseRejected"],
)

LLM_TIMEOUT = timedelta(seconds=150)
# The LLM activity heartbeats every 2 s while it waits for (or streams) the completion: a dead
# worker is noticed after this long instead of after LLM_TIMEOUT.
LLM_HEARTBEAT = timedelta(seconds=10)
LLM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=5,
    non_retryable_error_types=[
        ErrorType.LLM_REJECTED,
        ErrorType.LLM_UNAUTHORIZED,
        ErrorType.LLM_PAYMENT_REQUIRED,
        ErrorType.LLM_NOT_CONFIGURED,
    ],
)
CLASSIFY_TIMEOUT = timedelta(seconds=30)
CLASSIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_attempts=2,  # a guess is fine: a failed classification falls back to "chat"
    non_retryable_error_types=LLM_RETRY.non_retryable_error_types,
)

SLACK_TIMEOUT = timedelta(seconds=20)
SLACK_DEADLINE = timedelta(minutes=30)
SLACK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=20,
    non_retryable_error_types=[ErrorType.SLACK_REJECTED, ErrorType.SLACK_NOT_CONFIGURED],
)
PROGRESS_DEADLINE = timedelta(minutes=5)
# The assistant thread's status is a nicety: a few quick tries, then it is left as it is.
ASSISTANT_DEADLINE = timedelta(minutes=1)
ASSISTANT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)

# Verifying who clicked: quick, a few tries, then the click is refused ("try again").
VERIFY_TIMEOUT = timedelta(seconds=10)
VERIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
