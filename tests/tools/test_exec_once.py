"""An approved command runs at most once when its worker dies after sending it to the gateway.

Found by ``bench/scale_out.py``: with workers SIGKILLed during 500 tasks, 3 of 208 approved
``exec`` commands ran twice. A quick command completes in one request; the worker died before
Temporal recorded the result, and the retried attempt, with no gateway session heartbeated,
sent the command again. The activity runs for real (``ActivityEnvironment``) against the fake
gateway; attempt 2 gets the last heartbeat details attempt 1 recorded, as Temporal gives them."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from capabilities.tools.activities.gateway import EXEC_SENT, GatewayActivities
from lucy.contracts.errors import ErrorType
from lucy.contracts.ids import task_workflow_id
from tests.conftest import Lucy, eventually, mention_event, new_team
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack
from tests.tools.test_tools_gateway_browser import GUARD, POLL, req, tool_settings


async def _attempts(gateway: FakeGateway, command: str) -> tuple[Any, ActivityEnvironment]:
    """Attempt 1 (its result, or the error it raised) and an attempt-2 environment with the
    heartbeat details attempt 1 left."""
    recorded: list[tuple[Any, ...]] = [()]
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: recorded.append(details)
    async with httpx.AsyncClient() as http:
        acts = GatewayActivities(http, tool_settings(gateway), egress=GUARD, poll_interval=POLL)
        try:
            first: Any = await env.run(acts.invoke, req("exec", command=command))
        except ApplicationError as exc:
            first = exc
    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(retry.info, attempt=2, heartbeat_details=list(recorded[-1]))
    return first, retry


async def _run(gateway: FakeGateway, env: ActivityEnvironment, command: str) -> Any:
    async with httpx.AsyncClient() as http:
        acts = GatewayActivities(http, tool_settings(gateway), egress=GUARD, poll_interval=POLL)
        return await env.run(acts.invoke, req("exec", command=command))


async def test_a_command_sent_by_a_worker_that_then_died_is_not_sent_again(fake_gateway: FakeGateway):
    first, retry = await _attempts(fake_gateway, "deploy.sh")
    assert first.ok is True  # it ran; the worker died before Temporal recorded this result
    second = await _run(fake_gateway, retry, "deploy.sh")
    assert fake_gateway.commands() == ["deploy.sh"], "the approved command ran once"
    assert second.ok is False
    assert "may have run" in second.output and "not sent again" in second.output


@pytest.mark.parametrize("status", [429, 503])
async def test_a_command_the_gateway_refused_is_sent_again(fake_gateway: FakeGateway, status: int):
    fake_gateway.fail(status)
    first, retry = await _attempts(fake_gateway, "make build")
    assert isinstance(first, ApplicationError) and first.type == ErrorType.TOOL_RETRYABLE
    second = await _run(fake_gateway, retry, "make build")
    assert second.ok is True and "ran: make build" in second.output


async def test_through_the_worker_a_refused_command_is_retried_and_runs_once(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    """On the real worker and Temporal: the cleared mark reaches the retry (heartbeat details
    recorded with the failure), so a 503 still ends in one run, not in "may have run"."""
    team = new_team()
    fake_llm.then(tool_calls=[("exec", '{"command": "uptime"}')])
    fake_llm.then(content="It has been up for a while.")
    fake_gateway.fail(503, tool="exec")
    event = mention_event(team=team, text="how long has the box been up?")
    ev = event["event"]
    assert (await lucy.post_event(event)).status_code == 200
    approval = await eventually(lambda: fake_slack.with_actions(ev["channel"], "lucy_approve"), "approval")
    assert (await lucy.click(approval, "lucy_approve", team=team, user="UADMIN1")).status_code == 200
    handle = lucy.client.get_workflow_handle(task_workflow_id(team, ev["channel"], ev["ts"]))
    assert (await asyncio.wait_for(handle.result(), 60))["status"] == "completed"
    assert fake_gateway.commands() == ["uptime", "uptime"]  # refused with a 503, then run
    tool_turn = [m for m in fake_llm.task_requests[-1]["messages"] if m["role"] == "tool"]
    assert "may have run" not in tool_turn[-1]["content"]
    assert "ran: uptime" in tool_turn[-1]["content"]


async def test_the_sent_mark_is_recorded_by_temporal_before_the_command_leaves(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    """The mark must survive a kill -9 a moment after the command is sent: while the gateway
    holds the command, Temporal already has the mark in the attempt's heartbeat details (a
    throttled heartbeat could wait up to 2 s, and a worker killed then left no mark: the fault
    run saw 2 of 100 approved commands run twice that way)."""
    team = new_team()
    fake_llm.then(tool_calls=[("exec", '{"command": "deploy.sh"}')])
    fake_llm.then(content="Deployed.")
    fake_gateway.then_exec(delay=30.0)  # the gateway holds the command until released
    event = mention_event(team=team, text="deploy it")
    ev = event["event"]
    assert (await lucy.post_event(event)).status_code == 200
    approval = await eventually(lambda: fake_slack.with_actions(ev["channel"], "lucy_approve"), "approval")
    assert (await lucy.click(approval, "lucy_approve", team=team, user="UADMIN1")).status_code == 200
    handle = lucy.client.get_workflow_handle(task_workflow_id(team, ev["channel"], ev["ts"]))
    await eventually(lambda: fake_gateway.commands() == ["deploy.sh"], "the command at the gateway")
    (pending,) = [
        p
        for p in (await handle.describe()).raw_description.pending_activities
        if p.activity_type.name == "tools.gateway"
    ]
    details = await lucy.client.data_converter.decode(pending.heartbeat_details.payloads)
    assert details == [EXEC_SENT], "Temporal has the mark while the gateway runs the command"
    fake_gateway.release()
    assert (await asyncio.wait_for(handle.result(), 60))["status"] == "completed"
    assert fake_gateway.commands() == ["deploy.sh"]
