"""``bench/task_costs.py`` keeps working: one chat task through the real ingress and worker, its
costs counted from the history, both engines' statements, the fake Slack's log and the fake
LLM's requests (counts, not timings)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from lucy.db.session import create_engine
from lucy.settings import Settings
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack
from tests.fixtures.bench import load_bench


async def test_one_chat_task_is_counted_end_to_end(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    admin_engine: AsyncEngine,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
    fake_gateway: FakeGateway,
):
    bench = load_bench("task_costs.py")
    worker_engine, ingress_engine = create_engine(settings.database), create_engine(settings.database)
    try:
        async with bench.running(
            settings,
            temporal_env.client,
            worker_engine=worker_engine,
            ingress_engine=ingress_engine,
            admin_engine=admin_engine,
            slack=fake_slack,
            llm=fake_llm,
            gateway=fake_gateway,
        ) as rig:
            cost = await bench.measure(rig, "chat")
    finally:
        await worker_engine.dispose()
        await ingress_engine.dispose()

    assert cost.events > 10 and cost.workflow_tasks >= 2 and cost.history_bytes > 1_000
    assert cost.actions["workflow start"] == 1
    assert cost.actions["activity"] == sum(cost.activities.values()) >= 4  # no retries against the fakes
    assert cost.activities["llm.chat"] == 2  # the classification and the answer
    assert cost.activities["records.task_running"] == 1
    assert cost.db["worker statements"] > 5 and cost.db["ingress statements"] >= 1
    assert cost.db["worker round trips"] > cost.db["worker statements"]  # BEGIN, COMMIT and pings too
    assert sum(cost.slack.values()) >= 1
    assert cost.llm["classify calls"] == 1 and cost.llm["agent calls"] == 1
    assert cost.llm["agent prompt chars"] > cost.llm["classify prompt chars"] > 0
    assert cost.llm["prompt tokens (est.)"] > 0
    # The report prints every kind it was given.
    printed = bench.report({"chat": bench.median_cost([cost])}, None)
    assert printed.splitlines()[3].startswith("chat")


def test_the_capacity_model_runs_on_what_task_costs_writes(tmp_path: Path):
    bench, capacity = load_bench("task_costs.py"), load_bench("capacity_model.py")
    cost = bench.Cost(kind="chat", events=50, workflow_tasks=7, history_bytes=18_000, workflow_task_ms=200.0)
    cost.actions = {"workflow start": 1, "activity": 7, "search attribute upsert": 4}
    cost.activities = {"llm.chat": 2, "slack.post_message": 1, "records.steps": 1}
    cost.activity_ms = {"llm.chat": 100.0, "slack.post_message": 20.0, "records.steps": 50.0}
    cost.db = {"worker round trips": 80, "ingress round trips": 7, "worker checkouts": 10}
    cost.slack = {"chat.update": 1, "chat.startStream": 1}
    cost.llm = {"classify calls": 1, "agent calls": 1}
    figures = {kind: bench.median_cost([cost]) for kind in capacity.MIX}
    path = tmp_path / "costs.json"
    path.write_text(json.dumps({"figures": figures, "sizes": {"tasks": 10, "bytes": {"tasks": 20_000}}}))
    kinds, store_bytes = capacity.load([path, path, path])
    assert store_bytes == 2_000
    args = argparse.Namespace(
        tasks_per_day=100_000,
        llm_seconds=6.0,
        classify_seconds=1.0,
        tool_seconds=2.0,
        slack_seconds=0.3,
        workspaces=1,
        retention_days=7,
        included_actions=1e6,
        plan_minimum=100.0,
        plan_share=0.05,
    )
    lines = capacity.model(kinds, store_bytes, args)
    text = "\n".join(lines)
    # 12 actions in the history, and heartbeats: the classification 1 + 0, the answer 1 + 3.
    assert "12.00 billable actions in the history + 5.00 heartbeat actions" in text
    assert "peak 5.56 tasks/s" in text and "chat.update: 1.00 per task -> 333.3/min" in text
    # 17 actions x 100,000 x 30 = 51 M, less the plan's 1 M, priced by tier.
    assert capacity.price(50e6) == 5 * 50 + 5 * 45 + 10 * 40 + 30 * 35
    assert "51.0 M actions/month" in text
