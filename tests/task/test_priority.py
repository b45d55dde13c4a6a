"""Priority and fairness on the real Temporal dev server (started with priority and fairness
on, as ``lucy dev`` starts it): tasks reach the queue through the real ingress (signed Slack
events, signed webhooks) while no worker runs; then a worker that takes one workflow task and
one activity at a time starts, and the order in which the tasks' first activities start shows
what Temporal handed out first. An approval click raises the waiting task's priority."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity, workflow
from temporalio.api.enums.v1 import DescribeTaskQueueMode, EventType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from app.devservers import LocalPostgres
from app.worker import lucy_worker
from capabilities.task.listeners.priority import resume_first
from capabilities.tools.egress import EgressGuard
from capabilities.triggers import rules as triggers
from lucy.contracts.ids import TaskSource, task_workflow_id, webhook_workflow_id
from lucy.contracts.priority import PRIORITY_OF_SOURCE, PriorityKey, fairness_key, task_priority
from lucy.crypto import KeyRing
from lucy.settings import Settings
from tests.conftest import (
    PUBLIC_TEST_SITES,
    Lucy,
    eventually,
    fake_settings,
    lucy_ingress,
    mention_event,
    new_team,
    running_lucy,
)
from tests.fakes.camofox import FakeCamoFox
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack


@pytest.fixture
def settings(
    postgres: LocalPostgres,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
    fake_gateway: FakeGateway,
    fake_camofox: FakeCamoFox,
) -> Settings:
    """The suite's settings, with the keys webhook triggers need."""
    return fake_settings(
        postgres,
        fake_slack,
        fake_llm,
        fake_gateway,
        fake_camofox,
        encryption_keys=KeyRing.new_key("k1"),
        slack_channel_min_interval=0.2,
        llm_streaming=False,
    )


@asynccontextmanager
async def _one_at_a_time(lucy: Lucy, engine: AsyncEngine) -> AsyncIterator[None]:
    """A worker that runs one workflow task and one activity at a time, so the order Temporal
    hands out tasks is the order they run."""
    async with lucy_worker(
        lucy.settings,
        lucy.client,
        engine=engine,
        egress=EgressGuard(resolver=PUBLIC_TEST_SITES),
        max_concurrent_workflow_tasks=1,
        max_concurrent_activities=1,
    ):
        yield


async def _backlog(client: Client, queue: str) -> int:
    """How many tasks (workflow or activity) wait in ``queue`` (Temporal's approximate backlog)."""
    answer = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue),
            api_mode=DescribeTaskQueueMode.DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
            report_stats=True,
        )
    )
    return sum(
        stats.approximate_backlog_count
        for version in answer.versions_info.values()
        for info in version.types_info.values()
        for stats in [info.stats]
    )


async def _at_least(lucy: Lucy, queue: str, count: int) -> bool:
    return await _backlog(lucy.client, queue) >= count


async def _priority(client: Client, workflow_id: str) -> tuple[int, str]:
    """The priority key and fairness key Temporal holds for ``workflow_id``."""
    info = (await client.get_workflow_handle(workflow_id).describe()).raw_description
    priority = info.workflow_execution_info.priority
    return priority.priority_key, priority.fairness_key


async def _first_activity_started(client: Client, workflow_id: str) -> datetime | None:
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            return event.event_time.ToDatetime()
    return None


async def _handled_order(client: Client, workflow_ids: list[str]) -> list[str]:
    """The workflows, in the order their first activity started (each waited for)."""
    starts: dict[str, datetime] = {}

    async def all_started() -> bool:
        for workflow_id in workflow_ids:
            if workflow_id not in starts and (at := await _first_activity_started(client, workflow_id)):
                starts[workflow_id] = at
        return len(starts) == len(workflow_ids)

    await eventually(all_started, "every task's first activity", timeout=90)
    return sorted(workflow_ids, key=lambda w: starts[w])


async def _mention(lucy: Lucy, team: str, user: str, text: str) -> str:
    event = mention_event(team=team, user=user, text=text, ts=f"{time.time():.6f}")
    assert (await lucy.post_event(event)).status_code == 200
    return task_workflow_id(team, event["event"]["channel"], event["event"]["ts"])


