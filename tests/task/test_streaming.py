"""End to end, streaming on (the default): signed mention -> workflow -> the fake LLM streaming
SSE -> one Slack streaming message in the thread -> the final answer posted over it. A model
connection dropped mid-answer is retried by Temporal and the retry rewrites the same message."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from app.ingress.app import IngressDeps, create_app
from lucy.contracts.ids import task_workflow_id
from lucy.settings import Settings
from lucy.slack.text import prepare
from tests.conftest import Lucy, eventually, mention_event, new_team, record_history, running_lucy, sign
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack

ANSWER = "Here is **the answer**, step by step:\n\n" + "- one more careful point, <!here>\n" * 40


@pytest.fixture
async def lucy(
    settings: Settings, temporal_env: WorkflowEnvironment, engine: AsyncEngine, admin_engine: AsyncEngine
) -> AsyncIterator[Lucy]:
    """Lucy with streaming on (LUCY_LLM_STREAMING's default; the rest of the suite pins it off)."""
    streaming = settings.model_copy(update={"llm": settings.llm.model_copy(update={"llm_streaming": True})})
    async with running_lucy(streaming, temporal_env.client, engine, admin_engine) as running:
        yield running


async def _run(lucy: Lucy, fake_slack: FakeSlack, text: str) -> tuple[str, dict, str]:
    team = new_team()
    event = mention_event(team=team, text=text)
    assert (await lucy.post_event(event)).status_code == 200
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), timeout=60)
    return workflow_id, result if isinstance(result, dict) else result.__dict__, ev["ts"]


