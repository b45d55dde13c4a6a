"""Maintenance's budget duties, for real (ActivityEnvironment, the real database, the fake Slack
Web API): a crashed call's hold is released once past its expiry, and the admins hear once a
month when a monthly budget passes 80%."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from app.worker import build_slack_client
from capabilities.budgets.repository import BudgetDefaults, reserve, set_budget, settle
from capabilities.proactive.activities.maintenance import MaintenanceActivities
from capabilities.proactive.contracts.maintenance import ReconcileRequest
from lucy.db.models import BudgetSpend
from lucy.db.repositories.tenants import set_tenant, upsert_user, upsert_workspace
from lucy.db.session import create_sessionmaker
from lucy.settings import Settings
from tests.conftest import new_team
from tests.fakes.slack import FakeSlack


async def test_sweep_releases_a_crashed_hold_and_admins_hear_once_at_80_percent(
    settings: Settings, engine: AsyncEngine, temporal_env: WorkflowEnvironment, fake_slack: FakeSlack
):
    sessions = create_sessionmaker(engine)
    admin = f"UADMIN{uuid.uuid4().hex[:6].upper()}"
    now = datetime.now(UTC)
    async with sessions.begin() as s:
        ws = await upsert_workspace(session=s, slack_team_id=new_team())
        await upsert_user(session=s, workspace_id=ws, slack_user_id=admin, role="admin")
        await upsert_user(session=s, workspace_id=ws, slack_user_id="U0MEMBER", role="member")
        await set_budget(
            session=s,
            workspace_id=ws,
            scope_key="workspace",
            period="month",
            limit_usd=Decimal(10),
            updated_by=admin,
        )
        common = {
            "session": s,
            "workspace_id": ws,
            "user_id": None,
            "model": "m",
            "defaults": BudgetDefaults(),
        }
        # A worker died mid-call an hour ago: its hold outlived its 15 minutes.
        assert (
            await reserve(
                key="crashed", amount_usd=Decimal(1), now=now - timedelta(hours=1), ttl_seconds=900, **common
            )
        ).ok
        assert (await reserve(key="done", amount_usd=Decimal(8), now=now, ttl_seconds=900, **common)).ok
        assert await settle(session=s, workspace_id=ws, key="done", cost_usd=Decimal("8.50"), now=now)

    acts = MaintenanceActivities(
        engine,
        temporal_env.client,
        retention_months=24,
        slack=build_slack_client(settings),
        budgets=settings.budget,
    )
    first = await ActivityEnvironment().run(acts.reconcile_claims, ReconcileRequest())
    assert first.budget_holds_released >= 1 and first.budget_warnings >= 1
    async with sessions.begin() as s:
        await set_tenant(session=s, workspace_id=ws)
        spend = (
            await s.execute(
                select(BudgetSpend.settled_usd, BudgetSpend.reserved_usd).where(
                    BudgetSpend.scope_key == "workspace"
                )
            )
        ).one()
    assert spend == (Decimal("8.50"), Decimal(0))
    notices = fake_slack.posted(admin)
    assert len(notices) == 1
    assert "This workspace has used $8.50 of its $10.00 monthly Lucy budget (85%)" in notices[0]["text"]
    assert fake_slack.posted("U0MEMBER") == [] or all(
        "$8.50" not in m["text"] for m in fake_slack.posted("U0MEMBER")
    )

    await ActivityEnvironment().run(acts.reconcile_claims, ReconcileRequest())
    assert len(fake_slack.posted(admin)) == 1  # once per scope per month
