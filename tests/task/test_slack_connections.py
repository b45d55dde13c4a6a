"""The worker's Slack Web API calls share their connections (one aiohttp session per worker):
without it every call opened a new session and a new TCP connection (against slack.com, a new
TLS handshake too), on the path from the model's first token to the first visible text."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from lucy.contracts.ids import task_workflow_id
from lucy.settings import Settings
from tests.conftest import Lucy, mention_event, new_team, running_lucy
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack

ANSWER = "A streamed answer, " + "with enough words to take several appends. " * 30


@pytest.fixture
async def lucy(
    settings: Settings, temporal_env: WorkflowEnvironment, engine: AsyncEngine, admin_engine: AsyncEngine
) -> AsyncIterator[Lucy]:
    streaming = settings.model_copy(update={"llm": settings.llm.model_copy(update={"llm_streaming": True})})
    async with running_lucy(streaming, temporal_env.client, engine, admin_engine) as running:
        yield running


async def test_the_slack_calls_of_a_streamed_answer_reuse_their_connections(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    fake_llm.then(content=ANSWER)
    team = new_team()
    event = mention_event(team=team, text="explain it")
    assert (await lucy.post_event(event)).status_code == 200
    ev = event["event"]
    handle = lucy.client.get_workflow_handle(task_workflow_id(team, ev["channel"], ev["ts"]))
    result = await asyncio.wait_for(handle.result(), timeout=60)
    assert result["status"] == "completed"
    worker_calls = [(m, port) for m, port in fake_slack.connections if m.startswith(("chat.", "assistant."))]
    methods = {m for m, _ in worker_calls}
    assert {"chat.startStream", "chat.stopStream"} <= methods, methods
    assert len(worker_calls) >= 3, worker_calls
    # Calls that run one after the other go over one kept-alive connection; a few run at once
    # (the progress message, the stream), so a few connections, never one per call.
    connections = {port for _, port in worker_calls}
    assert len(connections) < len(worker_calls), worker_calls