async def test_answer_is_streamed_into_one_message_that_ends_as_the_posted_answer(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    fake_llm.then(content=ANSWER)
    workflow_id, result, thread = await _run(lucy, fake_slack, "explain it")
    assert result["status"] == "completed"
    posts = [m for m in fake_slack.posted() if m.get("thread_ts") == thread]
    assert len(posts) == 1
    assert posts[0]["ts"] == result["answer_ts"]
    assert posts[0]["text"] == prepare(ANSWER)[0]
    assert len(fake_slack.calls_to("chat.startStream")) == 1
    assert not fake_slack.calls_to("chat.postMessage")  # the answer was the streamed message
    await record_history(lucy, workflow_id, "lucy_task_streamed")


async def test_a_model_connection_dropped_mid_stream_still_yields_one_complete_answer(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    fake_llm.then(content=ANSWER, drop_after=30).then(content=ANSWER)
    workflow_id, result, thread = await _run(lucy, fake_slack, "explain it again")
    assert result["status"] == "completed"
    posts = [m for m in fake_slack.posted() if m.get("thread_ts") == thread]
    assert len(posts) == 1, posts
    assert posts[0]["text"] == prepare(ANSWER)[0]
    assert len(fake_slack.calls_to("chat.startStream")) == 1  # the retry rewrote the same message
    assert len(fake_llm.task_requests) == 2
    await record_history(lucy, workflow_id, "lucy_task_stream_retried")


def _worker_process(settings: Settings, temporal_address: str, cwd: Path) -> subprocess.Popen[bytes]:
    """Lucy's worker in its own process (so that it can be killed with SIGKILL)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "LUCY_ENV": "test",
        "LUCY_LOG_LEVEL": "WARNING",
        "LUCY_DATABASE_URL": settings.database.database_url.get_secret_value(),
        "LUCY_TEMPORAL_ADDRESS": temporal_address,
        "LUCY_TEMPORAL_TASK_QUEUE": settings.temporal.temporal_task_queue,
        "LUCY_TEMPORAL_METRICS_PORT": "0",
        "LUCY_WORKER_METRICS_PORT": "0",
        "LUCY_SLACK_BOT_TOKEN": settings.slack.slack_bot_token.get_secret_value(),  # type: ignore[union-attr]
        "LUCY_SLACK_API_URL": settings.slack.slack_api_url,
        "LUCY_SLACK_CHANNEL_MIN_INTERVAL": "0.2",
        "LUCY_OPENROUTER_API_KEY": settings.llm.openrouter_api_key.get_secret_value(),  # type: ignore[union-attr]
        "LUCY_OPENROUTER_BASE_URL": settings.llm.openrouter_base_url,
        "LUCY_LLM_STREAMING": "true",
    }
    return subprocess.Popen([sys.executable, "-c", _WORKER], cwd=cwd, env=env, stdin=subprocess.DEVNULL)


async def mention_through_ingress(
    settings: Settings, client: Client, engine: AsyncEngine, text: str, *, thread_ts: str | None = None
) -> dict:
    """Mention Lucy (a new team) through the real ingress app, signed as Slack signs; the event.
    ``thread_ts``: the mention is a reply in that thread (the task reads the thread so far).
    No worker runs in this process: the tests' workers are processes of their own."""

    async def get_client() -> Client:
        return client

    app = create_app(IngressDeps(settings=settings, engine=engine, temporal=get_client))
    event = mention_event(team=new_team(), text=text)
    if thread_ts is not None:
        event["event"]["thread_ts"] = thread_ts
    body = json.dumps(event).encode()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingress") as http:
        headers = {**sign(body), "Content-Type": "application/json"}
        assert (await http.post("/slack/events", content=body, headers=headers)).status_code == 200
    return event


# Lucy's worker (``app.worker.lucy_worker``) in a process of its own, without the maintenance
# schedule ``lucy worker`` triggers at start: a run of it left behind by the killed worker would
# hold the session's one maintenance schedule for other tests.
_WORKER = """
import asyncio
from temporalio.client import Client
from lucy.settings import load_settings
from app.worker import lucy_worker

async def main():
    settings = load_settings()
    client = await Client.connect(settings.temporal.temporal_address, namespace="default")
    async with lucy_worker(settings, client):
        await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_a_worker_killed_mid_stream_still_yields_one_complete_answer(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    engine: AsyncEngine,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
    tmp_path: Path,
):
    """kill -9 of the worker while the answer streams: a new worker's attempt (after the
    heartbeat timeout) rewrites the same message; one complete answer, within 30 s."""
    fake_llm.then(content=ANSWER, stall_after=30).then(content=ANSWER)
    client = temporal_env.client
    address = client.service_client.config.target_host
    first = _worker_process(settings, address, tmp_path)
    second: subprocess.Popen[bytes] | None = None
    try:
        event = await mention_through_ingress(settings, client, engine, "explain it, then get killed")
        team, ev = event["team_id"], event["event"]
        thread = ev["ts"]

        def streaming() -> list[dict]:
            return [m for m in fake_slack.posted() if m.get("thread_ts") == thread and m.get("text")]

        await eventually(lambda: streaming() or None, "the answer streaming", timeout=60)
        await asyncio.sleep(2.5)  # the stream's ts reaches Temporal in a heartbeat (throttled to 2 s)
        first.kill()  # SIGKILL: no cleanup, no failure reported
        first.wait()
        half = streaming()
        assert len(half) == 1 and half[0]["text"] != prepare(ANSWER)[0]
        second = _worker_process(settings, address, tmp_path)
        restarted = time.monotonic()
        handle = client.get_workflow_handle(task_workflow_id(team, ev["channel"], ev["ts"]))
        result = await asyncio.wait_for(handle.result(), timeout=90)
        took = time.monotonic() - restarted
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert result["status"] == "completed"
    posts = [m for m in fake_slack.posted() if m.get("thread_ts") == thread]
    assert len(posts) == 1, posts  # the same message, rewritten; never a second one
    assert posts[0]["ts"] == half[0]["ts"] and posts[0]["text"] == prepare(ANSWER)[0]
    assert took < 30, f"the complete answer came {took:.1f} s after the new worker started"


async def test_the_slack_calls_of_a_streamed_answer_reuse_their_connections(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    """The worker's Slack calls share one aiohttp session (``app.worker.slack_session``): without
    it slack_sdk opened a new session and connection (against slack.com, a TLS handshake) for
    every call, ``chat.startStream`` on the way to the first visible text included."""
    fake_llm.then(content=ANSWER)
    before = len(fake_slack.connections)
    _, result, _ = await _run(lucy, fake_slack, "explain it once more")
    assert result["status"] == "completed"
    calls = [(m, port) for m, port in fake_slack.connections[before:] if m.startswith("chat.")]
    assert {"chat.startStream", "chat.stopStream"} <= {m for m, _ in calls}, calls
    # One after the other they go over one kept-alive connection; a few run at once (the
    # progress message, the stream), so a few connections, never one per call.
    assert len({port for _, port in calls}) < len(calls), calls
