"""Budgets end to end, through signed Slack requests and the real worker: an admin sets a budget
(bad input refused, nothing lost), a task runs until the budget is reached mid-task, its thread
says what was done and who can raise it, the next mention is refused at ingress without a
workflow, the admin raises the budget and work continues; ``/lucy usage`` shows the spend."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from lucy.contracts.ids import task_workflow_id
from lucy.db.models import AuditLog, Budget, Task, Workspace
from lucy.settings import Settings, load_settings
from tests.conftest import Lucy, eventually, mention_event, new_team, running_lucy
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack
from tests.ingress.test_commands_and_limits import _flat

ADMIN = "UADMIN1"


async def _result(lucy: Lucy, event: dict[str, Any]) -> tuple[str, Any]:
    ev = event["event"]
    workflow_id = task_workflow_id(event["team_id"], ev["channel"], ev["ts"])
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), timeout=60)
    return workflow_id, result


async def _say(lucy: Lucy, team: str, words: str, user: str = ADMIN) -> str:
    r = await lucy.command(words, team=team, user=user)
    assert r.status_code == 200
    return str(r.json()["text"])


async def test_budget_reached_mid_task_then_refused_at_ingress_then_raised(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    engine: AsyncEngine,
    admin_engine: AsyncEngine,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
    fake_gateway: FakeGateway,
):
    tuned = load_settings(
        **{**_flat(settings), "budget_estimate_usd_per_mtok": 10, "budget_estimate_max_tokens": 50}
    )
    async with running_lucy(tuned, temporal_env.client, engine, admin_engine) as lucy:
        team = new_team()
        # Bad input gets a clear error and changes nothing.
        assert "can't be negative" in await _say(lucy, team, "budget -5")
        assert "is not an amount in US dollars" in await _say(lucy, team, "budget lots")
        assert "is not an amount in US dollars" in await _say(lucy, team, "budget 1e9")
        assert "more than the largest budget" in await _say(lucy, team, "budget 5000000")
        assert "Say `daily` or `monthly`" in await _say(lucy, team, "budget user 5")
        assert "Only a workspace admin" in await _say(lucy, team, "budget 1", user="U0ALICE")
        async with admin_engine.connect() as conn:
            assert (await conn.execute(select(Budget).where(Budget.updated_by == ADMIN))).all() == []
        assert "is now $1.00" in await _say(lucy, team, "budget 1")

        fake_gateway.files["/srv/notes.txt"] = "the notes"
        fake_llm.then(tool_calls=[("read_file", '{"path": "/srv/notes.txt"}')], cost=0.999)
        fake_llm.then(content="this step must never run", cost=0.001)
        first = mention_event(team=team, text="read /srv/notes.txt and summarise it")
        assert (await lucy.post_event(first)).status_code == 200
        workflow_id, result = await _result(lucy, first)
        assert (result["status"], result["error_type"]) == ("failed", "BudgetExceeded")
        assert not any("must never run" in str(p) for p in fake_slack.posted())
        stopped = fake_slack.posted(first["event"]["channel"])[-1]["text"]
        assert "I stopped before my next step" in stopped
        assert "monthly Lucy budget of $1.00 is used up" in stopped
        assert "/lucy budget" in stopped and "read_file" in stopped  # who can raise it; what was done
        desc = await lucy.client.get_workflow_handle(workflow_id).describe()
        assert {p.key.name: p.value for p in desc.typed_search_attributes}[
            "LucyStatus"
        ] == "stopped_by_budget"
        assert "stopped_by_budget" in await _say(lucy, team, f"status {workflow_id}")
        async with admin_engine.connect() as conn:
            row = (await conn.execute(select(Task).where(Task.workflow_id == workflow_id))).one()
            assert (row.status, row.error_type) == ("failed", "BudgetExceeded")

        # The next mention is refused at ingress, in the same plain words: no workflow, no model call.
        calls = len(fake_llm.requests)
        second = mention_event(team=team, text="and another thing")
        assert (await lucy.post_event(second)).status_code == 200
        note = await eventually(
            lambda: [e for e in fake_slack.ephemerals if "budget" in e["text"]], "the budget refusal"
        )
        assert "monthly Lucy budget of $1.00 is used up" in note[0]["text"]
        assert len(fake_llm.requests) == calls
        ev = second["event"]
        refused_id = task_workflow_id(team, ev["channel"], ev["ts"])
        assert [w async for w in lucy.client.list_workflows(f"WorkflowId = '{refused_id}'")] == []
        async with admin_engine.connect() as conn:
            row = (await conn.execute(select(Task).where(Task.workflow_id == refused_id))).one()
            assert (row.status, row.error_type) == ("cancelled", "Refused")

        # The admin raises the budget (audited) and work continues.
        assert "is now $5.00" in await _say(lucy, team, "budget 5")
        async with admin_engine.connect() as conn:
            audit = (
                await conn.execute(
                    select(AuditLog.after_state)
                    .join(Workspace, Workspace.id == AuditLog.workspace_id)
                    .where(Workspace.slack_team_id == team, AuditLog.action == "budget.changed")
                )
            ).all()
        assert sorted(a.after_state["limit_usd"] for a in audit) == ["1", "5"]
        fake_llm.reset()
        fake_llm.then(content="All good now.", cost=0.01)
        third = mention_event(team=team, text="try again please")
        assert (await lucy.post_event(third)).status_code == 200
        _, result = await _result(lucy, third)
        assert result["status"] == "completed"
        assert "All good now." in fake_slack.posted(third["event"]["channel"])[-1]["text"]

        usage = await _say(lucy, team, "usage")
        assert "of $5.00" in usage and "<@U0ALICE>" in usage and "$1.01" in usage
        opened = {
            "team_id": team,
            "api_app_id": "A0LUCY",
            "type": "event_callback",
            "event_id": "EvBUDGETHOME",
            "event_time": 1,
            "event": {"type": "app_home_opened", "user": ADMIN, "channel": "D0ADMIN", "tab": "home"},
        }
        assert (await lucy.post_event(opened)).status_code == 200
        home = json.dumps(fake_slack.views[ADMIN])
        assert '"Budget"' in home and "$1.01 of $5.00 this month" in home
        mine = await _say(lucy, team, "usage", user="U0BOB")
        assert "<@U0ALICE>" not in mine and "no model calls this month" in mine
