"""Worker Versioning on the dev server: a worker given a build id joins the Worker Deployment as
that version, and a task it starts stays pinned to it (docs/design.md "Changing a workflow")."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.api.deployment.v1 import WorkerDeploymentVersion
from temporalio.api.enums.v1 import VersioningBehavior
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentVersionRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from lucy.settings import Settings
from tests.conftest import mention_event, new_team, running_lucy
from tests.fakes.llm import FakeLlm


async def _make_current(env: WorkflowEnvironment, deployment: str, build_id: str) -> None:
    """``temporal worker deployment set-current-version``, once the version's worker has polled."""
    client = env.client
    for _ in range(100):
        try:
            await client.workflow_service.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace=client.namespace, deployment_name=deployment, build_id=build_id, identity="test"
                )
            )
            return
        except RPCError:  # the version is not registered until its worker polls
            await asyncio.sleep(0.1)
    raise AssertionError(f"{deployment}.{build_id} never became current")


async def test_a_task_stays_pinned_to_the_version_that_started_it(
    settings: Settings, temporal_env: WorkflowEnvironment, engine, admin_engine, fake_llm: FakeLlm
):
    deployment = f"lucy-test-{uuid.uuid4().hex[:8]}"
    temporal = settings.temporal.model_copy(
        update={"temporal_worker_deployment": deployment, "temporal_worker_build_id": "b1"}
    )
    versioned = settings.model_copy(update={"temporal": temporal})
    fake_llm.then(content="pinned")
    async with running_lucy(versioned, temporal_env.client, engine, admin_engine) as lucy:
        await _make_current(temporal_env, deployment, "b1")
        team = new_team()
        event = mention_event(team=team, text="which version am I on?")
        assert (await lucy.post_event(event)).status_code == 200
        ev = event["event"]
        handle = lucy.client.get_workflow_handle(f"lucy-task-{team}-{ev['channel']}-{ev['ts']}")
        result = await asyncio.wait_for(handle.result(), 30)
        assert result["status"] == "completed"
        info = (await handle.describe()).raw_description.workflow_execution_info.versioning_info
        assert info.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_PINNED
        assert info.deployment_version.build_id == "b1"
        assert info.deployment_version.deployment_name == deployment
        # Every queue role's worker joined the version: its LLM, tool and Slack calls went to the
        # version's own workers too (docs/scaling.md).
        described = await temporal_env.client.workflow_service.describe_worker_deployment_version(
            DescribeWorkerDeploymentVersionRequest(
                namespace=temporal_env.client.namespace,
                deployment_version=WorkerDeploymentVersion(deployment_name=deployment, build_id="b1"),
            )
        )
        q = versioned.temporal.temporal_task_queue
        joined = {t.name for t in described.worker_deployment_version_info.task_queue_infos}
        assert joined == {q, f"{q}-llm", f"{q}-tools", f"{q}-slack"}
