"""App Home flags a skill, naming its versions, when the tasks that loaded it get thumbs-down
repeatedly: two real tasks load the skill (versions 1 and 2) through the fake model, the
requester clicks thumbs-down under both answers, and the Home tab says so. App Home also
carries the Add skill button, which opens the Add skill modal."""

from __future__ import annotations

import json
from typing import Any

from lucy.contracts.ids import task_workflow_id
from tests.conftest import Lucy, block_actions_payload, eventually, mention_event, new_team
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack
from tests.feedback.test_feedback import _click
from tests.proactive.test_monitors import _open_home
from tests.skills.test_skills import REPORT, said, slack_escaped, submit_modal


async def _task_with_skill(lucy: Lucy, fake_llm: FakeLlm, fake_slack: FakeSlack, team: str) -> dict[str, Any]:
    fake_llm.then(content="", tool_calls=[("use_skill", '{"name": "weekly-report"}')])
    fake_llm.then(content="The report.")
    event = mention_event(team=team, text="the weekly report")
    ev = event["event"]
    assert (await lucy.post_event(event)).status_code == 200
    await lucy.client.get_workflow_handle(task_workflow_id(team, ev["channel"], ev["ts"])).result()
    return next(
        m
        for m in reversed(fake_slack.posted(ev["channel"]))
        if m.get("thread_ts") == ev["ts"] and "The report." in json.dumps(m)
    )


async def _home(lucy: Lucy, fake_slack: FakeSlack, team: str) -> dict[str, Any]:
    fake_slack.views.pop("U0ALICE", None)  # the next publish, not the last one
    return await _open_home(lucy, fake_slack, team)


async def test_home_flags_a_skill_whose_tasks_get_thumbs_down(
    lucy: Lucy, fake_llm: FakeLlm, fake_slack: FakeSlack
):
    team = new_team()
    assert "version 1" in await said(lucy, "skill add " + slack_escaped(REPORT), team=team)
    first = await _task_with_skill(lucy, fake_llm, fake_slack, team)
    assert "Skills to look at" not in json.dumps(await _home(lucy, fake_slack, team))
    await _click(lucy, first, "bad", team=team, user="U0ALICE")
    assert "Skills to look at" not in json.dumps(
        await _home(lucy, fake_slack, team)
    )  # once is not "repeatedly"

    assert "version 2" in await said(lucy, "skill add " + slack_escaped(REPORT), team=team)
    second = await _task_with_skill(lucy, fake_llm, fake_slack, team)
    await _click(lucy, second, "bad", team=team, user="U0ALICE")
    home = json.dumps(await _home(lucy, fake_slack, team))
    assert "Skill `weekly-report`: 2 thumbs-down (versions v1, v2)" in home


async def test_the_home_button_opens_the_add_skill_modal_and_submitting_saves(
    lucy: Lucy, fake_slack: FakeSlack
):
    team = new_team()
    home = await _home(lucy, fake_slack, team)
    click = block_actions_payload(home, "lucy_skill_add_open", team=team, user="U0ALICE", channel="")
    assert (await lucy.post_form({"payload": json.dumps(click)})).status_code == 200
    opened = await eventually(lambda: fake_slack.calls_to("views.open"), "the modal")
    view = (
        json.loads(opened[-1].params["view"])
        if isinstance(opened[-1].params["view"], str)
        else opened[-1].params["view"]
    )
    assert view["callback_id"] == "lucy_skill_add"

    refused = await submit_modal(lucy, view, REPORT.replace("name: weekly-report", "name: Nope!"), team=team)
    assert (
        refused["response_action"] == "errors" and "`name` must be lowercase" in refused["errors"]["skill_md"]
    )
    assert await submit_modal(lucy, view, REPORT, team=team) == {}
    assert "v1 (enabled)" in await said(lucy, "skills", team=team)
    confirmed = await eventually(lambda: fake_slack.posted("U0ALICE"), "the confirmation in the DM")
    assert "Added skill `weekly-report` (version 1)" in json.dumps(confirmed)
