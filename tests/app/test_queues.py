"""Task queues by role (docs/scaling.md): each activity runs on its role's queue, ``lucy worker
--queues`` picks the roles one process serves, and an unknown role is refused."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

import app.worker
from app.cli import roles_or_exit
from app.worker import WORKFLOWS, activities_by_role, lucy_worker, workflow_interceptors, workflow_runner
from capabilities.task.workflow.queues import QUEUES_PATCH, ROLES, role_of, tool_activities
from lucy.contracts.ids import task_workflow_id
from lucy.contracts.queues import QueueRole
from lucy.settings import Settings
from tests.conftest import Lucy, eventually, mention_event, new_team, record_history, running_lucy
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack
from tests.task.test_streaming import mention_through_ingress

ROOT = Path(__file__).resolve().parents[2]


async def scheduled_queues(handle: WorkflowHandle[Any, Any]) -> dict[str, set[str]]:
    """Each activity type the run scheduled -> the task queues it was scheduled on."""
    queues: dict[str, set[str]] = {}
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            queues.setdefault(attrs.activity_type.name, set()).add(attrs.task_queue.name)
    return queues


async def patches(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The patch ids the run's markers recorded."""
    found = []
    async for event in handle.fetch_history_events():
        marker = event.marker_recorded_event_attributes
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and marker.marker_name == "core_patch":
            found.append(json.loads(marker.details["patch-data"].payloads[0].data)["id"])
    return found


async def test_each_activity_runs_on_the_queue_of_its_role(
    lucy: Lucy, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    fake_gateway.files["/srv/notes.txt"] = "hello"
    fake_llm.then(content="Let me read it.", tool_calls=[("read_file", '{"path": "/srv/notes.txt"}')])
    fake_llm.then(content="The notes say hello.")
    team = new_team()
    event = mention_event(team=team, text="what do the notes say?")
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    assert (await lucy.post_event(event)).status_code == 200
    handle = lucy.client.get_workflow_handle(workflow_id)
    result = await asyncio.wait_for(handle.result(), 30)
    assert result["status"] == "completed"

    q = lucy.settings.temporal.temporal_task_queue
    queues = await scheduled_queues(handle)
    assert queues["llm.chat"] == {f"{q}-llm"}
    assert queues["tools.gateway"] == {f"{q}-tools"}
    assert queues["context.prepare"] == {f"{q}-tools"}
    assert queues["slack.post_message"] == {f"{q}-slack"}
    assert queues["records.task_running"] == {q}
    # the final record is a local activity (speed-finish-together): the workflow's worker runs it
    assert "records.task_finished" not in queues
    assert QUEUES_PATCH in await patches(handle)  # the marker that lets older runs replay as they were
    await record_history(lucy, workflow_id, "lucy_task_queues_by_role")


def _worker_process(settings: Settings, address: str, cwd: Path, queues: str) -> subprocess.Popen[bytes]:
    """``lucy worker --queues <queues>``: the real command, in a process of its own."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "LUCY_ENV": "test",
        "LUCY_LOG_LEVEL": "WARNING",
        "LUCY_DATABASE_URL": settings.database.database_url.get_secret_value(),
        "LUCY_TEMPORAL_ADDRESS": address,
        "LUCY_TEMPORAL_TASK_QUEUE": settings.temporal.temporal_task_queue,
        "LUCY_TEMPORAL_METRICS_PORT": "0",
        "LUCY_WORKER_METRICS_PORT": "0",
        "LUCY_SLACK_BOT_TOKEN": settings.slack.slack_bot_token.get_secret_value(),  # type: ignore[union-attr]
        "LUCY_SLACK_API_URL": settings.slack.slack_api_url,
        "LUCY_OPENROUTER_API_KEY": settings.llm.openrouter_api_key.get_secret_value(),  # type: ignore[union-attr]
        "LUCY_OPENROUTER_BASE_URL": settings.llm.openrouter_base_url,
        "LUCY_LLM_STREAMING": "false",
    }
    command = [sys.executable, "-m", "app.cli", "worker", "--queues", queues]
    return subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL)


async def _pending(handle: WorkflowHandle[Any, Any]) -> dict[str, int]:
    """The run's pending activities: type -> state."""
    described = await handle.describe()
    return {p.activity_type.name: p.state for p in described.raw_description.pending_activities}


async def test_a_workflows_only_worker_leaves_the_llm_call_waiting_for_an_llm_worker(
    settings: Settings, temporal_env: WorkflowEnvironment, engine: Any, fake_llm: FakeLlm, tmp_path: Path
):
    fake_llm.then(content="served by the llm worker")
    client: Client = temporal_env.client
    async with lucy_worker(settings, client, engine=engine, roles=roles_or_exit("workflows")):
        event = await mention_through_ingress(settings, client, engine, "who answers me?")
        ev = event["event"]
        handle = client.get_workflow_handle(task_workflow_id(event["team_id"], ev["channel"], ev["ts"]))

        async def llm_waiting() -> bool:
            return (await _pending(handle)).get(
                "llm.chat"
            ) == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED

        await eventually(llm_waiting, "the LLM call scheduled on its queue")
        await asyncio.sleep(2)  # nobody polls Q-llm: it stays scheduled, never started
        assert await llm_waiting()
        assert fake_llm.requests == []
        second = _worker_process(
            settings, client.service_client.config.target_host, tmp_path, "llm,tools,slack"
        )
        try:
            result = await asyncio.wait_for(handle.result(), 60)
        finally:
            second.terminate()
            second.wait(timeout=30)
    assert result["status"] == "completed"
    assert fake_llm.requests, "the LLM worker made the call"


def test_the_worker_command_refuses_an_unknown_role(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "worker", "--queues", "workflows,gpu"],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "lucy: unknown queue role 'gpu' in --queues (roles: workflows, llm, tools, slack)"
    ]