async def _webhook(lucy: Lucy, team: str, count: int) -> list[str]:
    """``count`` signed deliveries of a new webhook trigger of ``team``: their workflow ids."""
    answer = (await lucy.command("webhook create nightly summarise it", team=team, user="UADMIN1")).json()
    match = re.search(r"/webhooks/triggers/(wh_[0-9a-f]{24})`.*secret `(whk_[0-9a-f]{64})`", answer["text"])
    assert match, answer
    trigger, secret = match.group(1), match.group(2)
    ids = []
    for n in range(count):
        raw, delivery, ts = b'{"run": %d}' % n, f"d-{n}", str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Lucy-Delivery": delivery,
            "X-Lucy-Timestamp": ts,
            "X-Lucy-Signature": triggers.sign(secret, ts, delivery, raw),
        }
        posted = await lucy.http.post(f"/webhooks/triggers/{trigger}", content=raw, headers=headers)
        assert posted.json()["status"] == "started", posted.text
        ids.append(webhook_workflow_id(team, trigger, delivery))
    return ids


async def test_a_slack_request_is_handled_before_background_work_queued_ahead_of_it(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    engine: AsyncEngine,
    admin_engine: AsyncEngine,
    fake_llm: FakeLlm,
):
    team = new_team()
    async with lucy_ingress(settings, temporal_env.client, engine, admin_engine) as lucy:
        background = await _webhook(lucy, team, 4)
        interactive = await _mention(lucy, team, "U0ALICE", "what is on today?")
        queue = settings.temporal.temporal_task_queue
        await eventually(lambda: _at_least(lucy, queue, 5), "backlog")
        async with _one_at_a_time(lucy, engine):
            order = await _handled_order(lucy.client, [*background, interactive])
    assert order[0] == interactive, order
    assert await _priority(lucy.client, interactive) == (PriorityKey.INTERACTIVE, team)
    assert await _priority(lucy.client, background[0]) == (PriorityKey.BACKGROUND, team)


async def test_one_workspaces_burst_does_not_make_another_wait_for_all_of_it(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    engine: AsyncEngine,
    admin_engine: AsyncEngine,
    fake_llm: FakeLlm,
):
    busy, quiet = new_team(), new_team()
    async with lucy_ingress(settings, temporal_env.client, engine, admin_engine) as lucy:
        burst = [await _mention(lucy, busy, f"U0BUSY{n}", f"report {n}") for n in range(6)]
        other = await _mention(lucy, quiet, "U0QUIET", "one question")
        queue = settings.temporal.temporal_task_queue
        await eventually(lambda: _at_least(lucy, queue, 7), "backlog")
        async with _one_at_a_time(lucy, engine):
            order = await _handled_order(lucy.client, [*burst, other])
    # Same priority: first come, first served would put it last; fairness shares turns.
    assert order.index(other) <= 2, order
    assert await _priority(lucy.client, other) == (PriorityKey.INTERACTIVE, quiet)


