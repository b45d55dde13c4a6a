"""``LucyPatternsWorkflow``: the weekly scan for recurring requests, run by the Temporal Schedule
``lucy-patterns`` (see :mod:`capabilities.proactive.maintenance_schedule`). One activity,
``patterns.scan``, finds, stores and offers (:mod:`capabilities.proactive.activities.patterns`)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from capabilities.proactive.workflow.maintenance import MAINTENANCE
from capabilities.task.workflow.options import ActivityOptions

with workflow.unsafe.imports_passed_through():
    import capabilities.proactive.contracts.patterns  # noqa: F401
    from capabilities.proactive.activities.patterns import PatternActivities
    from capabilities.proactive.contracts.patterns import PatternScan, PatternsReport
    from lucy.contracts.ids import PATTERNS_WORKFLOW_NAME

SCAN = ActivityOptions(
    start_to_close_timeout=timedelta(minutes=10),
    heartbeat_timeout=timedelta(minutes=2),
    retry_policy=MAINTENANCE["retry_policy"],
)


@workflow.defn(name=PATTERNS_WORKFLOW_NAME)
class LucyPatternsWorkflow:
    @workflow.run
    async def run(self, request: PatternScan) -> PatternsReport:
        return await workflow.execute_activity_method(
            PatternActivities.scan,
            request,
            **SCAN,
            summary=f"patterns: recurring requests of the last {request.lookback_days} days, offers",
        )
