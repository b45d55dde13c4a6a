"""Maintenance activities, run by ``LucyMaintenanceWorkflow`` on the ``lucy-maintenance`` schedule.

They run as the application role, through two narrow SECURITY DEFINER functions (migration
0007), so the worker needs no owner connection: ``lucy_maintain_partitions`` drains the
default partitions and keeps this month and the next ones ready, and ``lucy_stale_claims``
lists task rows still ``created`` in every workspace; ``lucy_budget_sweep`` (migration 0010)
releases budget holds of crashed model calls. Dropping months past retention is
destructive and stays with the schema owner: it runs here only when the worker was given
``LUCY_DATABASE_MIGRATION_URL``, otherwise with ``lucy db partitions``.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from capabilities.budgets.repository import due_warnings, sweep
from capabilities.budgets.rules import WARN_SHARE, defaults_from, warning_sentence
from capabilities.proactive.contracts.maintenance import (
    MaintenanceInput,
    PartitionsResult,
    ReconcileRequest,
    ReconcileResult,
)
from capabilities.task.repository import record_task_finished
from capabilities.tools.activities.liveness import beat
from capabilities.triggers.rules import V1_SIGNATURE_KEPT
from lucy.contracts.ids import TaskStatus
from lucy.db import partitions
from lucy.db.repositories.tenants import tenant_transaction
from lucy.db.repositories.webhooks import prune_v1_signatures
from lucy.db.session import create_sessionmaker
from lucy.settings import BudgetSettings

NO_OWNER = (
    "retention not applied here (run `lucy db partitions` as the owner, "
    "or give the worker LUCY_DATABASE_MIGRATION_URL)"
)
_BATCH = 200


class MaintenanceActivities:
    def __init__(
        self,
        engine: AsyncEngine,
        temporal: Client,
        *,
        retention_months: int,
        owner_engine: AsyncEngine | None = None,
        slack: AsyncWebClient | None = None,
        budgets: BudgetSettings | None = None,
    ) -> None:
        self._engine = engine
        self._owner = owner_engine
        self._temporal = temporal
        self._retention = retention_months
        self._slack = slack
        self._budget_defaults = defaults_from(budgets or BudgetSettings())

    @activity.defn(name="maintenance.partitions")
    async def partitions(self, request: MaintenanceInput) -> PartitionsResult:
        """Rows waiting in the default partitions moved to their months, months ahead created
        (idempotent); months past retention dropped when the owner connection is configured."""
        async with self._engine.begin() as conn:
            raw = (
                await conn.execute(text("SELECT lucy_maintain_partitions(:n)"), {"n": request.months_ahead})
            ).scalar_one()
        report = raw if isinstance(raw, dict) else json.loads(raw)
        created = [str(n) for n in report.get("created") or []]
        drained = {str(k): int(v) for k, v in (report.get("drained") or {}).items()}
        dropped: list[str] = []
        skipped: str | None = NO_OWNER
        if self._owner is not None:
            async with self._owner.begin() as conn:
                dropped = await partitions.drop_expired(
                    conn, today=datetime.now(UTC).date(), retention_months=self._retention
                )
            skipped = None
        if created or dropped or drained:
            activity.logger.info(
                "partitions maintained",  # (not "created": a reserved LogRecord attribute)
                extra={"partitions_created": created, "partitions_dropped": dropped, "rows_drained": drained},
            )
        return PartitionsResult(created=created, dropped=dropped, drained=drained, skipped=skipped)

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
        Slack stopped redelivering. Rows whose workflow exists are left to it.

        Also sweeps budget holds past their expiry (a worker died mid-call), in every
        workspace, so no crashed call keeps budget forever (``lucy_budget_sweep``), prunes the
        remembered v1 webhook signatures past their tolerance (``lucy_prune_v1_signatures``),
        and sends the 80% budget notices."""
        sessions = create_sessionmaker(self._engine)
        async with sessions.begin() as session:
            released = await sweep(session=session, now=datetime.now(UTC))
        if released:
            activity.logger.warning("expired budget holds released", extra={"count": released})
        async with sessions.begin() as session:  # v1 signatures no replay can match any more
            pruned = await prune_v1_signatures(session=session, before=datetime.now(UTC) - V1_SIGNATURE_KEPT)
        warned = await self._budget_warnings(sessions)
        async with sessions.begin() as session:
            stale = (
                await session.execute(
                    text("SELECT workspace_id, workflow_id FROM lucy_stale_claims(:older, :max)"),
                    {"older": timedelta(minutes=request.stale_claim_minutes), "max": _BATCH},
                )
            ).all()
        checked = 0
        orphaned: list[str] = []
        for workspace_id, workflow_id in stale:
            checked += 1
            beat(checked)
            if await self._has_workflow(workflow_id):
                continue
            async with tenant_transaction(sessions, uuid.UUID(str(workspace_id))) as session:
                moved = await record_task_finished(
                    session=session,
                    workspace_id=uuid.UUID(str(workspace_id)),
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
        return ReconcileResult(
            checked=checked,
            orphaned=orphaned,
            budget_holds_released=released,
            budget_warnings=warned,
            v1_signatures_pruned=pruned,
        )

    async def _budget_warnings(self, sessions: async_sessionmaker[AsyncSession]) -> int:
        """Tell each workspace's admins (by DM) once a month when a monthly budget passes 80%.
        At most once: the scope is marked before the DMs go out, and a DM Slack refuses is
        logged, not retried. Without a Slack client nothing is marked."""
        if self._slack is None:
            return 0
        async with sessions.begin() as session:
            due = await due_warnings(
                session=session, now=datetime.now(UTC), defaults=self._budget_defaults, share=WARN_SHARE
            )
        sent = 0
        for warning in due:
            words = warning_sentence(
                subject=warning.subject, limit_usd=warning.limit_usd, spent_usd=warning.spent_usd
            )
            for admin in warning.admins:
                try:
                    await self._slack.chat_postMessage(channel=admin, text=words)
                    sent += 1
                except SlackApiError as exc:
                    activity.logger.warning(
                        "budget notice not delivered", extra={"error": str(exc.response.get("error"))}
                    )
        return sent
