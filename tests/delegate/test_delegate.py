"""Sub-tasks end to end (docs/delegate.md): a tool-use request's model calls ``delegate``; each
sub-task runs as a child ``LucyTaskWorkflow`` (``LucySource='delegated'``, the task as its
parent) in the task's thread, in parallel up to ``LUCY_DELEGATE_MAX_PARALLEL``, with a slice of
the task's steps and a subset of its tools; a failed one is retried once at a higher tier; every
result comes back to the parent's model as a tool result; the plan shows each one live;
approvals of a child are asked in the parent's thread and name the sub-task; cancelling the
parent cancels the children and settles their approvals as cancelled."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from lucy.contracts.ids import task_workflow_id
from lucy.settings import Settings
from tests.conftest import Lucy, eventually, mention_event, new_team, record_history, running_lucy
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack

CHANNEL = "C0GENERAL"
TOOL_USE = '{"intent": "tool_use", "reason": "several lookups"}'


LucyWith = Callable[..., AbstractAsyncContextManager[Lucy]]


@pytest.fixture
def lucy_with(
    settings: Settings, temporal_env: WorkflowEnvironment, engine: AsyncEngine, admin_engine: AsyncEngine
) -> LucyWith:
    """Start Lucy with other limits (``LUCY_AGENT_MAX_STEPS``, ``LUCY_DELEGATE_MAX_PARALLEL``...)."""

    def make(**limits: Any) -> AbstractAsyncContextManager[Lucy]:
        changed = settings.model_copy(update={"limits": settings.limits.model_copy(update=limits)})
        return running_lucy(changed, temporal_env.client, engine, admin_engine)

    return make


def delegate_call(*subtasks: dict[str, Any]) -> list[tuple[str, str]]:
    return [("delegate", json.dumps({"subtasks": list(subtasks)}))]


def delegates(fake_llm: FakeLlm, marker: str, *subtasks: dict[str, Any]) -> None:
    """Script the task whose request holds ``marker``: a tool-use request whose model delegates."""
    fake_llm.then(content=TOOL_USE, match="classify")
    fake_llm.then(tool_calls=delegate_call(*subtasks), user_contains=marker)


async def start(lucy: Lucy, request: str) -> tuple[str, str, str]:
    """Mention Lucy with ``request``; (team, the task's workflow id, its thread)."""
    team = new_team()
    event = mention_event(team=team, text=request)
    ev = event["event"]
    assert (await lucy.post_event(event)).status_code == 200
    return team, task_workflow_id(team, ev["channel"], ev["ts"]), ev["ts"]


async def children_of(lucy: Lucy, workflow_id: str) -> list[tuple[str, int, int]]:
    """(child id, started event id, closed event id or 0) of every child the task started."""
    history = await lucy.client.get_workflow_handle(workflow_id).fetch_history()
    started: dict[int, str] = {}
    closed: dict[str, int] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            attrs = event.child_workflow_execution_started_event_attributes
            started[event.event_id] = attrs.workflow_execution.workflow_id
        for kind in ("completed", "failed", "canceled"):
            name = f"child_workflow_execution_{kind}_event_attributes"
            if event.HasField(name):
                closed[getattr(event, name).workflow_execution.workflow_id] = event.event_id
    return [(wid, eid, closed.get(wid, 0)) for eid, wid in started.items()]


def parent_requests(fake_llm: FakeLlm, marker: str) -> list[dict[str, Any]]:
    """The agent-loop requests of the task (or sub-task) whose request contains ``marker``."""
    return [
        r
        for r in fake_llm.task_requests
        if marker in next((str(m.get("content")) for m in r["messages"] if m["role"] == "user"), "")
    ]


def tool_messages(request: dict[str, Any]) -> list[str]:
    return [str(m["content"]) for m in request["messages"] if m["role"] == "tool"]


async def test_three_sub_tasks_run_in_parallel_as_children_and_every_result_reaches_the_parent(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    marker = "compare the three vendors [fan-out]"
    delegates(
        fake_llm,
        marker,
        {"title": "Vendor A", "request": "look up alpha pricing", "tools": ["read_file"]},
        {"title": "Vendor B", "request": "look up beta pricing"},
        {"title": "Vendor C", "request": "look up gamma pricing", "tier": "fast"},
    )
    for name in ("alpha", "beta", "gamma"):
        fake_llm.then(
            content=f"{name.title()} costs 10 a seat.\nDetails about {name}.",
            user_contains=f"look up {name}",
            delay=0.5,
        )
    fake_llm.then(content="A, B and C all cost 10 a seat.", user_contains=marker)
    team, workflow_id, thread = await start(lucy, marker)
    handle = lucy.client.get_workflow_handle(workflow_id)
    result = await asyncio.wait_for(handle.result(), 60)
    assert result["status"] == "completed"

    children = await children_of(lucy, workflow_id)
    assert sorted(c[0].rsplit("-", 1)[1] for c in children) == ["1", "2", "3"]
    assert all(c[0].startswith(f"{workflow_id}-sub-") for c in children)
    # All three started before any of them finished: they ran at the same time.
    assert max(c[1] for c in children) < min(c[2] for c in children)
    for child_id, _, _ in children:
        desc = await lucy.client.get_workflow_handle(child_id).describe()
        sa = {p.key.name: p.value for p in desc.typed_search_attributes}
        assert sa["LucySource"] == "delegated" and sa["LucyWorkspace"] == team
        assert desc.raw_description.workflow_execution_info.parent_execution.workflow_id == workflow_id
        assert desc.status == WorkflowExecutionStatus.COMPLETED

    # Each child saw only its tools (a subset of the parent's, never delegate) and its tier.
    child_requests = {
        name: parent_requests(fake_llm, f"look up {name}")[0] for name in ("alpha", "beta", "gamma")
    }
    assert [t["function"]["name"] for t in child_requests["alpha"]["tools"]] == ["read_file"]
    assert "delegate" not in [t["function"]["name"] for t in child_requests["beta"]["tools"]]
    assert child_requests["gamma"]["model"] == lucy.settings.llm.model_tier_fast
    # Every result came back to the parent's model, with a summary.
    final = parent_requests(fake_llm, marker)[-1]
    [outcome] = tool_messages(final)
    for n, name in enumerate(("Alpha", "Beta", "Gamma"), 1):
        assert f'Sub-task {n} of 3 "Vendor {"ABC"[n - 1]}": done in 1 step(s).' in outcome
        assert f"Summary: {name} costs 10 a seat." in outcome
    # The thread holds the parent's answer only: the children post nothing themselves.
    posted = [m["text"] for m in fake_slack.posted(CHANNEL) if m.get("thread_ts") == thread]
    assert any("A, B and C all cost 10 a seat." in t for t in posted)
    assert not any("Details about" in t for t in posted)
    async with lucy.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT source, status FROM tasks WHERE workflow_id LIKE :w ORDER BY workflow_id"),
                {"w": f"{workflow_id}%"},
            )
        ).all()
    assert [tuple(r) for r in rows] == [("mention", "completed")] + [("delegated", "completed")] * 3
    await record_history(lucy, workflow_id, "lucy_task_delegate_fanout")
    await record_history(lucy, children[0][0], "lucy_task_delegated_child")


