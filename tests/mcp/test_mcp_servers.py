"""A workspace's MCP servers, end to end: signed ``/lucy mcp`` commands at the real ingress, real
MCP servers built with the official SDK (tests/fakes/mcp_server.py), tasks on the real worker
and Temporal, approvals clicked as Slack sends them, the record read back from PostgreSQL."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from app.devservers import LocalPostgres
from capabilities.task.views.blocks import arguments_digest
from lucy.contracts.ids import task_workflow_id
from lucy.crypto import KeyRing
from lucy.settings import Settings
from tests.conftest import (
    Lucy,
    eventually,
    fake_settings,
    mention_event,
    new_team,
    record_history,
    running_lucy,
)
from tests.fakes.camofox import FakeCamoFox
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.mcp_server import FakeMcpServer
from tests.fakes.slack import FakeSlack

ADMIN = "UADMIN1"
MEMBER = "U0ALICE"
KEYS = KeyRing.new_key("kmcp")


@pytest.fixture(scope="module")
def ops() -> Iterator[FakeMcpServer]:
    server = FakeMcpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sse_only() -> Iterator[FakeMcpServer]:
    server = FakeMcpServer(sse_only=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def flaky() -> Iterator[FakeMcpServer]:
    server = FakeMcpServer().start()
    yield server
    server.stop()


@pytest.fixture
def settings(
    postgres: LocalPostgres,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
    fake_gateway: FakeGateway,
    fake_camofox: FakeCamoFox,
    ops: FakeMcpServer,
    sse_only: FakeMcpServer,
    flaky: FakeMcpServer,
) -> Settings:
    return fake_settings(
        postgres,
        fake_slack,
        fake_llm,
        fake_gateway,
        fake_camofox,
        slack_channel_min_interval=0.2,
        llm_streaming=False,
        encryption_keys=KEYS,
        mcp_allowed_hosts=",".join(s.host for s in (ops, sse_only, flaky)),
        mcp_connect_timeout_seconds=5,
        mcp_call_timeout_seconds=5,
    )


@pytest.fixture
async def lucy(
    settings: Settings, temporal_env: WorkflowEnvironment, engine: AsyncEngine, admin_engine: AsyncEngine
) -> AsyncIterator[Lucy]:
    async with running_lucy(settings, temporal_env.client, engine, admin_engine) as running:
        yield running
    # The tokens stored here are sealed with this module's own key, which other tests (key
    # rotation walks every workspace) do not hold: leave none behind in the shared database.
    async with admin_engine.begin() as conn:
        await conn.execute(text("DELETE FROM integration_credentials WHERE key_id = :k"), {"k": "kmcp"})


async def _answer(lucy: Lucy, words: str, *, team: str, user: str = ADMIN) -> str:
    response = await lucy.command(words, team=team, user=user)
    assert response.status_code == 200
    return str(response.json()["text"]) if response.content else ""


async def _added(lucy: Lucy, server: FakeMcpServer, *, team: str, name: str = "ops") -> str:
    answer = await _answer(lucy, f"mcp add {name} {server.url}", team=team)
    assert f"MCP server *{name}* added" in answer, answer
    return answer


async def _audit(lucy: Lucy, team: str, action: str) -> list[dict[str, Any]]:
    async with lucy.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT a.actor_id, a.entity_id, a.details, a.after_state, a.before_state FROM audit_log a "
                "JOIN workspaces w ON w.id = a.workspace_id WHERE w.slack_team_id = :t AND a.action = :a "
                "ORDER BY a.created_at"
            ),
            {"t": team, "a": action},
        )
        return [dict(r._mapping) for r in rows]


def _approval(slack: FakeSlack, channel: str) -> dict[str, Any] | None:
    for message in slack.posted(channel):
        if "lucy_approve" in json.dumps(message.get("blocks") or []):
            return copy.deepcopy(message)
    return None


def _offered(fake_llm: FakeLlm, index: int = 0) -> dict[str, dict[str, Any]]:
    return {t["function"]["name"]: t["function"] for t in fake_llm.task_requests[index].get("tools") or []}


def _tool_turns(fake_llm: FakeLlm) -> list[str]:
    return [m["content"] for m in fake_llm.task_requests[-1]["messages"] if m.get("role") == "tool"]


async def _task(lucy: Lucy, team: str, words: str) -> str:
    event = mention_event(team=team, text=words)
    assert (await lucy.post_event(event)).status_code == 200
    return task_workflow_id(team, event["event"]["channel"], event["event"]["ts"])


async def test_an_admin_adds_a_server_and_sees_every_tool_with_its_risk(lucy: Lucy, ops: FakeMcpServer):
    team = new_team()
    answer = await _added(lucy, ops, team=team)
    assert "`mcp__ops__weather`: Today's weather in a city. — risk low" in answer
    assert "`mcp__ops__delete_row`: Delete one row of the ops table. — risk high" in answer
    assert "`mcp__ops__archive`" in answer and "archive" in answer
    assert "not offered: `bad.name`" in answer  # a provider would refuse the name
    [added] = await _audit(lucy, team, "mcp_server.added")
    assert added["actor_id"] == ADMIN and added["entity_id"] == "ops"
    assert added["after_state"]["url"] == ops.url and "weather" in added["after_state"]["tools"]

    listed = await _answer(lucy, "mcp list", team=team)
    assert "*ops*" in listed and "mcp__ops__delete_row" in listed
    assert "now low" in await _answer(lucy, "mcp risk ops archive low", team=team)
    assert "risk low: runs without asking (set by an admin)" in await _answer(lucy, "mcp list", team=team)
    assert "refreshed: 4 tools" in await _answer(lucy, "mcp refresh ops", team=team)
    assert "removed" in await _answer(lucy, "mcp remove ops", team=team)
    assert "No MCP servers yet" in await _answer(lucy, "mcp list", team=team)
    assert [r["entity_id"] for r in await _audit(lucy, team, "mcp_server.removed")] == ["ops"]


async def test_a_member_cannot_add_a_server(lucy: Lucy, ops: FakeMcpServer):
    team = new_team()
    answer = await _answer(lucy, f"mcp add ops {ops.url}", team=team, user=MEMBER)
    assert answer == "Only a workspace admin can manage MCP servers."
    assert "admin" in await _answer(lucy, "mcp list", team=team, user=MEMBER)
    assert "No MCP servers yet" in await _answer(lucy, "mcp list", team=team)


async def test_an_address_not_allowed_is_refused_before_connecting(lucy: Lucy, ops: FakeMcpServer):
    team = new_team()
    answer = await _answer(lucy, "mcp add local http://127.0.0.1:9/mcp", team=team)
    assert "could not add" in answer and "LUCY_MCP_ALLOWED_HOSTS" in answer
    assert "No MCP servers yet" in await _answer(lucy, "mcp list", team=team)


async def test_a_server_that_only_speaks_sse_is_added_through_the_fallback(
    lucy: Lucy, sse_only: FakeMcpServer
):
    team = new_team()
    answer = await _added(lucy, sse_only, team=team, name="legacy")
    assert "`mcp__legacy__weather`" in answer and "risk low" in answer
    bare = await _answer(lucy, f"mcp add bare http://{sse_only.host}", team=team)  # no path
    assert "MCP server *bare* added: 4 tools" in bare


async def test_a_read_only_tool_runs_and_its_result_reaches_the_thread(
    lucy: Lucy, ops: FakeMcpServer, fake_llm: FakeLlm, fake_slack: FakeSlack
):
    team = new_team()
    await _added(lucy, ops, team=team)
    ops.calls.clear()
    fake_llm.then(content="Checking.", tool_calls=[("mcp__ops__weather", '{"city": "Lyon"}')])
    fake_llm.then(content="It is sunny and 21°C in Lyon.")
    workflow_id = await _task(lucy, team, "what's the weather in Lyon?")
    result = await lucy.client.get_workflow_handle(workflow_id).result()
    assert result["status"] == "completed"
    assert ops.calls == [("weather", {"city": "Lyon"})]
    offered = _offered(fake_llm)
    assert offered["mcp__ops__weather"]["parameters"]["properties"]["city"]["type"] == "string"
    assert "Sunny and 21°C in Lyon" in _tool_turns(fake_llm)[-1]
    texts = [m.get("text") or "" for m in fake_slack.posted("C0GENERAL")]
    assert any("sunny and 21°C in Lyon" in t for t in texts)
    history = await lucy.client.get_workflow_handle(workflow_id).fetch_history()
    summaries = [e.user_metadata.summary.data.decode() for e in history.events if e.HasField("user_metadata")]
    assert any("MCP ops.weather" in s for s in summaries)
    [call] = await _audit(lucy, team, "mcp.tool_call")
    assert call["details"]["arguments_sha256"] == arguments_digest({"city": "Lyon"})
    assert call["details"]["tool"] == "weather" and call["details"]["approved_by"] is None
    await record_history(lucy, workflow_id, "lucy_task_mcp_read_only")


async def test_a_destructive_tool_waits_for_approval_and_runs_once(
    lucy: Lucy, ops: FakeMcpServer, fake_llm: FakeLlm, fake_slack: FakeSlack
):
    team = new_team()
    await _added(lucy, ops, team=team)
    ops.calls.clear()
    fake_llm.then(content="Deleting.", tool_calls=[("mcp__ops__delete_row", '{"row": 3}')])
    fake_llm.then(content="Row 3 is gone.")
    workflow_id = await _task(lucy, team, "delete row 3 of the ops table")
    approval = await eventually(lambda: _approval(fake_slack, "C0GENERAL"), "the approval message")
    shown = json.dumps(approval["blocks"])
    # Exactly what will be sent: the tool, and each argument in full.
    assert "`mcp__ops__delete_row`, with every argument in full" in shown
    assert '"text": "row"' in shown and '{"type": "text", "text": "3"}' in shown
    assert ops.calls == []
    await lucy.click(approval, "lucy_approve", team=team, user=ADMIN)
    result = await lucy.client.get_workflow_handle(workflow_id).result()
    assert result["status"] == "completed"
    assert ops.calls == [("delete_row", {"row": 3})]
    [call] = await _audit(lucy, team, "mcp.tool_call")
    assert call["details"]["approved_by"] == ADMIN
    await record_history(lucy, workflow_id, "lucy_task_mcp_approved")


async def test_another_workspace_does_not_see_the_server(lucy: Lucy, ops: FakeMcpServer, fake_llm: FakeLlm):
    mine, theirs = new_team(), new_team()
    await _added(lucy, ops, team=mine)
    fake_llm.then(content="Hello.")
    workflow_id = await _task(lucy, theirs, "hello")
    await lucy.client.get_workflow_handle(workflow_id).result()
    assert not [name for name in _offered(fake_llm) if name.startswith("mcp__")]
    assert "No MCP servers yet" in await _answer(lucy, "mcp list", team=theirs)
    fake_llm.then(content="Calling.", tool_calls=[("mcp__ops__weather", '{"city": "Oslo"}')])
    fake_llm.then(content="I can't.")
    calls_before = list(ops.calls)
    workflow_id = await _task(lucy, theirs, "weather in Oslo through ops")
    await lucy.client.get_workflow_handle(workflow_id).result()
    assert ops.calls == calls_before
    assert "no tool" in _tool_turns(fake_llm)[-1].lower() or "not" in _tool_turns(fake_llm)[-1].lower()


async def test_a_server_gone_mid_task_gives_a_clear_error_and_the_task_goes_on(
    lucy: Lucy, flaky: FakeMcpServer, fake_llm: FakeLlm, fake_slack: FakeSlack
):
    team = new_team()
    await _added(lucy, flaky, team=team, name="flaky")
    flaky.stop()
    fake_llm.then(content="Checking.", tool_calls=[("mcp__flaky__weather", '{"city": "Rome"}')])
    fake_llm.then(content="The weather service is down; try again later.")
    workflow_id = await _task(lucy, team, "weather in Rome?")
    result = await lucy.client.get_workflow_handle(workflow_id).result()
    assert result["status"] == "completed"
    error = _tool_turns(fake_llm)[-1]
    assert "MCP server flaky is unreachable" in error and "nothing answered" in error
    texts = [m.get("text") or "" for m in fake_slack.posted("C0GENERAL")]
    assert any("weather service is down" in t for t in texts)


async def test_a_prompt_injection_in_a_tool_result_cannot_run_a_destructive_tool(
    lucy: Lucy, ops: FakeMcpServer, fake_llm: FakeLlm, fake_slack: FakeSlack
):
    team = new_team()
    await _added(lucy, ops, team=team)
    ops.calls.clear()
    fake_llm.then(content="Reading.", tool_calls=[("mcp__ops__notes", "{}")])
    # The model obeys the notes (as a steered model would): it asks for the destructive tool.
    fake_llm.then(content="As instructed.", tool_calls=[("mcp__ops__delete_row", '{"row": 7}')])
    fake_llm.then(content="Not deleted.")
    workflow_id = await _task(lucy, team, "summarise the latest meeting notes")
    approval = await eventually(lambda: _approval(fake_slack, "C0GENERAL"), "the approval message")
    assert "mcp__ops__delete_row" in json.dumps(approval["blocks"])
    assert ops.calls == [("notes", {})]  # the destructive call waits for a person
    await lucy.click(approval, "lucy_reject", team=team, user=ADMIN)
    result = await lucy.client.get_workflow_handle(workflow_id).result()
    assert result["status"] == "completed"
    assert ops.calls == [("notes", {})]
    assert await _audit(lucy, team, "mcp.tool_call") and len(await _audit(lucy, team, "mcp.tool_call")) == 1


async def test_a_token_is_asked_in_a_modal_stored_encrypted_and_never_echoed(
    lucy: Lucy, ops: FakeMcpServer, fake_slack: FakeSlack, capfd: pytest.CaptureFixture[str]
):
    team, token = new_team(), f"s3cret-{uuid.uuid4().hex}"
    assert await _answer(lucy, f"mcp add secured {ops.url} --token", team=team) == ""
    opened = await eventually(lambda: fake_slack.modals, "the token modal")
    modal = opened[-1]["view"]
    submission = {
        "type": "view_submission",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": ADMIN, "username": "admin", "team_id": team},
        "api_app_id": "A0LUCY",
        "token": "legacy",
        "trigger_id": "1.x",
        "view": {
            **modal,
            "id": "VMCP1",
            "team_id": team,
            "state": {"values": {"token": {"value": {"type": "plain_text_input", "value": token}}}},
        },
    }
    ops.authorizations.clear()
    response = await lucy.post_form({"payload": json.dumps(submission)})
    assert response.status_code == 200 and token not in response.text
    assert f"Bearer {token}" in ops.authorizations
    shown = await eventually(lambda: fake_slack.ephemerals, "the answer")
    assert "MCP server *secured* added" in shown[-1]["text"] and token not in json.dumps(shown)
    async with lucy.engine.connect() as conn:
        blobs = (
            (
                await conn.execute(
                    text(
                        "SELECT c.encrypted_value FROM integration_credentials c JOIN workspaces w "
                        "ON w.id = c.workspace_id WHERE w.slack_team_id = :t"
                    ),
                    {"t": team},
                )
            )
            .scalars()
            .all()
        )
    assert len(blobs) == 1 and token.encode() not in bytes(blobs[0])
    assert token not in json.dumps(await _audit(lucy, team, "mcp_server.added"), default=str)
    assert "with a token" in await _answer(lucy, "mcp list", team=team)
    assert "refreshed" in await _answer(lucy, "mcp refresh secured", team=team)  # decrypted to send
    assert ops.authorizations[-1] == f"Bearer {token}"
    logged = capfd.readouterr()
    assert token not in logged.out and token not in logged.err


async def _catalog(lucy: Lucy, team: str, name: str) -> dict[str, Any]:
    async with lucy.engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT m.catalog FROM mcp_servers m JOIN workspaces w ON w.id = m.workspace_id "
                    "WHERE w.slack_team_id = :t AND m.name = :n"
                ),
                {"t": team, "n": name},
            )
        ).scalar_one()


async def _age(lucy: Lucy, team: str, catalog: dict[str, Any]) -> None:
    """Make the server's cached list old and different from what the server lists."""
    async with lucy.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE mcp_servers m SET catalog = CAST(:c AS jsonb), refreshed_at = now() - interval '2 days' "
                "FROM workspaces w WHERE w.id = m.workspace_id AND w.slack_team_id = :t"
            ),
            {"c": json.dumps(catalog), "t": team},
        )


