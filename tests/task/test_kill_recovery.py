"""[speed] kill -9 of the worker while a task reads its context or classifies the request: both
heartbeat, so a new worker takes the task over within seconds of the heartbeat timeout instead
of after the call's whole 30 s start-to-close timeout (``bench/kill_recovery.py`` measures
every phase)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from lucy.contracts.ids import task_workflow_id
from lucy.settings import Settings
from tests.conftest import eventually
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack
from tests.task.test_streaming import _worker_process, mention_through_ingress

PARENT_TS = "1700000000.000100"  # the thread the follow-up is posted in


@pytest.mark.parametrize("phase", ["context", "classify"])
async def test_a_worker_killed_while_the_task_starts_is_taken_over_within_seconds(
    phase: str,
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    engine: AsyncEngine,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
    tmp_path: Path,
):
    """The held call never answers the first worker; the kill leaves the attempt without a
    worker; the new worker's attempt answers. Before the heartbeat timeouts this took at least
    the 30 s start-to-close timeout less the seconds already spent in the call."""
    release = asyncio.Event()
    if phase == "context":  # a follow-up in a thread reads the thread so far: that read hangs
        release = fake_slack.hold_answer("conversations.replies", lambda p: p.get("ts") == PARENT_TS)
    else:  # answered long after the kill (and the test), to a worker that is gone
        fake_llm.then(match="classify", delay=15)
    fake_llm.then(content="Here you are.")
    client = temporal_env.client
    address = client.service_client.config.target_host
    first = _worker_process(settings, address, tmp_path)
    second: subprocess.Popen[bytes] | None = None
    try:
        event = await mention_through_ingress(
            settings, client, engine, f"help, then get killed ({phase})", thread_ts=PARENT_TS
        )
        ev = event["event"]

        def held() -> bool:
            if phase == "context":
                return any(
                    c.params.get("ts") == PARENT_TS for c in fake_slack.calls_to("conversations.replies")
                )
            return any(
                (r.get("response_format") or {}).get("type") == "json_object" for r in fake_llm.requests
            )

        await eventually(held, f"the {phase} call", timeout=60)
        await asyncio.sleep(2.5)  # well inside the call: its heartbeat reached Temporal
        first.kill()  # SIGKILL: no cleanup, no failure reported
        first.wait()
        killed = time.monotonic()
        second = _worker_process(settings, address, tmp_path)
        handle = client.get_workflow_handle(task_workflow_id(event["team_id"], ev["channel"], ev["ts"]))
        result = await asyncio.wait_for(handle.result(), timeout=90)
        took = time.monotonic() - killed
    finally:
        release.set()  # the held read answers the dead worker's connection (the fake can stop)
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert result["status"] == "completed"
    assert any("Here you are." in (m.get("text") or "") for m in fake_slack.posted(ev["channel"]))
    # The new worker's start-up (seconds on a loaded machine) + the heartbeat timeout + a retry.
    assert took < 25, f"the answer came {took:.1f} s after the kill"