async def test_no_more_than_the_setting_run_at_once(lucy_with: LucyWith, fake_llm: FakeLlm):
    marker = "three jobs, two at a time [parallel]"
    delegates(fake_llm, marker, *({"title": f"Job {n}", "request": f"job number {n}"} for n in (1, 2, 3)))
    for n in (1, 2, 3):
        fake_llm.then(content=f"job {n} done", user_contains=f"job number {n}", delay=0.3)
    fake_llm.then(content="All three done.", user_contains=marker)
    async with lucy_with(delegate_max_parallel=2) as lucy:
        _, workflow_id, _ = await start(lucy, marker)
        result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 60)
        assert result["status"] == "completed"
        children = sorted(await children_of(lucy, workflow_id), key=lambda c: c[1])
    assert len(children) == 3
    # The third started only after one of the first two had finished.
    assert children[2][1] > min(children[0][2], children[1][2])


async def test_a_failed_sub_task_is_retried_once_at_a_higher_tier(lucy: Lucy, fake_llm: FakeLlm):
    marker = "two lookups, one breaks [replan]"
    models = lucy.settings.llm
    delegates(
        fake_llm,
        marker,
        {"title": "Good", "request": "the good lookup"},
        {"title": "Flaky", "request": "the flaky lookup"},
    )
    fake_llm.then(content="good result", user_contains="the good lookup")
    # The flaky one's default-tier model refuses for good (401: neither retried nor escalated).
    fake_llm.then(status=401, user_contains="the flaky lookup", match=models.model_tier_default)
    fake_llm.then(
        content="flaky result, at last", user_contains="the flaky lookup", match=models.model_tier_frontier
    )
    fake_llm.then(content="Both done.", user_contains=marker)
    _, workflow_id, _ = await start(lucy, marker)
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 60)
    assert result["status"] == "completed"
    children = {c[0].split("-sub-", 1)[1] for c in await children_of(lucy, workflow_id)}
    step = next(iter(children)).split("-")[0]
    assert children == {f"{step}-1", f"{step}-2", f"{step}-2-retry"}
    first = await lucy.client.get_workflow_handle(f"{workflow_id}-sub-{step}-2").result()
    assert first["status"] == "failed"
    [outcome] = tool_messages(parent_requests(fake_llm, marker)[-1])
    assert 'Sub-task 2 of 2 "Flaky": done in 1 step(s), after a retry at the frontier tier.' in outcome
    assert "Summary: flaky result, at last" in outcome
    await record_history(lucy, workflow_id, "lucy_task_delegate_retry")


