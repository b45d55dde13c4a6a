"""Maintenance activities, run by ``LucyMaintenanceWorkflow`` on the ``lucy-maintenance`` schedule.

Both need the schema owner's connection (``LUCY_DATABASE_MIGRATION_URL``): creating partitions
is DDL, and finding orphaned claims means looking at every workspace. A worker without it
reports the step as skipped instead of failing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from lucy.contracts import MaintenanceInput, PartitionsResult, ReconcileRequest, ReconcileResult, TaskStatus
from lucy.db import partitions
from lucy.db import repositories as repo
from lucy.db.models import Task
from lucy.db.session import create_sessionmaker

NO_OWNER = "no owner connection (set LUCY_DATABASE_MIGRATION_URL on the worker)"
_BATCH = 200


class MaintenanceActivities:
    def __init__(self, owner_engine: AsyncEngine | None, temporal: Client, *, retention_months: int) -> None:
        self._engine = owner_engine
        self._temporal = temporal
        self._retention = retention_months

    @activity.defn(name="maintenance.partitions")
    async def partitions(self, request: MaintenanceInput) -> PartitionsResult:
        """Months ahead created, months past retention dropped (idempotent)."""
        if self._engine is None:
            return PartitionsResult(skipped=NO_OWNER)
        async with self._engine.begin() as conn:
            report = await partitions.maintain(
                conn,
                today=datetime.now(UTC).date(),
                retention_months=self._retention,
                months_ahead=request.months_ahead,
            )
        if report.created or report.dropped or report.drained:
            activity.logger.info(
                "partitions maintained",
                extra={"created": report.created, "dropped": report.dropped, "drained": report.drained},
            )
        return PartitionsResult(created=report.created, dropped=report.dropped, drained=report.drained)

    async def _has_workflow(self, workflow_id: str) -> bool:
        try:
            await self._temporal.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise  # Temporal is unwell: retry the activity later rather than guess
        return True

    @activity.defn(name="maintenance.reconcile_claims")
    async def reconcile_claims(self, request: ReconcileRequest) -> ReconcileResult:
        """Task rows still ``created`` after ``stale_claim_minutes`` whose workflow does not exist
        are recorded as failed (``NeverStarted``): ingress claimed them, the start failed, and
        Slack stopped redelivering. Rows whose workflow exists are left to it."""
        if self._engine is None:
            return ReconcileResult()
        sessions = create_sessionmaker(self._engine)
        cutoff = datetime.now(UTC) - timedelta(minutes=request.stale_claim_minutes)
        async with sessions.begin() as session:
            workspace_ids = await repo.list_workspace_ids(session=session)
        checked = 0
        orphaned: list[str] = []
        for workspace_id in workspace_ids:
            async with sessions.begin() as session:
                await repo.set_tenant(session=session, workspace_id=workspace_id)
                stale = list(
                    (
                        await session.execute(
                            select(Task.workflow_id)
                            .where(
                                Task.workspace_id == workspace_id,
                                Task.status == TaskStatus.CREATED.value,
                                Task.created_at < cutoff,
                            )
                            .limit(_BATCH)
                        )
                    ).scalars()
                )
            for workflow_id in stale:
                checked += 1
                activity.heartbeat(checked)
                if await self._has_workflow(workflow_id):
                    continue
                async with sessions.begin() as session:
                    await repo.set_tenant(session=session, workspace_id=workspace_id)
                    moved = await repo.record_task_finished(
                        session=session,
                        workspace_id=workspace_id,
                        workflow_id=workflow_id,
                        status=TaskStatus.FAILED.value,
                        completed_at=datetime.now(UTC),
                        error_type="NeverStarted",
                        error_message="the task was claimed but its workflow never started "
                        "(Temporal refused or was unreachable, and Slack stopped redelivering)",
                    )
                if moved:
                    orphaned.append(workflow_id)
        if orphaned:
            activity.logger.warning("orphaned task claims recorded as failed", extra={"count": len(orphaned)})
        return ReconcileResult(checked=checked, orphaned=orphaned)