async def test_a_task_started_before_the_split_finishes_on_the_new_workers(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    engine: Any,
    admin_engine: Any,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
    fake_gateway: FakeGateway,
    monkeypatch: pytest.MonkeyPatch,
):
    """A run the one-queue worker started (no patch marker) keeps every activity on Q after the
    upgrade, and the new workflows worker still runs them all."""
    fake_llm.then(content="Let me look.", tool_calls=[("exec", '{"command": "ls -la /srv"}')])
    fake_llm.then(content="The folder holds 3 files.")
    team = new_team()
    event = mention_event(team=team, text="what is in /srv?")
    ev = event["event"]
    client = temporal_env.client
    handle = client.get_workflow_handle(task_workflow_id(team, ev["channel"], ev["ts"]))
    with monkeypatch.context() as before_split:
        before_split.setattr(app.worker, "workflow_interceptors", lambda **_: [])  # the code before the split
        async with running_lucy(settings, client, engine, admin_engine) as old:
            assert (await old.post_event(event)).status_code == 200
            await eventually(
                lambda: fake_slack.with_actions(ev["channel"], "lucy_approve"), "approval message"
            )

            async def waiting() -> bool:
                return bool((await handle.query("status"))["status"] == "pending_approval")

            await eventually(waiting, "the task waiting for its approval")
    async with running_lucy(settings, client, engine, admin_engine) as new:
        approval = fake_slack.with_actions(ev["channel"], "lucy_approve")
        assert approval is not None
        assert (await new.click(approval, "lucy_approve", team=team, user="UADMIN1")).status_code == 200
        result = await asyncio.wait_for(handle.result(), 60)
    assert result["status"] == "completed"
    assert fake_gateway.commands() == ["ls -la /srv"]
    q = settings.temporal.temporal_task_queue
    queues = await scheduled_queues(handle)
    assert {"llm.chat", "tools.gateway", "slack.post_message"} <= set(queues)
    assert all(scheduled == {q} for scheduled in queues.values()), queues
    assert QUEUES_PATCH not in await patches(handle)


def test_every_activity_has_exactly_one_role_and_the_table_names_only_real_ones():
    code = "\n".join(p.read_text() for p in sorted((ROOT / "capabilities").rglob("*.py")))
    declared = set(re.findall(r'activity\.defn\(name="([^"]+)"', code))
    assert declared == set(ROLES) | tool_activities()
    assert not set(ROLES) & tool_activities(), "a tool's role comes from the registry, not the table"
    assert {role_of(name) for name in declared} == set(QueueRole)


def test_a_worker_refuses_an_activity_without_a_role():
    @activity.defn(name="reports.weekly")
    async def weekly() -> None:
        return None

    with pytest.raises(RuntimeError, match=re.escape("'reports.weekly' has no queue role")):
        activities_by_role([weekly])


async def test_a_worker_that_does_not_split_keeps_activities_on_q_and_its_runs_replay_either_way(
    settings: Settings, temporal_env: WorkflowEnvironment, engine: Any, admin_engine: Any, fake_llm: FakeLlm
):
    fake_llm.then(content="one queue")
    temporal = settings.temporal.model_copy(update={"worker_split_queues": False})
    unsplit = settings.model_copy(update={"temporal": temporal})
    team = new_team()
    event = mention_event(team=team, text="all on one queue?")
    ev = event["event"]
    async with running_lucy(unsplit, temporal_env.client, engine, admin_engine) as lucy:
        assert (await lucy.post_event(event)).status_code == 200
        workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
        handle = lucy.client.get_workflow_handle(workflow_id)
        assert (await asyncio.wait_for(handle.result(), 30))["status"] == "completed"
        await record_history(lucy, workflow_id, "lucy_task_queues_unsplit")
    q = settings.temporal.temporal_task_queue
    queues = await scheduled_queues(handle)
    assert {"llm.chat", "context.prepare", "slack.post_message"} <= set(queues)
    assert all(scheduled == {q} for scheduled in queues.values()), queues
    assert QUEUES_PATCH in await patches(handle)
    history = await handle.fetch_history()
    for split in (True, False):  # a worker of either kind may take the run over
        replayer = Replayer(
            workflows=list(WORKFLOWS),
            workflow_runner=workflow_runner(),
            interceptors=workflow_interceptors(split=split),
        )
        assert (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None