async def test_a_sub_task_that_fails_twice_is_reported_as_failed(lucy: Lucy, fake_llm: FakeLlm):
    marker = "one lookup that never works [report]"
    delegates(fake_llm, marker, {"title": "Broken", "request": "the broken lookup"})
    fake_llm.then(status=401, user_contains="the broken lookup")
    fake_llm.then(status=401, user_contains="the broken lookup")
    fake_llm.then(content="The lookup failed; I could not do it.", user_contains=marker)
    _, workflow_id, _ = await start(lucy, marker)
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 60)
    assert result["status"] == "completed"
    [outcome] = tool_messages(parent_requests(fake_llm, marker)[-1])
    assert outcome.startswith('Sub-task 1 of 1 "Broken": failed (')
    assert "after a retry at the frontier tier" in outcome and "tell the user" in outcome


async def test_each_sub_task_gets_a_slice_of_the_remaining_steps_and_settles_what_it_used(
    lucy_with: LucyWith, fake_llm: FakeLlm
):
    marker = "two jobs on a budget [slices]"
    delegates(
        fake_llm,
        marker,
        {"title": "Busy", "request": "the busy job", "tools": ["read_file"]},
        {"title": "Quick", "request": "the quick job"},
    )
    for _ in range(5):  # the busy job would read forever: its slice stops it
        fake_llm.then(tool_calls=[("read_file", '{"path": "/etc/hosts"}')], user_contains="the busy job")
    fake_llm.then(content="quick done", user_contains="the quick job")
    fake_llm.then(content="Both done.", user_contains=marker)
    async with lucy_with(agent_max_steps=8) as lucy:
        _, workflow_id, _ = await start(lucy, marker)
        result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 60)
        children = {c[0].rsplit("-", 1)[1]: c[0] for c in await children_of(lucy, workflow_id)}
        busy = await lucy.client.get_workflow_handle(children["1"]).result()
        quick = await lucy.client.get_workflow_handle(children["2"]).result()
    # 8 steps, 1 taken by the delegate call, 1 kept for the answer: 6, so 3 for each sub-task.
    busy_requests = parent_requests(fake_llm, "the busy job")
    assert len(busy_requests) == 3 and busy["llm_steps"] == 3
    assert "step" in busy["answer"]  # it stopped at its slice and said so
    assert quick["llm_steps"] == 1
    # The parent settled what they used: 1 (delegate) + 3 + 1 + 1 (its answer).
    assert result["status"] == "completed" and result["llm_steps"] == 6


async def test_too_few_steps_left_for_the_sub_tasks_is_told_to_the_model(
    lucy_with: LucyWith, fake_llm: FakeLlm
):
    marker = "too much for the budget [no room]"
    delegates(fake_llm, marker, *({"title": f"T{n}", "request": f"part {n}"} for n in (1, 2)))
    fake_llm.then(content="I did it myself.", user_contains=marker)
    async with lucy_with(agent_max_steps=3) as lucy:
        _, workflow_id, _ = await start(lucy, marker)
        result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 60)
        assert result["status"] == "completed"
        assert await children_of(lucy, workflow_id) == []
    [told] = tool_messages(parent_requests(fake_llm, marker)[-1])
    assert told.startswith("Error: 1 model step(s) are left") and "too few for 2 sub-task(s)" in told


def _with_actions(slack: FakeSlack, action_id: str) -> list[dict[str, Any]]:
    return [
        copy.deepcopy(m)
        for m in slack.posted(CHANNEL)
        for block in m.get("blocks") or []
        if block.get("type") == "actions" and any(e.get("action_id") == action_id for e in block["elements"])
    ]


