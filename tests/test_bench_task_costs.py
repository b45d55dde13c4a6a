"""``bench/task_costs.py`` keeps working: one chat task through the real ingress and worker, its
costs counted from the history, both engines' statements, the fake Slack's log and the fake
LLM's requests (counts, not timings)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from lucy.db.session import create_engine
from lucy.settings import Settings
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack

BENCH = Path(__file__).resolve().parent.parent / "bench" / "task_costs.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("task_costs_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


async def test_one_chat_task_is_counted_end_to_end(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    admin_engine: AsyncEngine,
    fake_slack: FakeSlack,
    fake_llm: FakeLlm,
    fake_gateway: FakeGateway,
):
    bench = _bench()
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