async def test_an_approval_click_puts_the_waiting_task_ahead(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    team = new_team()
    fake_llm.then(content="Let me look.", tool_calls=[("exec", '{"command": "ls /srv"}')])
    fake_llm.then(content="Three files.")
    workflow_id = await _mention(lucy, team, "U0ALICE", "what is in /srv?")
    channel = mention_event(team=team)["event"]["channel"]
    approval = await eventually(lambda: fake_slack.with_actions(channel, "lucy_approve"), "approval message")
    handle = lucy.client.get_workflow_handle(workflow_id)
    assert await _priority(lucy.client, workflow_id) == (PriorityKey.INTERACTIVE, team)

    assert (await lucy.click(approval, "lucy_approve", team=team, user="UADMIN1")).status_code == 200
    result = await asyncio.wait_for(handle.result(), 30)
    assert result["status"] == "completed"
    assert await _priority(lucy.client, workflow_id) == (PriorityKey.RESUMED, team)
    assert fake_gateway.commands() == ["ls /srv"]


_ran: list[str] = []


@activity.defn(name="test.priority_step")
async def _step(name: str) -> None:
    _ran.append(name)


@workflow.defn(name="TestResumedPriority", sandboxed=False)
class _Resumable:
    """Waits for a signal (as a task waits for its approval), then runs one activity on the
    queue its id names."""

    def __init__(self) -> None:
        self._go = False

    @workflow.signal
    def proceed(self) -> None:
        self._go = True

    @workflow.run
    async def run(self, name: str) -> None:
        await workflow.wait_condition(lambda: self._go)
        queue = workflow.info().workflow_id.rsplit("-", 1)[0] + "-steps"
        await workflow.execute_activity(
            _step, name, task_queue=queue, start_to_close_timeout=timedelta(seconds=30)
        )


async def _resume_race(client: Client, *, raised: bool) -> list[str]:
    """A mention's task asks for its next step; then a scheduled task resumes (raised to the
    front or not) and asks for its own; then a worker takes one step at a time."""
    _ran.clear()
    prefix = f"resume-{uuid.uuid4().hex[:8]}"
    queue = f"{prefix}-tasks"
    async with Worker(client, task_queue=queue, workflows=[_Resumable]):
        asked = await client.start_workflow(
            _Resumable.run,
            "mention",
            id=f"{prefix}-m",
            task_queue=queue,
            priority=task_priority("mention", "T0A"),
        )
        scheduled = await client.start_workflow(
            _Resumable.run,
            "scheduled",
            id=f"{prefix}-s",
            task_queue=queue,
            priority=task_priority("schedule", "T0B"),
        )
        await asked.signal(_Resumable.proceed)
        await eventually(lambda: _pending_step(asked), "the mention's step queued")
        if raised:
            assert await resume_first(client, workflow_id=scheduled.id, team="T0B")
        await scheduled.signal(_Resumable.proceed)
        await eventually(lambda: _pending_step(scheduled), "the scheduled task's step queued")
        # pending in the workflow is not yet in matching (the server moves it there on its own
        # time): wait until both steps wait in the queue, or a worker may see only the first
        steps = f"{prefix}-steps"
        await eventually(lambda: _steps_waiting(client, steps, 2), "both steps in the task queue")
        async with Worker(
            client, task_queue=f"{prefix}-steps", activities=[_step], max_concurrent_activities=1
        ):
            await asyncio.gather(asked.result(), scheduled.result())
    return list(_ran)


async def _steps_waiting(client: Client, queue: str, count: int) -> bool:
    return await _backlog(client, queue) >= count


async def _pending_step(handle: WorkflowHandle[Any, Any]) -> bool:
    return bool((await handle.describe()).raw_description.pending_activities)


async def test_a_task_resumed_first_gets_its_next_step_ahead_of_one_asked_before_it(
    temporal_env: WorkflowEnvironment,
):
    """What the click's raise (``resume_first``) changes on the real server: without it the
    mention's step, queued first at a higher priority, runs first; with it the resumed task's."""
    assert await _resume_race(temporal_env.client, raised=False) == ["mention", "scheduled"]
    assert await _resume_race(temporal_env.client, raised=True) == ["scheduled", "mention"]


def test_every_source_but_a_sub_task_has_a_priority_and_people_come_first():
    assert set(PRIORITY_OF_SOURCE) == set(TaskSource) - {TaskSource.DELEGATED}
    people = {PRIORITY_OF_SOURCE[s] for s in (TaskSource.MENTION, TaskSource.DM, TaskSource.COMMAND)}
    nobody = {PRIORITY_OF_SOURCE[s] for s in (TaskSource.SCHEDULE, TaskSource.MONITOR, TaskSource.WEBHOOK)}
    assert max(people) < PRIORITY_OF_SOURCE[TaskSource.EMAIL] < min(nobody)
    assert task_priority("no-such-source", "T1").priority_key == 3  # Temporal's own default
    assert fairness_key("T0ABC") == "T0ABC"
    long = fairness_key("E" * 100)
    assert len(long.encode()) <= 64 and long == fairness_key("E" * 100) != fairness_key("E" * 99)


async def test_without_fairness_the_workspace_limit_refuses_a_burst_in_plain_words_and_others_run(
    postgres: LocalPostgres,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
    fake_gateway: FakeGateway,
    fake_camofox: FakeCamoFox,
    temporal_env: WorkflowEnvironment,
    engine: AsyncEngine,
    admin_engine: AsyncEngine,
):
    """The fallback on a server that ignores fairness keys: the ingress's per-workspace limit."""
    limited = fake_settings(
        postgres, fake_slack, fake_llm, fake_gateway, fake_camofox, rate_limit_workspace_per_minute=3
    )
    busy, quiet = new_team(), new_team()
    async with running_lucy(limited, temporal_env.client, engine, admin_engine) as lucy:
        burst = [await _mention(lucy, busy, f"U0BUSY{n}", f"report {n}") for n in range(4)]
        other = await _mention(lucy, quiet, "U0QUIET", "one question")
        result = await asyncio.wait_for(lucy.client.get_workflow_handle(other).result(), 30)
        assert result["status"] == "completed"
        refused = [e for e in fake_slack.ephemerals if "Your workspace is sending me a lot" in e["text"]]
        assert [e["user"] for e in refused] == ["U0BUSY3"]
        assert "try again in" in refused[0]["text"]
        assert [w async for w in lucy.client.list_workflows(f"WorkflowId = '{burst[3]}'")] == []
