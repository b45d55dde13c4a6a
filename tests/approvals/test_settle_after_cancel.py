"""A task cancelled while its approval message is being posted: the message Slack did post is
still rewritten (no buttons, "Cancelled with the task"), and a retried settle changes nothing twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import ActivityEnvironment

from capabilities.approvals.activities.requests import ApprovalActivities
from capabilities.approvals.contracts import ApprovalDecisionKind, ApprovalSettled
from capabilities.task.activities.slack import ChannelPacer, SlackActivities
from lucy.contracts.ids import task_workflow_id
from lucy.db.session import create_sessionmaker
from tests.conftest import Lucy, eventually, mention_event, new_team
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack


def _buttons(message: dict[str, Any]) -> list[str]:
    return [
        e.get("action_id", "")
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for e in block["elements"]
    ]


async def _row(lucy: Lucy, workflow_id: str) -> tuple[str, str | None, str | None]:
    async with lucy.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT a.status, a.slack_channel_id, a.slack_message_ts FROM approvals a "
                    "JOIN tasks t ON a.task_id = t.id WHERE t.workflow_id = :w"
                ),
                {"w": workflow_id},
            )
        ).one()
    return row[0], row[1], row[2]


async def _cancel_audits(lucy: Lucy, approval_id: str) -> int:
    async with lucy.engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT count(*) FROM audit_log WHERE entity_id = :a AND action = 'approval.cancelled'"),
                {"a": approval_id},
            )
        ).scalar_one()


async def _cancel_while_posting(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
) -> tuple[str, dict[str, Any], asyncio.Event]:
    """A task whose approval message Slack has posted but not yet answered for, cancelled."""
    team = new_team()
    fake_llm.then(tool_calls=[("exec", '{"command": "make deploy"}')])
    release = fake_slack.hold_answer(
        "chat.postMessage", lambda p: str(p.get("text", "")).startswith("Approval needed")
    )
    event = mention_event(team=team, text="deploy it")
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    assert (await lucy.post_event(event)).status_code == 200
    # The progress message (and its Cancel button) comes after the approval: /lucy cancel it is,
    # well within the Slack client's timeout (15 s), so the posting activity is still waiting.
    approval = await eventually(lambda: fake_slack.with_actions(ev["channel"], "lucy_approve"), "approval")
    reply = (await lucy.command(f"cancel {workflow_id}", team=team, user="U0ALICE")).json()["text"]
    assert "ancel" in reply
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 30)
    assert result["status"] == "cancelled"
    return workflow_id, approval, release


async def test_an_approval_posted_while_the_task_is_cancelled_loses_its_buttons(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    workflow_id, approval, release = await _cancel_while_posting(lucy, fake_slack, fake_llm)
    # The workflow settled the approval before Slack answered for the message.
    assert (await _row(lucy, workflow_id))[0] == "cancelled"
    release.set()  # Slack answers at last; the posting activity learns the ts
    decided = await eventually(
        lambda: [u for u in fake_slack.updates if u["ts"] == approval["ts"]], "the approval rewritten"
    )
    assert len(decided) == 1 and "Cancelled with the task" in decided[0]["text"]
    assert _buttons(decided[0]) == []
    held = [m for m in fake_slack.posted(approval["channel"]) if m["ts"] == approval["ts"]]
    assert held and "lucy_approve" not in _buttons(held[0]), "Slack shows no buttons any more"
    assert await _row(lucy, workflow_id) == ("cancelled", approval["channel"], approval["ts"])
    assert fake_gateway.commands() == []


async def test_a_settle_without_a_ts_reads_it_from_the_record_and_a_retry_changes_nothing(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, engine: AsyncEngine
):
    """The other order: the post's ts is recorded before the settle runs without one."""
    workflow_id, approval, release = await _cancel_while_posting(lucy, fake_slack, fake_llm)
    release.set()
    await eventually(lambda: [u for u in fake_slack.updates if u["ts"] == approval["ts"]], "the rewrite")
    async with lucy.engine.begin() as conn:  # as if the posting had finished before the cancel
        await conn.execute(
            text(
                "UPDATE approvals SET status = 'pending', decided_at = NULL, decided_by = NULL, "
                "details = details - 'decision_shown_ts' "
                "WHERE task_id = (SELECT id FROM tasks WHERE workflow_id = :w)"
            ),
            {"w": workflow_id},
        )
        ids = (
            await conn.execute(
                text(
                    "SELECT a.id, a.workspace_id FROM approvals a JOIN tasks t ON a.task_id = t.id WHERE t.workflow_id = :w"
                ),
                {"w": workflow_id},
            )
        ).one()
    fake_slack.updates.clear()
    settled = ApprovalSettled(
        workflow_id=workflow_id,
        workspace_id=str(ids[1]),
        approval_id=str(ids[0]),
        decision=ApprovalDecisionKind.CANCELLED,
        decided_at=datetime.now(UTC).isoformat(),
        slack_channel_id=approval["channel"],
        message_ts=None,  # the workflow never learnt it
        summary="gateway exec: make deploy",
        risk_level="high",
        decided_by_slack_id="U0ALICE",
    )
    client = AsyncWebClient(token=fake_slack.token, base_url=fake_slack.api_url, retry_handlers=[])
    activities = ApprovalActivities(create_sessionmaker(engine), SlackActivities(client, ChannelPacer(0)))
    env = ActivityEnvironment()
    audits_before = await _cancel_audits(lucy, str(ids[0]))
    assert await env.run(activities.settle, settled) is True
    assert await env.run(activities.settle, settled) is False  # a retry: written once
    updates = [u for u in fake_slack.updates if u["ts"] == approval["ts"]]
    assert len(updates) == 1, "updated once"
    assert "Cancelled with the task by <@U0ALICE>" in updates[0]["text"] and _buttons(updates[0]) == []
    assert await _cancel_audits(lucy, str(ids[0])) == audits_before + 1, "written once"
