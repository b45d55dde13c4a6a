"""Adding a tool takes one module (its ToolSpec, next to its activity) and one registry line.

This module is that one module: ``SHOUT`` is declared here, and the ``shout_registered`` fixture
is the one registry line (``TOOLS.with_tools(SHOUT)``). Nothing else changes, and through the
real ingress, worker and workflow: the model is offered the tool, the policy assesses it by its
own risk function, the approval row carries its audit action, and the worker runs its activity.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from temporalio import activity

from capabilities.task.workflow import policy
from capabilities.tools.activities import registry
from capabilities.tools.contracts import ToolRequest, ToolResult
from capabilities.tools.deps import ToolDeps
from capabilities.tools.egress import EgressGuard
from capabilities.tools.spec import NEEDS_SLACK, STRING, RiskContext, ToolSpec, retry, schema
from lucy.contracts.ids import task_workflow_id
from lucy.contracts.risk import Risk
from lucy.settings import Settings
from tests.conftest import Lucy, eventually, mention_event, new_team
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack

SHOUTED: list[str] = []


class ShoutActivities:
    @activity.defn(name="tools.test_shout")
    async def shout(self, request: ToolRequest) -> ToolResult:
        SHOUTED.append(request.arguments["text"])
        return ToolResult(output=request.arguments["text"].upper())


def _risk(args: dict[str, Any], context: RiskContext) -> Risk:
    return Risk.HIGH if args.get("loud") else Risk.LOW


SHOUT = ToolSpec(
    name="shout",
    description="Say a text in capitals.",
    parameters=schema({"text": STRING, "loud": {"type": "boolean"}}, ("text",)),
    activity=ShoutActivities.shout,
    build=lambda deps: ShoutActivities(),
    timeout=timedelta(seconds=10),
    retry=retry(2),
    label="shout",
    label_arg="text",
    risk=_risk,
    requires=(NEEDS_SLACK,),
    audit_action="message_send",
)


@pytest.fixture
def shout_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry, "TOOLS", registry.TOOLS.with_tools(SHOUT))
    SHOUTED.clear()
    yield


def test_the_policy_assesses_a_new_tool_by_its_own_risk(shout_registered: None):
    quiet = policy.assess("shout", {"text": "hi"}, untrusted_seen=False, known_hosts=())
    loud = policy.assess("shout", {"text": "hi", "loud": True}, untrusted_seen=False, known_hosts=())
    assert (quiet.risk, quiet.needs_approval) == (Risk.LOW, False)
    assert (loud.risk, loud.needs_approval) == (Risk.HIGH, True)


def test_an_unregistered_tool_is_never_low_risk():
    verdict = policy.assess("shout", {"text": "hi"}, untrusted_seen=False, known_hosts=())
    assert verdict.risk == Risk.CRITICAL and verdict.needs_approval
    assert policy.base_risk("read_flie", {}) == Risk.CRITICAL  # a misspelt name


async def test_the_worker_registers_every_tool_activity_once(shout_registered: None, settings: Settings):
    async with httpx.AsyncClient() as http:
        deps = ToolDeps(settings=settings, http=http, slack=None, egress=EgressGuard())
        bound = registry.TOOLS.activities(deps)
    names = [activity._Definition.must_from_callable(a).name for a in bound]
    assert "tools.test_shout" in names and len(names) == len(set(names))
    assert names == list(
        dict.fromkeys(
            activity._Definition.must_from_callable(s.activity).name for s in registry.TOOLS.values()
        )
    )


def _approval(slack: FakeSlack, channel: str) -> dict[str, Any] | None:
    for message in slack.posted(channel):
        if "lucy_approve" in json.dumps(message.get("blocks") or []):
            return copy.deepcopy(message)
    return None


async def test_a_new_tool_is_offered_assessed_approved_and_run(
    shout_registered: None, lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    team = new_team()
    fake_llm.then(content="Shouting.", tool_calls=[("shout", '{"text": "ship it", "loud": true}')])
    fake_llm.then(content="Done: SHIP IT.")
    event = mention_event(team=team, text="shout ship it")
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    assert (await lucy.post_event(event)).status_code == 200

    approval = await eventually(lambda: _approval(fake_slack, ev["channel"]), "approval message")
    offered = [t["function"] for t in fake_llm.task_requests[0]["tools"]]
    assert {"name": "shout", "description": SHOUT.description, "parameters": SHOUT.parameters} in offered
    assert SHOUTED == []  # high risk by its own rule: it waits for a person
    async with lucy.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT action_type, risk_level FROM approvals WHERE workflow_id = :w"),
                {"w": workflow_id},
            )
        ).one()
    assert tuple(row) == ("message_send", "high")

    await lucy.click(approval, "lucy_approve", team=team, user="UADMIN1")
    result = await lucy.client.get_workflow_handle(workflow_id).result()
    assert result["status"] == "completed"
    assert SHOUTED == ["ship it"]  # the worker registered and ran its activity
    tool_turns = [m for m in fake_llm.task_requests[-1]["messages"] if m.get("role") == "tool"]
    assert tool_turns and "SHIP IT" in tool_turns[-1]["content"]
