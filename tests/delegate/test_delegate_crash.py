"""A worker killed with a real SIGKILL in the middle of a fan-out (docs/delegate.md): a new
worker picks the parent and its children up from their histories; every child completes exactly
once and the parent's model gets every result."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from lucy.contracts.ids import task_workflow_id
from lucy.settings import Settings
from tests.conftest import eventually
from tests.delegate.test_delegate import delegates, parent_requests, tool_messages
from tests.fakes.llm import FakeLlm
from tests.task.test_streaming import _worker_process, mention_through_ingress

JOBS = ("north", "south", "east")


async def test_a_worker_killed_mid_fan_out_finishes_every_child_once_and_the_parent_gets_every_result(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    engine: AsyncEngine,
    admin_engine: AsyncEngine,
    fake_llm: FakeLlm,
    tmp_path: Path,
):
    marker = "survey the three regions [kill -9]"
    delegates(fake_llm, marker, *({"title": f"Region {j}", "request": f"survey region {j}"} for j in JOBS))
    for job in JOBS:  # the first answer never arrives (its worker dies); the retried call's does
        fake_llm.then(content="never seen", user_contains=f"survey region {job}", delay=120)
        fake_llm.then(content=f"{job} region surveyed", user_contains=f"survey region {job}")
    fake_llm.then(content="All three regions surveyed.", user_contains=marker)
    client = temporal_env.client
    address = client.service_client.config.target_host
    first = _worker_process(settings, address, tmp_path)
    second: subprocess.Popen[bytes] | None = None
    try:
        event = await mention_through_ingress(settings, client, engine, marker)
        team, ev = event["team_id"], event["event"]
        workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
        await eventually(
            lambda: all(parent_requests(fake_llm, f"survey region {j}") for j in JOBS),
            "every sub-task at work",
            timeout=60,
        )
        first.kill()  # SIGKILL: mid fan-out, every child in the middle of its model call
        first.wait()
        second = _worker_process(settings, address, tmp_path)
        result = await asyncio.wait_for(client.get_workflow_handle(workflow_id).result(), timeout=120)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert result["status"] == "completed"
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    started = [
        e.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
        for e in history.events
        if e.HasField("child_workflow_execution_started_event_attributes")
    ]
    assert len(started) == len(set(started)) == 3  # no child started twice
    for child_id in started:
        runs = [w async for w in client.list_workflows(f"WorkflowId = '{child_id}'")]
        assert len(runs) == 1 and runs[0].status == WorkflowExecutionStatus.COMPLETED
    async with admin_engine.connect() as conn:
        finished = (
            await conn.execute(
                text(
                    "SELECT workflow_id, count(*) FROM audit_log WHERE action = 'task.completed' "
                    "AND workflow_id LIKE :w GROUP BY workflow_id"
                ),
                {"w": f"{workflow_id}-sub-%"},
            )
        ).all()
    assert sorted(n for _, n in finished) == [1, 1, 1]  # each child recorded as completed once
    [outcome] = tool_messages(parent_requests(fake_llm, marker)[-1])
    for n, job in enumerate(JOBS, 1):
        assert f"Summary: {job} region surveyed" in outcome and f"Sub-task {n} of 3" in outcome
    assert "never seen" not in outcome
