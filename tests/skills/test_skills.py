"""Workspace skills end to end, through the signed ``/lucy`` command, the real worker and the fake
model: add, list, use (the model loads the skill, then a tool outside its ``allowed-tools`` is
neither offered nor run), remove; another workspace never sees it; a malformed file is refused.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from lucy.contracts.ids import SA_SKILL, task_workflow_id
from tests.conftest import Lucy, eventually, mention_event, new_team, record_history
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack

REPORT = """---
name: weekly-report
description: Write the weekly report from the channel's history & <the numbers>
allowed-tools: [slack_history, mcp__github__list_issues]
model-tier: frontier
license: MIT
---
# Weekly report

1. Read the channel's last week with slack_history.
2. Summarise it in three bullets.
"""


async def said(lucy: Lucy, words: str, *, team: str, user: str = "U0ALICE") -> str:
    response = await lucy.command(words, team=team, user=user)
    assert response.status_code == 200
    return str(response.json()["text"])


async def submit_modal(lucy: Lucy, view: dict[str, Any], source: str, *, team: str) -> Any:
    """A signed ``view_submission`` of the Add skill modal holding ``source``; the app's answer."""
    values = {"skill_md": {"skill_md": {"type": "plain_text_input", "value": source}}}
    payload = {
        "type": "view_submission",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": "U0ALICE", "username": "alice", "team_id": team},
        "api_app_id": "A0LUCY",
        "token": "legacy",
        "trigger_id": "1.2",
        "view": {"id": "V1", **view, "state": {"values": values}},
    }
    response = await lucy.post_form({"payload": json.dumps(payload)})
    assert response.status_code == 200
    return response.json() if response.content else {}


def slack_escaped(source: str) -> str:
    """The text as Slack sends a slash command's text: ``&``, ``<`` and ``>`` escaped."""
    return source.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def test_add_list_show_and_versions(lucy: Lucy):
    team = new_team()
    added = await said(lucy, "skill add " + slack_escaped(REPORT), team=team)
    assert "`weekly-report`" in added and "version 1" in added
    assert "weekly report from the channel" in added and "&amp; &lt;the numbers&gt;" in added

    listed = await said(lucy, "skills", team=team)
    assert "`weekly-report` v1 (enabled), added by <@U0ALICE>" in listed

    again = await said(lucy, "skill add " + slack_escaped(REPORT.replace("three", "five")), team=team)
    assert "Updated skill `weekly-report` (version 2)" in again
    shown = await said(lucy, "skill show weekly-report", team=team)
    assert "five bullets" in shown and "v2" in shown and "slack_history, mcp__github__list_issues" in shown

    assert "disabled (version 3)" in await said(lucy, "skill disable weekly-report", team=team)
    assert "(disabled)" in await said(lucy, "skills", team=team)
    assert "enabled (version 4)" in await said(lucy, "skill enable weekly-report", team=team)
    assert "removed (version 5)" in await said(lucy, "skill remove weekly-report", team=team)
    assert "no skills yet" in await said(lucy, "skills", team=team)
    async with lucy.engine.connect() as conn:
        kept = (
            await conn.execute(
                text(
                    "SELECT array_agg(s.change ORDER BY s.version) FROM skill_versions s "
                    "JOIN workspaces w ON w.id = s.workspace_id WHERE w.slack_team_id = :t"
                ),
                {"t": team},
            )
        ).scalar_one()
    assert kept == ["added", "updated", "disabled", "enabled", "removed"]


async def test_another_workspace_never_sees_the_skill(lucy: Lucy):
    team, other = new_team(), new_team()
    assert "version 1" in await said(lucy, "skill add " + slack_escaped(REPORT), team=team)
    assert "no skills yet" in await said(lucy, "skills", team=other)
    assert "There is no skill `weekly-report`" in await said(lucy, "skill show weekly-report", team=other)
    assert "There is no skill" in await said(lucy, "skill remove weekly-report", team=other)
    assert "v1 (enabled)" in await said(lucy, "skills", team=team)


async def test_a_malformed_skill_is_refused_with_the_reason(lucy: Lucy):
    team = new_team()
    bad_name = REPORT.replace("name: weekly-report", "name: Weekly Report")
    answer = await said(lucy, "skill add " + bad_name, team=team)
    assert "can't add that skill" in answer and "`name` must be lowercase letters" in answer
    broken = await said(lucy, "skill add ---\nname: [oops\n---\nbody", team=team)
    assert "not valid YAML (line 3)" in broken
    tier = await said(lucy, "skill add " + REPORT.replace("license: MIT", "model-tier: huge"), team=team)
    assert "`model-tier` must be one of" in tier
    assert "no skills yet" in await said(lucy, "skills", team=team)


async def test_admins_can_limit_who_adds_skills(lucy: Lucy):
    team = new_team()
    assert "Only a workspace admin" in await said(lucy, "settings skills admins-only", team=team)
    assert "only workspace admins" in await said(
        lucy, "settings skills admins-only", team=team, user="UADMIN1"
    )
    refused = await said(lucy, "skill add " + REPORT, team=team)
    assert "Only a workspace admin can add or change skills" in refused
    assert "version 1" in await said(lucy, "skill add " + REPORT, team=team, user="UADMIN1")
    assert "Only a workspace admin" in await said(lucy, "skill remove weekly-report", team=team)
    assert "every member" in await said(lucy, "settings skills everyone", team=team, user="UADMIN1")
    assert "removed" in await said(lucy, "skill remove weekly-report", team=team)


def _tools(request: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools") or []]


async def test_the_model_loads_a_skill_and_its_tools_are_restricted(
    lucy: Lucy, fake_llm: FakeLlm, fake_slack: FakeSlack
):
    team = new_team()
    assert "version 1" in await said(lucy, "skill add " + slack_escaped(REPORT), team=team)
    fake_llm.then(content="", tool_calls=[("use_skill", '{"name": "weekly-report"}')])
    fake_llm.then(content="", tool_calls=[("exec", '{"command": "rm -rf /"}')])
    fake_llm.then(content="Here is the weekly report.")
    event = mention_event(team=team, text="write the weekly report")
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    assert (await lucy.post_event(event)).status_code == 200
    result = await lucy.client.get_workflow_handle(workflow_id).result()
    assert result["status"] == "completed"

    first, second, last = fake_llm.task_requests[-3:]
    assert "use_skill" in _tools(first) and "exec" in _tools(first)
    system = first["messages"][0]["content"]
    assert "weekly-report: Write the weekly report" in system and "Summarise it" not in system
    # Loaded: only the skill's tools that the task could use (the MCP tool is not one of them).
    assert _tools(second) == ["slack_history"] and _tools(last) == ["slack_history"]
    assert first["model"] != second["model"] == lucy.settings.llm.model_tier_frontier  # its model-tier
    tool_turns = [m["content"] for m in last["messages"] if m.get("role") == "tool"]
    assert "Summarise it in three bullets" in tool_turns[0]
    assert "exec" in tool_turns[1] and fake_slack.calls_to("chat.postMessage")  # refused, not run
    desc = await lucy.client.get_workflow_handle(workflow_id).describe()
    assert desc.typed_search_attributes.get(SA_SKILL) == "weekly-report@1"
    async with lucy.engine.connect() as conn:
        used = (
            await conn.execute(text("SELECT skill FROM tasks WHERE workflow_id = :w"), {"w": workflow_id})
        ).scalar_one()
    assert used == "weekly-report@1"
    await record_history(lucy, workflow_id, "lucy_task_skill_used")


async def test_no_skills_no_use_skill_tool(lucy: Lucy, fake_llm: FakeLlm):
    team = new_team()
    fake_llm.then(content="Hello.")
    event = mention_event(team=team, text="hello there")
    ev = event["event"]
    assert (await lucy.post_event(event)).status_code == 200
    await lucy.client.get_workflow_handle(task_workflow_id(team, ev["channel"], ev["ts"])).result()
    request = await eventually(lambda: fake_llm.task_requests[-1:], "the task's model call")
    assert "use_skill" not in _tools(request[0]) and "exec" in _tools(request[0])
    assert json.dumps(request[0]).count("Skills of this workspace") == 0


async def test_a_skill_that_allows_a_risky_tool_still_waits_for_approval(
    lucy: Lucy, fake_llm: FakeLlm, fake_slack: FakeSlack
):
    team = new_team()
    shell = REPORT.replace("[slack_history, mcp__github__list_issues]", "[exec]")
    assert "version 1" in await said(lucy, "skill add " + slack_escaped(shell), team=team)
    fake_llm.then(content="", tool_calls=[("use_skill", '{"name": "weekly-report"}')])
    fake_llm.then(content="Listing.", tool_calls=[("exec", '{"command": "ls -la"}')])
    fake_llm.then(content="Not run, as you decided.")
    event = mention_event(team=team, text="write the weekly report")
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    assert (await lucy.post_event(event)).status_code == 200

    def approval() -> dict[str, Any] | None:
        found = [m for m in fake_slack.posted(ev["channel"]) if "lucy_reject" in json.dumps(m.get("blocks"))]
        return found[-1] if found else None

    message = await eventually(approval, "the approval of the skill's exec")
    assert "ls -la" in json.dumps(message)
    await lucy.click(message, "lucy_reject", team=team, user="UADMIN1")
    result = await lucy.client.get_workflow_handle(workflow_id).result()
    assert result["status"] == "completed"
    tool_turns = [m["content"] for m in fake_llm.task_requests[-1]["messages"] if m.get("role") == "tool"]
    assert "rejected" in tool_turns[-1].lower()
