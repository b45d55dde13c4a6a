"""The bare baseline of ``bench/worker_scale.py``: k trivial activities, then an idle wait.

Its own small module on purpose: the workflow sandbox re-imports a workflow's module for every
run, so this file holds only what the bare workflow needs (the same imports a minimal
Temporal workflow has), and the comparison with ``LucyTaskWorkflow`` is module for module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

BARE_WORKFLOW_NAME = "BenchBareIdleWorkflow"
BARE_ACTIVITY_NAME = "bench.trivial"
TRIVIAL_RETRY = RetryPolicy(maximum_attempts=3)


@dataclass(frozen=True)
class BareInput:
    activities: int  # how many trivial activities to run before waiting


@dataclass(frozen=True)
class Trivial:
    index: int


@workflow.defn(name=BARE_WORKFLOW_NAME)
class BareIdleWorkflow:
    """``activities`` trivial activities one after the other, then a wait for a signal that
    never comes (what a task waiting for an approval is, without the task)."""

    def __init__(self) -> None:
        self._released = False

    @workflow.run
    async def run(self, inp: BareInput) -> int:
        for i in range(inp.activities):
            await workflow.execute_activity(
                BARE_ACTIVITY_NAME,
                Trivial(i),
                result_type=Trivial,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=TRIVIAL_RETRY,
            )
        await workflow.wait_condition(lambda: self._released)
        return inp.activities

    @workflow.signal(name="release")
    def release(self) -> None:
        self._released = True
