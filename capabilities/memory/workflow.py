"""``LucyMemoryUpkeepWorkflow``: the nightly memory upkeep, started by the Temporal Schedule
``lucy-memory-upkeep`` (:mod:`capabilities.memory.upkeep_schedule`). One activity
(``memory.upkeep``: expire, merge duplicates, count); its report is the workflow's result,
so each night's counts are in the Temporal UI."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    import capabilities.memory.contracts  # noqa: F401  (the payload converter resolves its hints)
    from capabilities.memory.activities.upkeep import MemoryUpkeepActivities
    from capabilities.memory.contracts import (
        MEMORY_UPKEEP_WORKFLOW_NAME,
        MemoryUpkeepInput,
        MemoryUpkeepReport,
    )

UPKEEP_TIMEOUT = timedelta(minutes=10)
UPKEEP_HEARTBEAT = timedelta(minutes=2)
UPKEEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=5,
)


@workflow.defn(name=MEMORY_UPKEEP_WORKFLOW_NAME)
class LucyMemoryUpkeepWorkflow:
    @workflow.run
    async def run(self, request: MemoryUpkeepInput) -> MemoryUpkeepReport:
        report: MemoryUpkeepReport = await workflow.execute_activity_method(
            MemoryUpkeepActivities.upkeep,
            request,
            start_to_close_timeout=UPKEEP_TIMEOUT,
            heartbeat_timeout=UPKEEP_HEARTBEAT,
            retry_policy=UPKEEP_RETRY,
            summary="memory upkeep: expire, merge duplicates, count",
        )
        workflow.logger.info(
            "memory upkeep done",
            extra={"merged": report.merged, "expired": report.expired, "remaining": report.remaining},
        )
        return report
