"""The connection budget of a worker: when every connection of its pool is busy, a step fails
after ``LUCY_DATABASE_POOL_TIMEOUT_SECONDS`` with a retryable, plain-words error (never a hang),
and the task finishes once a connection is free again, answered once and recorded once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import func, select, text
from temporalio.testing import WorkflowEnvironment

from app.ingress.app import IngressDeps, create_app
from app.worker import lucy_worker
from capabilities.tools.egress import EgressGuard
from lucy.contracts.ids import task_workflow_id
from lucy.db.models import Task
from lucy.db.pool import POOL_TIMEOUT_TYPE
from lucy.db.session import create_engine
from lucy.settings import Settings
from tests.conftest import PUBLIC_TEST_SITES, Lucy, eventually, mention_event, new_team
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack


async def _pool_failure(lucy: Lucy, workflow_id: str) -> Any:
    """The pending activity that last failed for want of a connection, once it has."""
    description = await lucy.client.get_workflow_handle(workflow_id).describe()
    for pending in description.raw_description.pending_activities:
        failure = pending.last_failure
        if failure.application_failure_info.type == POOL_TIMEOUT_TYPE:
            return pending
    return None


async def test_a_step_without_a_free_connection_is_retried_and_the_task_still_answers(
    make_settings: Callable[..., Settings],
    temporal_env: WorkflowEnvironment,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
    engine: Any,
    admin_engine: Any,
):
    settings = make_settings(
        database_pool_size=1,
        database_max_overflow=0,
        database_pool_timeout_seconds=0.5,
    )
    worker_engine = create_engine(settings.database)  # the worker's budget: one connection
    fake_llm.then(content="Paris.")
    team = new_team()
    event = mention_event(team=team, text="capital of France?")
    workflow_id = task_workflow_id(team, event["event"]["channel"], event["event"]["ts"])

    async def get_client() -> Any:
        return temporal_env.client

    app = create_app(IngressDeps(settings=settings, engine=engine, temporal=get_client))
    try:
        async with (
            lucy_worker(
                settings, temporal_env.client, engine=worker_engine, egress=EgressGuard(PUBLIC_TEST_SITES)
            ),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingress") as http,
        ):
            lucy = Lucy(settings=settings, client=temporal_env.client, http=http, engine=admin_engine)
            async with worker_engine.connect() as held:  # the test holds the worker's only connection
                await held.execute(text("SELECT 1"))
                assert (await lucy.post_event(event)).status_code == 200
                pending = await eventually(lambda: _pool_failure(lucy, workflow_id), "a pool timeout")
                assert "no database connection was free in time" in pending.last_failure.message
                assert not pending.last_failure.application_failure_info.non_retryable
                assert fake_slack.posted(event["event"]["channel"]) == []  # nothing answered yet
            result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 60)
    finally:
        await worker_engine.dispose()
    assert result["status"] == "completed"
    posts = fake_slack.posted(event["event"]["channel"])
    assert [p["text"] for p in posts] == ["Paris."]
    async with admin_engine.connect() as conn:
        rows = await conn.execute(
            select(func.count()).select_from(Task).where(Task.workflow_id == workflow_id)
        )
        assert rows.scalar_one() == 1
