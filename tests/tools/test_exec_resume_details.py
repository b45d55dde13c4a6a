"""On a real Temporal server: while a gateway exec runs, the heartbeat details Temporal has
recorded for it (what a retried attempt would resume from) are its session id all the time,
never blanked by the background liveness beats between two polls."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import timedelta
from typing import Any

import httpx
from pydantic import SecretStr
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from capabilities.tools.activities.gateway import EXEC_SENT, GatewayActivities
from capabilities.tools.activities.liveness import BEAT_EVERY_S
from capabilities.tools.contracts import ToolRequest, ToolResult
from capabilities.tools.egress import EgressGuard, StaticResolver
from lucy.settings import ToolSettings
from tests.fakes.gateway import FakeGateway


@workflow.defn(name="test-exec-step")
class ExecStep:
    @workflow.run
    async def run(self, request: ToolRequest) -> ToolResult:
        return await workflow.execute_activity(
            "tools.gateway",
            request,
            result_type=ToolResult,
            start_to_close_timeout=timedelta(minutes=1),
            heartbeat_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=2),
        )


async def _recorded(env: WorkflowEnvironment, workflow_id: str) -> list[Any] | None:
    """The heartbeat details Temporal holds for the pending step (None: no step pending)."""
    description = await env.client.get_workflow_handle(workflow_id).describe()
    pending = description.raw_description.pending_activities
    if not pending:
        return None
    details = pending[0].heartbeat_details.payloads
    return list(await env.client.data_converter.decode(details)) if details else []


async def test_the_recorded_heartbeat_details_keep_the_session_id(
    temporal_env: WorkflowEnvironment, fake_gateway: FakeGateway
):
    fake_gateway.then_exec(status="running", chunks=["a\n", "b\n"], polls_until_done=2)
    settings = ToolSettings(
        openclaw_base_url=fake_gateway.base_url,
        openclaw_api_key=SecretStr(fake_gateway.api_key),
        camofox_url="http://127.0.0.1:9",
        camofox_api_key=None,
    )
    queue = f"exec-resume-{uuid.uuid4()}"
    workflow_id = f"exec-resume-{uuid.uuid4()}"
    async with httpx.AsyncClient() as http:
        gateway = GatewayActivities(
            http,
            settings,
            egress=EgressGuard(StaticResolver({})),
            poll_interval=3 * BEAT_EVERY_S,  # polls further apart than the liveness beats
        )
        async with Worker(
            temporal_env.client,
            task_queue=queue,
            workflows=[ExecStep],
            activities=[gateway.invoke],
            workflow_runner=UnsandboxedWorkflowRunner(),
            max_heartbeat_throttle_interval=timedelta(seconds=0.3),
            default_heartbeat_throttle_interval=timedelta(seconds=0.3),
        ):
            handle = await temporal_env.client.start_workflow(
                ExecStep.run,
                ToolRequest(
                    workflow_id=workflow_id,
                    step=1,
                    tool="exec",
                    arguments={"command": "make long"},
                    workspace_id="ws-1",
                ),
                id=workflow_id,
                task_queue=queue,
            )
            samples: list[list[Any]] = []
            while True:
                recorded = await _recorded(temporal_env, workflow_id)
                if recorded is None and samples:
                    break
                if recorded:
                    samples.append(recorded)
                elif samples:
                    samples.append([])  # blanked after the session id was recorded
                await asyncio.sleep(0.2)
            result = await asyncio.wait_for(handle.result(), 30)
    assert result.ok is True
    session_id = fake_gateway.invoked("process")[0]["sessionId"]
    assert len(samples) >= 15  # about 6 s of the command, sampled every 0.2 s
    # the sent mark first (recorded before the command leaves), then the session id, never blank
    marks = list(itertools.takewhile(lambda s: s == [EXEC_SENT], samples))
    assert all(s == [session_id] for s in samples[len(marks) :]), samples
    assert len(samples) - len(marks) >= 10
    assert fake_gateway.commands() == ["make long"]
