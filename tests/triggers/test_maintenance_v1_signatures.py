"""A v1 webhook signature (deprecated) is remembered in ``webhook_deliveries`` (source
``webhook_v1_signature``) only to refuse its replay under another delivery id; once its
timestamp is past the tolerance no replay verifies, and maintenance prunes the row. Real
``LucyMaintenanceWorkflow`` on the Temporal dev server, real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from capabilities.proactive.contracts.maintenance import MaintenanceInput, MaintenanceReport
from capabilities.triggers.rules import V1_SIGNATURE_KEPT, V1_SIGNATURE_SOURCE
from lucy.contracts.ids import MAINTENANCE_WORKFLOW_NAME
from lucy.db.repositories.tenants import set_tenant, upsert_workspace
from lucy.db.repositories.webhooks import claim_delivery
from lucy.db.session import create_sessionmaker
from tests.conftest import Lucy, new_team


async def _claim(lucy: Lucy, workspace_id: uuid.UUID, source: str, external_id: str, at: datetime) -> None:
    async with create_sessionmaker(lucy.engine).begin() as session:
        await set_tenant(session=session, workspace_id=workspace_id)
        await claim_delivery(
            session=session,
            workspace_id=workspace_id,
            source=source,
            external_id=external_id,
            event_type=None,
            payload={"delivery": "d-1"},
            now=at,
        )


async def _sources(lucy: Lucy, workspace_id: uuid.UUID) -> list[tuple[str, str]]:
    async with lucy.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT source, external_id FROM webhook_deliveries WHERE workspace_id = :w ORDER BY 1, 2"),
            {"w": workspace_id},
        )
        return [(r.source, r.external_id) for r in rows]


async def test_maintenance_prunes_v1_signatures_past_the_tolerance_and_nothing_else(lucy: Lucy):
    async with create_sessionmaker(lucy.engine).begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=new_team())
    now = datetime.now(UTC)
    old = now - V1_SIGNATURE_KEPT - timedelta(minutes=5)
    await _claim(lucy, workspace_id, V1_SIGNATURE_SOURCE, "wh_old:sig", old)
    await _claim(lucy, workspace_id, V1_SIGNATURE_SOURCE, "wh_new:sig", now)
    await _claim(lucy, workspace_id, "webhook", "wh_old:d-1", old)  # a delivery: kept

    report = await lucy.client.execute_workflow(
        MAINTENANCE_WORKFLOW_NAME,
        MaintenanceInput(),
        id=f"lucy-maintenance-v1-{uuid.uuid4().hex[:8]}",
        task_queue=lucy.settings.temporal.temporal_task_queue,
        result_type=MaintenanceReport,
    )

    assert await _sources(lucy, workspace_id) == [
        ("webhook", "wh_old:d-1"),
        (V1_SIGNATURE_SOURCE, "wh_new:sig"),
    ]
    assert report.claims.v1_signatures_pruned >= 1