async def test_a_sub_tasks_approval_is_asked_in_the_parents_thread_naming_the_sub_task(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    marker = "check the disk on the box [approval]"
    delegates(
        fake_llm, marker, {"title": "Disk <!here> check", "request": "run df on the box", "tools": ["exec"]}
    )
    fake_llm.then(tool_calls=[("exec", '{"command": "df -h"}')], user_contains="run df on the box")
    fake_llm.then(content="Disk is 40% full.", user_contains="run df on the box")
    fake_llm.then(content="The disk is 40% full.", user_contains=marker)
    team, workflow_id, thread = await start(lucy, marker)
    [approval] = await eventually(lambda: _with_actions(fake_slack, "lucy_approve"), "the approval")
    assert approval["thread_ts"] == thread
    header = approval["blocks"][0]["text"]["text"]
    assert "*Asked by Sub-task 1 of 1: Disk &lt;!here&gt; check*" in header
    assert "df -h" in json.dumps(approval["blocks"])
    child_id = next(c[0] for c in await children_of(lucy, workflow_id))
    child = lucy.client.get_workflow_handle(child_id)
    for _ in range(200):
        if (await child.query("status"))["status"] == "pending_approval":
            break
        await asyncio.sleep(0.02)
    # A reply in the thread while the sub-task waits goes to the parent (the thread's task).
    reply = mention_event(team=team, text="")
    reply["event"] = {
        "type": "message",
        "channel_type": "channel",
        "user": "U0BOB",
        "text": "also check /var please",
        "ts": f"{float(thread) + 0.5:.6f}",
        "thread_ts": thread,
        "channel": CHANNEL,
    }
    assert (await lucy.post_event(reply)).status_code == 200
    assert (await lucy.click(approval, "lucy_approve", team=team, user="UADMIN1")).status_code == 200
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 60)
    assert result["status"] == "completed"
    assert fake_gateway.commands() == ["df -h"]
    assert "also check /var please" in json.dumps(parent_requests(fake_llm, marker)[-1]["messages"])
    assert not any(
        "also check /var" in json.dumps(r["messages"]) for r in parent_requests(fake_llm, "run df")
    )
    async with lucy.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT a.status FROM approvals a JOIN tasks t ON a.task_id = t.id WHERE t.workflow_id = :w"
                ),
                {"w": child_id},
            )
        ).one()
    assert row[0] == "approved"


async def test_cancelling_the_parent_cancels_its_children_and_settles_their_approvals(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    marker = "deploy both services [cancel]"
    delegates(
        fake_llm,
        marker,
        {"title": "Deploy web", "request": "deploy the web service", "tools": ["exec"]},
        {"title": "Deploy api", "request": "deploy the api service", "tools": ["exec"]},
    )
    for name in ("web", "api"):
        fake_llm.then(tool_calls=[("exec", f'{{"command": "make deploy-{name}"}}')], user_contains=name)
    team, workflow_id, thread = await start(lucy, marker)
    approvals = await eventually(
        lambda: (found := _with_actions(fake_slack, "lucy_approve")) and len(found) == 2 and found,
        "both approvals",
    )
    progress = await eventually(
        lambda: next(iter(_with_actions(fake_slack, "lucy_cancel")), None), "the progress message"
    )
    assert progress["thread_ts"] == thread
    for child_id, _, _ in await children_of(lucy, workflow_id):
        child = lucy.client.get_workflow_handle(child_id)
        await eventually(lambda c=child: _asked(c), "a child waiting on its posted approval")  # type: ignore[misc]
    assert (await lucy.click(progress, "lucy_cancel", team=team, user="U0ALICE")).status_code == 200
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 60)
    assert result["status"] == "cancelled"
    for child_id, _, closed in await children_of(lucy, workflow_id):
        assert closed, f"{child_id} still open"
        desc = await lucy.client.get_workflow_handle(child_id).describe()
        assert desc.status == WorkflowExecutionStatus.CANCELED
    assert fake_gateway.commands() == []
    updated = {u["ts"]: u["text"] for u in fake_slack.updates}
    for approval in approvals:
        await eventually(lambda a=approval: a["ts"] in {u["ts"] for u in fake_slack.updates}, "settled")  # type: ignore[misc]
        updated = {u["ts"]: u["text"] for u in fake_slack.updates}
        assert "Cancelled with the task" in updated[approval["ts"]]
    async with lucy.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT t.status, a.status FROM approvals a JOIN tasks t ON a.task_id = t.id "
                    "WHERE t.workflow_id LIKE :w"
                ),
                {"w": f"{workflow_id}-sub-%"},
            )
        ).all()
    assert sorted(tuple(r) for r in rows) == [("cancelled", "cancelled")] * 2
    await record_history(lucy, workflow_id, "lucy_task_delegate_cancelled")


