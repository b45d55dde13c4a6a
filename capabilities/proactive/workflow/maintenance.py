"""``LucyMaintenanceWorkflow``: what used to be cron, run by the Temporal Schedule
``lucy-maintenance`` (see :mod:`capabilities.proactive.maintenance_schedule`).

1. Partitions: this month's and the next months' partitions of the time-series tables exist,
   months past retention are dropped (``lucy db partitions``, scheduled).
2. Orphaned claims: ingress claims a task row before it starts the workflow; if the start
   failed and Slack stopped redelivering, the row would stay ``created`` for ever. Rows older
   than a few minutes with no workflow are recorded as failed (``NeverStarted``).
3. Schedules: rows and Temporal Schedules reconciled both ways (:mod:`capabilities.proactive.reconcile`);
   a channel whose schedule missed runs beyond its catch-up window is told, once.
4. MCP servers (patch ``mcp-refresh-catalogs``): every workspace's server whose tool list is
   older than ``mcp_refresh_hours`` is listed again (``mcp.refresh``).

Each step is its own activity with its own retry policy; one failing does not stop the other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError

from capabilities.task.workflow.options import ActivityOptions, backoff

with workflow.unsafe.imports_passed_through():
    # The payload converter resolves the dataclasses' type hints in their own modules: each
    # contracts module must be visible inside the sandbox by its full name.
    import capabilities.approvals.contracts
    import capabilities.proactive.contracts.maintenance
    import capabilities.proactive.contracts.schedules
    import capabilities.task.contracts.records
    import capabilities.task.contracts.task
    import capabilities.tools.contracts  # noqa: F401
    import lucy.contracts.errors
    import lucy.contracts.ids
    import lucy.contracts.llm
    import lucy.contracts.risk
    import lucy.contracts.slack  # noqa: F401
    from capabilities.mcp.activities import McpActivities
    from capabilities.mcp.contracts import McpRefreshRequest, McpRefreshResult
    from capabilities.proactive.activities.maintenance import MaintenanceActivities
    from capabilities.proactive.activities.schedules import ScheduleActivities
    from capabilities.proactive.contracts.maintenance import (
        MaintenanceInput,
        MaintenanceReport,
        PartitionsResult,
        ReconcileRequest,
        ReconcileResult,
    )
    from capabilities.proactive.contracts.schedules import SchedulesReconciled
    from capabilities.task.activities.slack import SlackActivities
    from lucy.contracts.ids import MAINTENANCE_WORKFLOW_NAME
    from lucy.contracts.slack import PostMessageRequest

MAINTENANCE = ActivityOptions(
    start_to_close_timeout=timedelta(minutes=5),
    retry_policy=backoff(timedelta(seconds=5), timedelta(minutes=2), 5),
)
MCP_REFRESH_PATCH = "mcp-refresh-catalogs"  # runs recorded before the MCP step have no such step
MCP_REFRESH = ActivityOptions(
    start_to_close_timeout=timedelta(minutes=10),
    heartbeat_timeout=timedelta(minutes=5),
    retry_policy=MAINTENANCE["retry_policy"],
)
T = TypeVar("T")


async def _settled(step: Awaitable[T], failed: Callable[[ActivityError], T], what: str) -> T:
    """One step's result; a step that failed for good is logged and gives ``failed(err)``, so
    the next step still runs."""
    try:
        return await step
    except ActivityError as err:
        workflow.logger.error(f"{what} failed", extra={"error": str(err.cause)})
        return failed(err)


@workflow.defn(name=MAINTENANCE_WORKFLOW_NAME)
class LucyMaintenanceWorkflow:
    @workflow.run
    async def run(self, request: MaintenanceInput) -> MaintenanceReport:
        partitions = await _settled(
            workflow.execute_activity_method(
                MaintenanceActivities.partitions,
                request,
                **MAINTENANCE,
                summary=f"partitions: {request.months_ahead} months ahead, drop past retention",
            ),
            lambda err: PartitionsResult(skipped=f"failed: {err.cause}"),
            "partition maintenance",
        )
        claims = await _settled(
            workflow.execute_activity_method(
                MaintenanceActivities.reconcile_claims,
                ReconcileRequest(stale_claim_minutes=request.stale_claim_minutes),
                **MAINTENANCE,
                summary=f"claims: record tasks never started after {request.stale_claim_minutes} min",
            ),
            lambda _: ReconcileResult(),
            "claim reconciliation",
        )
        schedules = await _settled(
            workflow.execute_activity_method(
                ScheduleActivities.reconcile,
                **MAINTENANCE,
                summary="schedules: rows and Temporal Schedules in line, missed runs found",
            ),
            lambda _: SchedulesReconciled(),
            "schedule reconciliation",
        )
        for notice in schedules.notices:  # each said once: the key makes the post idempotent
            try:
                await workflow.execute_activity_method(
                    SlackActivities.post_message,
                    PostMessageRequest(
                        channel=notice.channel, text=notice.text, idempotency_key=notice.key, format=False
                    ),
                    **MAINTENANCE,
                    summary="slack: tell a channel its schedule missed runs",
                )
            except ActivityError as err:
                workflow.logger.warning("could not post a missed-run notice", extra={"error": str(err.cause)})
        mcp = await self._refresh_mcp(request) if workflow.patched(MCP_REFRESH_PATCH) else McpRefreshResult()
        return MaintenanceReport(
            partitions=partitions,
            claims=claims,
            schedules=schedules,
            mcp_refreshed=mcp.refreshed,
            mcp_unreachable=mcp.unreachable,
        )

    async def _refresh_mcp(self, request: MaintenanceInput) -> McpRefreshResult:
        try:
            return await workflow.execute_activity_method(
                McpActivities.refresh,
                McpRefreshRequest(stale_after_hours=request.mcp_refresh_hours),
                **MCP_REFRESH,
                summary=f"MCP: list again the servers' tools older than {request.mcp_refresh_hours} h",
            )
        except ActivityError as err:
            workflow.logger.error("MCP catalog refresh failed", extra={"error": str(err.cause)})
            return McpRefreshResult()