async def test_a_tool_the_server_no_longer_has_refreshes_the_list(
    lucy: Lucy, ops: FakeMcpServer, fake_llm: FakeLlm
):
    team = new_team()
    await _added(lucy, ops, team=team)
    listed = await _catalog(lucy, team, "ops")
    vanished = {**listed["tools"][0], "name": "vanished"}
    await _age(lucy, team, {"tools": [*listed["tools"], vanished], "skipped": []})
    fake_llm.then(content="Trying.", tool_calls=[("mcp__ops__vanished", '{"city": "Nice"}')])
    fake_llm.then(content="That tool is gone.")
    workflow_id = await _task(lucy, team, "use vanished")
    await lucy.client.get_workflow_handle(workflow_id).result()
    assert "no longer offers vanished" in _tool_turns(fake_llm)[-1]
    assert "vanished" not in {t["name"] for t in (await _catalog(lucy, team, "ops"))["tools"]}


async def test_the_maintenance_schedule_lists_stale_servers_again(lucy: Lucy, ops: FakeMcpServer):
    from capabilities.proactive.contracts.maintenance import MaintenanceInput, MaintenanceReport
    from capabilities.proactive.workflow.maintenance import LucyMaintenanceWorkflow

    team = new_team()
    await _added(lucy, ops, team=team)
    await _age(lucy, team, {"tools": [], "skipped": []})
    workflow_id = f"lucy-maintenance-test-{uuid.uuid4().hex[:8]}"
    report = await lucy.client.execute_workflow(
        LucyMaintenanceWorkflow.run,
        MaintenanceInput(mcp_refresh_hours=1),
        id=workflow_id,
        task_queue=lucy.settings.temporal.temporal_task_queue,
        result_type=MaintenanceReport,
    )
    assert report.mcp_refreshed >= 1
    assert "weather" in {t["name"] for t in (await _catalog(lucy, team, "ops"))["tools"]}
    await record_history(lucy, workflow_id, "lucy_maintenance_mcp")
