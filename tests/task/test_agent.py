"""The agent loop end to end: signed Slack requests through the real ingress, the real worker and
activities on the Temporal dev server, real Postgres, and fake Slack / LLM / OpenClaw gateway
servers speaking their wire protocols."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import text
from temporalio.client import WorkflowExecutionStatus

from lucy.contracts.ids import task_workflow_id
from tests.conftest import Lucy, eventually, mention_event, new_team, record_history
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack


def _with_actions(slack: FakeSlack, channel: str, action_id: str) -> dict[str, Any] | None:
    return slack.with_actions(channel, action_id)


def _ephemerals_for(slack: FakeSlack, user: str) -> list[str]:
    return [e["text"] for e in slack.ephemerals if e.get("user") == user]


async def test_exec_waits_for_an_authorized_approval_and_runs_once(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    team = new_team()
    fake_llm.then(content="Let me look.", tool_calls=[("exec", '{"command": "ls -la /srv"}')])
    fake_llm.then(content="The folder holds **3 files**.")
    event = mention_event(team=team, text="what is in /srv on the box?")
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    assert (await lucy.post_event(event)).status_code == 200

    approval = await eventually(
        lambda: _with_actions(fake_slack, ev["channel"], "lucy_approve"), "approval message"
    )
    assert approval["thread_ts"] == ev["ts"]
    shown = json.dumps(approval["blocks"])
    assert (
        "ls -la /srv" in shown and "high risk" in shown and "Who may decide" in shown and "Expires" in shown
    )
    handle = lucy.client.get_workflow_handle(workflow_id)
    for _ in range(200):  # the message is posted a moment before the workflow starts waiting
        status = await handle.query("status")
        if status["status"] == "pending_approval":
            break
        await asyncio.sleep(0.02)
    assert status["status"] == "pending_approval" and status["pending_approval"]["tool"] == "exec"
    assert fake_gateway.commands() == []

    # A member who is not an approver, then the requester (high risk): refused, nothing changes.
    for user, expected in [
        ("U0MALLORY", "You can't decide this one"),
        ("U0ALICE", "someone else must approve"),
    ]:
        response = await lucy.click(approval, "lucy_approve", team=team, user=user)
        assert response.status_code == 200
        told = await eventually(lambda u=user: _ephemerals_for(fake_slack, u), f"ephemeral for {user}")
        assert expected in told[0]
    assert (await handle.query("status"))["status"] == "pending_approval"

    # Two admins click at once, one of them twice: exactly one decision.
    clicks = await asyncio.gather(
        lucy.click(approval, "lucy_approve", team=team, user="UADMIN1"),
        lucy.click(approval, "lucy_approve", team=team, user="UADMIN1"),
        lucy.click(approval, "lucy_approve", team=team, user="UOWNER1"),
    )
    assert [c.status_code for c in clicks] == [200, 200, 200]
    result = await asyncio.wait_for(handle.result(), 30)
    assert result["status"] == "completed"
    assert fake_gateway.commands() == ["ls -la /srv"], "the command ran exactly once"

    posts = fake_slack.posted(ev["channel"])
    assert "3 files" in posts[-1]["text"]
    # The approval message now says who decided, in place of its buttons.
    decided = [u for u in fake_slack.updates if u["ts"] == approval["ts"]]
    assert len(decided) == 1 and "Approved by <@U" in decided[0]["text"]
    assert "actions" not in json.dumps(decided[0]["blocks"])
    # The losers of the race were told, in plain words.
    late = _ephemerals_for(fake_slack, "UADMIN1") + _ephemerals_for(fake_slack, "UOWNER1")
    assert len(late) == 2 and all("already" in t or "not waiting" in t for t in late), late

    async with lucy.engine.connect() as conn:
        task = (
            await conn.execute(
                text("SELECT id, status FROM tasks WHERE workflow_id = :w"), {"w": workflow_id}
            )
        ).one()
        assert task.status == "completed"
        steps = (
            await conn.execute(
                text("SELECT kind, name, status FROM task_steps WHERE task_id = :t ORDER BY step_index"),
                {"t": task.id},
            )
        ).all()
        assert [tuple(s) for s in steps] == [
            ("llm_call", "classify", "completed"),
            ("llm_call", "default tier", "completed"),
            ("approval_wait", "exec", "completed"),
            ("tool_use", "exec", "completed"),
            ("llm_call", "default tier", "completed"),
        ]
        approvals = (
            await conn.execute(
                text(
                    "SELECT a.status, a.risk_level, u.slack_user_id FROM approvals a "
                    "JOIN users u ON u.id = a.decided_by WHERE a.task_id = :t"
                ),
                {"t": task.id},
            )
        ).all()
        assert len(approvals) == 1 and approvals[0][:2] == ("approved", "high")
        assert approvals[0][2] in ("UADMIN1", "UOWNER1")
        costs = (
            await conn.execute(text("SELECT count(*) FROM cost_log WHERE task_id = :t"), {"t": task.id})
        ).scalar()
        assert costs == 3
        audit = (
            await conn.execute(
                text("SELECT action, actor_id FROM audit_log WHERE workflow_id = :w ORDER BY created_at"),
                {"w": workflow_id},
            )
        ).all()
        assert [a.action for a in audit] == [
            "approval.requested",
            "approval.approved",
            "tool.completed",
            "task.completed",
        ]
        assert audit[1].actor_id == approvals[0][2]
        requested = (
            await conn.execute(
                text(
                    "SELECT details FROM audit_log WHERE workflow_id = :w AND action = 'approval.requested'"
                ),
                {"w": workflow_id},
            )
        ).scalar_one()
        assert (
            requested["arguments"] == {"command": "ls -la /srv"} and len(requested["arguments_sha256"]) == 64
        )

    desc = await handle.describe()
    sa = {p.key.name: p.value for p in desc.typed_search_attributes}
    assert sa["LucyStatus"] == "completed" and sa["LucyIntent"] == "chat"
    await record_history(lucy, workflow_id, "lucy_task_agent_approval")


async def test_cancel_button_while_waiting_for_approval(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    team = new_team()
    fake_llm.then(tool_calls=[("exec", '{"command": "make deploy"}')])
    event = mention_event(team=team, text="deploy it")
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    assert (await lucy.post_event(event)).status_code == 200
    progress = await eventually(
        lambda: _with_actions(fake_slack, ev["channel"], "lucy_cancel"), "progress message"
    )
    approval = await eventually(lambda: _with_actions(fake_slack, ev["channel"], "lucy_approve"), "approval")

    handle = lucy.client.get_workflow_handle(workflow_id)
    for _ in range(200):
        if (await handle.query("status"))["status"] == "pending_approval":
            break
        await asyncio.sleep(0.02)
    status = (await lucy.command(f"status {workflow_id}", team=team)).json()["text"]
    assert "is pending_approval" in status and "so far" in status
    assert "Waiting for a workspace admin to approve `gateway exec: make deploy` (high risk)" in status

    # Someone else's Cancel is refused; the requester's stops the task.
    await lucy.click(progress, "lucy_cancel", team=team, user="U0MALLORY")
    told = await eventually(lambda: _ephemerals_for(fake_slack, "U0MALLORY"), "refusal")
    assert "Only the person who asked" in told[0]
    assert (await lucy.click(progress, "lucy_cancel", team=team, user="U0ALICE")).status_code == 200
    result = await asyncio.wait_for(handle.result(), 30)
    assert result["status"] == "cancelled"
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert fake_gateway.commands() == []
    texts = [p["text"] for p in fake_slack.posted(ev["channel"])]
    assert "Cancelled by <@U0ALICE>: I stopped working on this, as requested." in texts
    updated = {u["ts"]: u["text"] for u in fake_slack.updates}
    assert updated[progress["ts"]] == "Cancelled by <@U0ALICE>."
    assert "Cancelled with the task" in updated[approval["ts"]]
    async with lucy.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT t.status, a.status FROM tasks t JOIN approvals a ON a.task_id = t.id WHERE t.workflow_id = :w"
                ),
                {"w": workflow_id},
            )
        ).one()
        assert tuple(row) == ("cancelled", "cancelled")
    # A click from another workspace on this task's button is refused before it reaches Temporal.
    other = new_team()
    await lucy.click(progress, "lucy_cancel", team=other, user="U0EVE")
    foreign = await eventually(lambda: _ephemerals_for(fake_slack, "U0EVE"), "foreign click")
    assert foreign == ["That button is not valid."]
    # A click on the old approval now changes nothing and says why.
    await lucy.click(approval, "lucy_approve", team=team, user="UADMIN1")
    late = await eventually(lambda: _ephemerals_for(fake_slack, "UADMIN1"), "late click")
    assert "finished" in late[0] or "not waiting" in late[0]


async def test_thread_replies_reach_the_running_task_then_start_a_follow_up(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    team = new_team()
    fake_gateway.pages["https://status.example.com"] = ("Status", "All systems operational")
    fake_llm.then(tool_calls=[("web_fetch", '{"url": "https://status.example.com"}')], delay=1.0)
    fake_llm.then(content="Everything is up, and I checked staging as you asked.")
    event = mention_event(team=team, text="is the site up?")
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    assert (await lucy.post_event(event)).status_code == 200
    await eventually(lambda: fake_llm.task_requests, "the first model call")

    def reply(text_: str, ts: str) -> dict[str, Any]:
        return {
            "team_id": team,
            "api_app_id": "A0LUCY",
            "type": "event_callback",
            "event_id": f"Ev{ts.replace('.', '')}",
            "event_time": 1,
            "event": {
                "type": "message",
                "channel_type": "channel",
                "user": "U0BOB",
                "text": text_,
                "ts": ts,
                "thread_ts": ev["ts"],
                "channel": ev["channel"],
            },
        }

    mid = reply("check staging too please", f"{float(ev['ts']) + 0.5:.6f}")
    assert (await lucy.post_event(mid)).status_code == 200
    assert (await lucy.post_event(mid, headers={"X-Slack-Retry-Num": "1"})).status_code == 200  # redelivery
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 30)
    assert result["status"] == "completed"
    seen = [
        m["content"]
        for m in fake_llm.task_requests[-1]["messages"]
        if "check staging" in (m.get("content") or "")
    ]
    # Bob is not the requester: his words reach the model as quoted information, not instructions.
    assert len(seen) == 1 and "not from the person you work for" in seen[0]
    assert '<message from="U0BOB">\ncheck staging too please\n</message>' in seen[0]

    # After the task ended, a reply starts a follow-up task that sees the thread so far.
    fake_llm.then(content="Staging is up too.")
    later = reply("and is staging still up?", f"{float(ev['ts']) + 60:.6f}")
    assert (await lucy.post_event(later)).status_code == 200
    follow_up = task_workflow_id(team, ev["channel"], later["event"]["ts"])
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(follow_up).result(), 30)
    assert result["status"] == "completed"
    last = fake_llm.task_requests[-1]["messages"]
    assert any(m["role"] == "assistant" and "Everything is up" in (m.get("content") or "") for m in last)
    assert last[-1] == {"role": "user", "content": "and is staging still up?"}
    # Chatter in a thread that is not Lucy's starts nothing.
    stray = reply("unrelated", f"{float(ev['ts']) + 90:.6f}")
    stray["event"]["thread_ts"] = "1111.2222"
    assert (await lucy.post_event(stray)).status_code == 200
    async with lucy.engine.connect() as conn:
        count = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM tasks t JOIN workspaces w ON w.id = t.workspace_id WHERE w.slack_team_id = :t"
                ),
                {"t": team},
            )
        ).scalar()
        assert count == 2


async def test_an_admin_decides_from_app_home(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    team = new_team()
    fake_llm.then(tool_calls=[("write_file", '{"path": "/srv/motd", "content": "hello"}')])
    fake_llm.then(content="Written.")
    event = mention_event(team=team, text="put hello in /srv/motd")
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    assert (await lucy.post_event(event)).status_code == 200
    await eventually(lambda: _with_actions(fake_slack, ev["channel"], "lucy_approve"), "approval message")

    # Nobody was designated, so it waits for an admin: listed for an admin, not for a member.
    listed = (await lucy.command("approvals", team=team, user="UADMIN7")).json()["text"]
    assert "gateway write: /srv/motd" in listed
    member = (await lucy.command("approvals", team=team, user="U0MALLORY")).json()["text"]
    assert member == "Nothing is waiting for your approval."

    opened = {
        "team_id": team,
        "api_app_id": "A0LUCY",
        "type": "event_callback",
        "event_id": "EvHOME7",
        "event_time": 1,
        "event": {"type": "app_home_opened", "user": "UADMIN7", "channel": "D0ADMIN7", "tab": "home"},
    }
    assert (await lucy.post_event(opened)).status_code == 200
    view = await eventually(lambda: fake_slack.views.get("UADMIN7"), "home view")
    home_message = {"ts": "0", "blocks": view["blocks"]}  # a click in Home carries the view, not a message
    response = await lucy.click(home_message, "lucy_approve", team=team, user="UADMIN7", channel="")
    assert response.status_code == 200
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 30)
    assert result["status"] == "completed"
    assert fake_gateway.files == {"/srv/motd": "hello"}
    # The Home tab was published again, without the decided approval.
    await eventually(
        lambda: "gateway write" not in json.dumps(fake_slack.views["UADMIN7"]),
        "home refreshed after the click",
    )


async def test_browser_and_file_tools_through_the_real_worker(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_camofox: Any
):
    """Low-risk tools run without asking: the browser's tab is carried between calls, and a
    generated spreadsheet lands in the thread through Slack's external upload."""
    team = new_team()
    fake_llm.then(tool_calls=[("browser", '{"action": "open", "url": "https://example.com/"}')])
    fake_llm.then(tool_calls=[("browser", '{"action": "snapshot"}')])
    rows = json.dumps([["page", "links"], ["Example Domain", 1]])
    fake_llm.then(
        tool_calls=[
            (
                "create_file",
                json.dumps({"format": "xlsx", "filename": "pages.xlsx", "rows": json.loads(rows)}),
            )
        ]
    )
    fake_llm.then(content="I put the page list in pages.xlsx.")
    event = mention_event(team=team, text="list the pages on example.com in a spreadsheet")
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    assert (await lucy.post_event(event)).status_code == 200
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 30)
    assert result["status"] == "completed"
    # The second browser call reused the tab the first opened (no second POST /tabs).
    tool_results = [m["content"] for m in fake_llm.task_requests[2]["messages"] if m["role"] == "tool"]
    assert "Example Domain" in tool_results[0] and "Example Domain" in tool_results[1]
    assert [r["action"] for r in fake_camofox.requests].count("open") == 1
    (shared,) = fake_slack.shared_files(ev["channel"])
    assert shared["thread_ts"] == ev["ts"] and shared["title"] == "pages.xlsx"
    from io import BytesIO

    from openpyxl import load_workbook

    sheet = load_workbook(BytesIO(shared["content"])).active
    assert [[c.value for c in r] for r in sheet.iter_rows()] == [["page", "links"], ["Example Domain", 1]]
    assert not [a for a in fake_slack.posted(ev["channel"]) if "lucy_approve" in json.dumps(a.get("blocks"))]
