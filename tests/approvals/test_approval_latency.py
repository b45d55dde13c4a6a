"""[speed] An approval click to a running tool: once the click is verified (by a local activity,
inside the click's own workflow task), the approved tool starts at once and the decision's
record and message (``approvals.settle``) are made alongside it, not before it. Nothing is lost:
the decision is recorded and shown, the click's caller learns the outcome, the command runs once."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import text
from temporalio.api.enums.v1 import EventType

from lucy.contracts.ids import task_workflow_id
from tests.conftest import Lucy, eventually, mention_event, new_team, record_history
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack


async def test_the_approved_tool_runs_while_the_decision_is_shown(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    team = new_team()
    fake_llm.then(content="Let me look.", tool_calls=[("exec", '{"command": "uptime --parallel"}')])
    fake_llm.then(content="Up for **3 days**.")
    event = mention_event(team=team, text="how long has the box been up?")
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    assert (await lucy.post_event(event)).status_code == 200
    approval = await eventually(
        lambda: fake_slack.with_actions(ev["channel"], "lucy_approve"), "approval message"
    )
    handle = lucy.client.get_workflow_handle(workflow_id)
    # Slack shows the decision at once but answers the chat.update only when released: the
    # settle is held in the middle, and the tool must not wait for it.
    release = fake_slack.hold_answer("chat.update", lambda p: p.get("ts") == approval["ts"])
    click = asyncio.create_task(lucy.click(approval, "lucy_approve", team=team, user="UADMIN1"))
    try:
        ran = await eventually(
            lambda: fake_gateway.commands() or None, "the command while the settle is held", timeout=8
        )
        assert ran == ["uptime --parallel"]
        assert not click.done() or click.result().status_code == 200
    finally:
        release.set()
    assert (await click).status_code == 200
    result = await asyncio.wait_for(handle.result(), 30)
    assert result["status"] == "completed"
    assert fake_gateway.commands() == ["uptime --parallel"], "the command ran exactly once"
    decided = [u for u in fake_slack.updates if u["ts"] == approval["ts"]]
    assert len(decided) == 1 and "Approved by <@UADMIN1>" in decided[0]["text"]
    assert "actions" not in json.dumps(decided[0]["blocks"])

    async with lucy.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT a.status, u.slack_user_id FROM approvals a JOIN users u ON u.id = a.decided_by "
                    "WHERE a.workflow_id = :w"
                ),
                {"w": workflow_id},
            )
        ).one()
        assert tuple(row) == ("approved", "UADMIN1")
        actions = (
            await conn.execute(
                text("SELECT action FROM audit_log WHERE workflow_id = :w"), {"w": workflow_id}
            )
        ).scalars()
        assert sorted(actions) == [
            "approval.approved",
            "approval.requested",
            "task.completed",
            "tool.completed",
        ]

    # Who clicked was verified inside the click's workflow task: a local activity, not a
    # scheduled one; and the settle was scheduled in the same task as the tool.
    history = await handle.fetch_history()
    scheduled = [
        (e.event_id, e.activity_task_scheduled_event_attributes.activity_type.name)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    names = [name for _, name in scheduled]
    assert "identity.verify" not in names
    assert any(e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED for e in history.events)
    settle = next(i for i, name in scheduled if name == "approvals.settle")
    tool = next(i for i, name in scheduled if name == "tools.gateway")
    between = [e.event_type for e in history.events if min(settle, tool) < e.event_id < max(settle, tool)]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED not in between, "settle and tool in one workflow task"
    await record_history(lucy, workflow_id, "lucy_task_approval_parallel")