@pytest.fixture
async def streaming_lucy(
    settings: Settings, temporal_env: WorkflowEnvironment, engine: AsyncEngine, admin_engine: AsyncEngine
) -> AsyncIterator[Lucy]:
    streaming = settings.model_copy(update={"llm": settings.llm.model_copy(update={"llm_streaming": True})})
    async with running_lucy(streaming, temporal_env.client, engine, admin_engine) as running:
        yield running


async def test_the_plan_shows_each_sub_task_live(
    streaming_lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    lucy = streaming_lucy
    marker = "two checks with a plan [plan]"
    delegates(
        fake_llm,
        marker,
        {"title": "First check", "request": "the first check"},
        {"title": "Second check", "request": "the second check"},
    )
    # Longer than the progress message's second between updates, so "in progress" gets its turn.
    fake_llm.then(content="first fine", user_contains="the first check", delay=1.5)
    fake_llm.then(status=401, user_contains="the second check")
    fake_llm.then(status=401, user_contains="the second check")
    fake_llm.then(content="One check passed, one failed.", user_contains=marker)
    _, workflow_id, thread = await start(lucy, marker)
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 60)
    assert result["status"] == "completed"
    plan = next(m for m in fake_slack.posted(CHANNEL) if m.get("thread_ts") == thread and m.get("plan"))
    tasks = {t["title"]: t for t in plan["plan"]["tasks"].values()}
    assert tasks["Sub-task 1 of 2: First check"]["status"] == "complete"
    assert tasks["Sub-task 2 of 2: Second check"]["status"] == "error"
    seen: dict[str, list[str]] = {}
    for update in plan["task_updates"]:
        seen.setdefault(update["title"], []).append(update["status"])
    first = seen["Sub-task 1 of 2: First check"]
    assert first[0] == "pending" and "in_progress" in first and first[-1] == "complete"
    assert seen["Sub-task 2 of 2: Second check"][-1] == "error"


async def test_a_terminated_parent_cancels_its_children_by_the_parent_close_policy(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    """No parent code runs when it is terminated: only ``REQUEST_CANCEL`` stops the children."""
    marker = "restart the worker pool [terminate]"
    delegates(fake_llm, marker, {"title": "Restart", "request": "restart the pool", "tools": ["exec"]})
    fake_llm.then(
        tool_calls=[("exec", '{"command": "systemctl restart pool"}')], user_contains="restart the pool"
    )
    _, workflow_id, _ = await start(lucy, marker)
    [approval] = await eventually(lambda: _with_actions(fake_slack, "lucy_approve"), "the approval")
    [(child_id, _, _)] = await children_of(lucy, workflow_id)
    child = lucy.client.get_workflow_handle(child_id)
    # The child knows its approval message (the request activity's result is in its history):
    # a cancel earlier than that settles the approval without a message to update.
    await eventually(lambda: _asked(child), "the child waiting on its posted approval")
    await lucy.client.get_workflow_handle(workflow_id).terminate(reason="an engineer stops it")
    await eventually(lambda: _closed(child), "the child closed by the parent close policy", timeout=30)
    assert (await child.describe()).status == WorkflowExecutionStatus.CANCELED
    await eventually(
        lambda: (
            "Cancelled with the task"
            in {u["ts"]: u["text"] for u in fake_slack.updates}.get(approval["ts"], "")
        ),
        "the child's approval settled as cancelled",
    )
    assert fake_gateway.commands() == []


async def _asked(handle: Any) -> bool:
    """Whether the workflow has taken the result of its ``approvals.request`` activity."""
    events = (await handle.fetch_history()).events
    scheduled = {
        e.event_id
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "approvals.request"
    }
    done = [
        e.event_id
        for e in events
        if e.HasField("activity_task_completed_event_attributes")
        and e.activity_task_completed_event_attributes.scheduled_event_id in scheduled
    ]
    return bool(done) and any(
        e.event_id > done[0] and e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in events
    )


async def _closed(handle: Any) -> bool:
    return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING
