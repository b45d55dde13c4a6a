"""Save as skill, end to end: a finished task's answer carries the button; the requester's click
opens a modal at once ("drafting…"), ``LucySkillDraftWorkflow`` drafts a SKILL.md from the request
and the steps that succeeded with one model call and shows it in the modal (views.update); the
skill exists only after the requester submits. Someone else's click gets no draft."""

from __future__ import annotations

import json
from typing import Any

from capabilities.skills.format import parse_skill
from lucy.contracts.ids import task_workflow_id
from tests.conftest import Lucy, dm_event, eventually, mention_event, new_team, record_history
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack
from tests.skills.test_skills import REPORT, said, submit_modal

DRAFT = """```markdown
---
name: channel-digest
description: Summarise what a channel said this week
allowed-tools: [slack_history]
---
1. Read the channel with slack_history.
2. Summarise it.
```"""


def _view(call: Any) -> dict[str, Any]:
    view = call.params["view"]
    return json.loads(view) if isinstance(view, str) else view


async def _answered_task(lucy: Lucy, fake_llm: FakeLlm, fake_slack: FakeSlack, team: str) -> tuple[str, dict]:
    fake_llm.then(content="", tool_calls=[("slack_history", '{"query": "launch", "scope": "channel"}')])
    fake_llm.then(content="This week: the launch.")
    event = mention_event(team=team, text="digest this channel's week")
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    assert (await lucy.post_event(event)).status_code == 200
    await lucy.client.get_workflow_handle(workflow_id).result()
    answer = next(
        m for m in reversed(fake_slack.posted(ev["channel"])) if "This week: the launch." in json.dumps(m)
    )
    return workflow_id, answer


async def test_save_as_skill_drafts_in_a_modal_and_saves_only_on_submit(
    lucy: Lucy, fake_llm: FakeLlm, fake_slack: FakeSlack
):
    team = new_team()
    workflow_id, answer = await _answered_task(lucy, fake_llm, fake_slack, team)
    buttons = [e for b in answer["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["value"]) for b in buttons] == [("lucy_skill_save", workflow_id)]

    fake_llm.then(content=DRAFT)
    before = len(fake_slack.calls_to("views.open"))
    assert (await lucy.click(answer, "lucy_skill_save", team=team, user="U0ALICE")).status_code == 200
    opened = fake_slack.calls_to("views.open")[before:]
    assert len(opened) == 1 and "Drafting" in json.dumps(_view(opened[0]))  # at once, within Slack's 3 s
    updated = await eventually(lambda: fake_slack.calls_to("views.update"), "the draft in the modal")
    modal = _view(updated[-1])
    field = modal["blocks"][1]["element"]
    assert modal["callback_id"] == "lucy_skill_add" and field["initial_value"].startswith(
        "---\nname: channel-digest"
    )
    drafting = fake_llm.task_requests[-1]["messages"]
    assert "digest this channel's week" in drafting[1]["content"]
    assert "The steps that succeeded:\n- slack_history: " in drafting[1]["content"]
    assert "no skills yet" in await said(lucy, "skills", team=team)  # nothing saved before submit

    edited = field["initial_value"].replace("Summarise it.", "Summarise it in five bullets.")
    assert await submit_modal(lucy, modal, edited, team=team) == {}
    assert "`channel-digest` v1 (enabled)" in await said(lucy, "skills", team=team)
    assert "five bullets" in await said(lucy, "skill show channel-digest", team=team)
    drafts = [
        e
        async for e in lucy.client.list_workflows(
            f"WorkflowType = 'LucySkillDraftWorkflow' AND WorkflowId STARTS_WITH 'lucy-skill-draft-{team}'"
        )
    ]
    assert len(drafts) == 1
    await record_history(lucy, drafts[0].id, "lucy_skill_draft")


async def test_only_the_requester_gets_a_draft(lucy: Lucy, fake_llm: FakeLlm, fake_slack: FakeSlack):
    team = new_team()
    _, answer = await _answered_task(lucy, fake_llm, fake_slack, team)
    before = len(fake_slack.calls_to("views.open"))
    assert (await lucy.click(answer, "lucy_skill_save", team=team, user="U0BOB")).status_code == 200
    opened = fake_slack.calls_to("views.open")[before:]
    assert len(opened) == 1 and "Only the person who asked" in json.dumps(_view(opened[0]))


async def test_a_skill_md_uploaded_in_the_dm_is_added(lucy: Lucy, fake_llm: FakeLlm, fake_slack: FakeSlack):
    team = new_team()
    asked = len(fake_llm.task_requests)
    shared = fake_slack.add_file("SKILL.md", REPORT.encode())
    event = dm_event(team=team, text="", subtype="file_share", files=[shared])
    assert (await lucy.post_event(event)).status_code == 200
    answer = await eventually(lambda: fake_slack.posted("D0ALICE"), "the answer in the DM")
    assert "Added skill `weekly-report` (version 1)" in answer[-1]["text"]
    assert "v1 (enabled), added by <@U0ALICE>" in await said(lucy, "skills", team=team)
    assert len(fake_llm.task_requests) == asked  # a file to add, not a request: no task

    broken = fake_slack.add_file("SKILL.md", b"---\nname: Nope\n---\nbody")
    event = dm_event(team=team, text="", subtype="file_share", files=[broken])
    assert (await lucy.post_event(event)).status_code == 200
    refused = await eventually(
        lambda: [m for m in fake_slack.posted("D0ALICE") if "can't add" in m["text"]], "the refusal"
    )
    assert (
        "`name` must be lowercase" in refused[-1]["text"]
        and "`description` is missing" in refused[-1]["text"]
    )


async def test_when_the_model_fails_the_modal_gets_a_skeleton(
    lucy: Lucy, fake_llm: FakeLlm, fake_slack: FakeSlack
):
    team = new_team()
    _, answer = await _answered_task(lucy, fake_llm, fake_slack, team)
    fake_llm.then(status=401, content="bad key")
    before = len(fake_slack.calls_to("views.update"))
    assert (await lucy.click(answer, "lucy_skill_save", team=team, user="U0ALICE")).status_code == 200
    updated = await eventually(lambda: fake_slack.calls_to("views.update")[before:], "the skeleton")
    draft = _view(updated[-1])["blocks"][1]["element"]["initial_value"]
    assert draft.startswith("---\nname: digest-this-channel-s-week\n") and "1. slack_history: " in draft
    assert parse_skill(draft).description == "digest this channel's week"  # a valid SKILL.md to edit
    assert "no skills yet" in await said(lucy, "skills", team=team)
    drafts = [
        e
        async for e in lucy.client.list_workflows(
            f"WorkflowType = 'LucySkillDraftWorkflow' AND WorkflowId STARTS_WITH 'lucy-skill-draft-{team}'"
        )
    ]
    assert await lucy.client.get_workflow_handle(drafts[0].id).result() == "skeleton"
    await record_history(lucy, drafts[0].id, "lucy_skill_draft_skeleton")
