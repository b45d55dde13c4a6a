"""Benchmark: a three-way fan-out of 5-second sub-tasks against the longest of them (issue 28).

    .venv/bin/python bench/delegate_fanout.py                 # defaults: 3 sub-tasks of 5 s, 3 runs
    .venv/bin/python bench/delegate_fanout.py --subtasks 4 --seconds 2 --runs 5

One embedded PostgreSQL, one Temporal dev server and Lucy's real worker (``app.worker.lucy_worker``)
in this process, with the fake Slack and a fake OpenAI-compatible LLM as real HTTP servers. The
model answers by the conversation: a parent request makes it call ``delegate`` with n sub-tasks;
a sub-task's (or the baseline task's) model call takes ``--seconds`` before it answers; the
parent then answers with what came back.

Measured in the same run, interleaved round by round:

1. **baseline**: one ordinary task whose only model call takes ``--seconds`` (what one sub-task
   costs on its own, through the same engine);
2. **fan-out**: a task that delegates n such sub-tasks (``LUCY_DELEGATE_MAX_PARALLEL`` >= n);
   its wall time (start -> result), and each child's own time (its start to its close, from
   Temporal).

It prints the fan-out's wall time over the longest child's (the issue's target: <= 1.3) and over
the baseline task's.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from temporalio import workflow

ROOT = Path(__file__).parent.parent
if str(ROOT) not in sys.path:  # this module is re-imported by the workflow sandbox
    sys.path.insert(0, str(ROOT))

with workflow.unsafe.imports_passed_through():
    import argparse
    import asyncio
    import json
    import re
    import shutil
    import statistics
    import tempfile
    import time
    import uuid
    from typing import Any

    from temporalio.client import Client

    from app.devservers import LocalPostgres, free_port
    from app.worker import lucy_worker
    from bench.servers import scratch_temporal
    from bench.step_overhead import Bench
    from lucy import migrate
    from lucy.contracts.ids import TaskStatus, task_workflow_id
    from lucy.db.session import create_engine, create_sessionmaker
    from lucy.logging import configure_logging
    from lucy.settings import load_settings
    from tests.fakes.llm import FakeLlm, Scripted
    from tests.fakes.slack import FakeSlack


@dataclass
class FanoutLlm(FakeLlm):
    """Answers by the conversation (concurrent tasks cannot take each other's answers):
    ``fanout n=<n>`` delegates n sub-tasks ``slow job <i>``, then answers "all done"; a request
    with ``slow job`` answers after ``seconds``. Classifications say ``tool_use``."""

    seconds: float = 5.0

    def _take(self, body: dict[str, Any]) -> Scripted:
        if (body.get("response_format") or {}).get("type") == "json_object":
            return Scripted(content='{"intent": "tool_use", "reason": "bench"}', cost=0.00001)
        messages = body.get("messages") or []
        request = next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")
        fan = re.search(r"fanout n=(\d+)", request)
        if fan and not any(m.get("role") == "tool" for m in messages):
            subtasks = [{"title": f"Job {i}", "request": f"slow job {i}"} for i in range(1, int(fan[1]) + 1)]
            return Scripted(tool_calls=[("delegate", json.dumps({"subtasks": subtasks}))])
        if "slow job" in request:
            return Scripted(content="job done", delay=self.seconds)
        return Scripted(content="all done")


async def children_seconds(client: Client, workflow_id: str) -> list[float]:
    """Each child's own time, its start to its close (Temporal's clock)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    ids = [
        e.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
        for e in history.events
        if e.HasField("child_workflow_execution_started_event_attributes")
    ]
    out = []
    for child in ids:
        desc = await client.get_workflow_handle(child).describe()
        assert desc.close_time is not None and desc.start_time is not None
        out.append((desc.close_time - desc.start_time).total_seconds())
    return out


async def one(bench: Bench, text: str) -> tuple[float, str]:
    """One task through the engine: (wall seconds, its workflow id)."""
    task = await bench.new_task(text)
    workflow_id = task_workflow_id(task.slack_team_id, task.slack_channel_id, task.message_ts)
    started = time.perf_counter()
    result = await (await bench.start_lucy(task, workflow_id)).result()
    if result.status != TaskStatus.COMPLETED.value:
        raise RuntimeError(f"{workflow_id} ended {result.status} ({result.error_type})")
    return time.perf_counter() - started, workflow_id


async def measure(bench: Bench, args: argparse.Namespace) -> None:
    baseline, fanout, longest = [], [], []
    for round_ in range(args.runs + 1):  # the first round warms up, untimed
        solo, _ = await one(bench, f"bench solo: slow job {uuid.uuid4().hex[:6]}")
        wall, workflow_id = await one(bench, f"bench fanout n={args.subtasks}")
        kids = await children_seconds(bench.client, workflow_id)
        if len(kids) != args.subtasks:
            raise RuntimeError(f"{workflow_id}: {len(kids)} children, not {args.subtasks}")
        if round_:
            baseline.append(solo)
            fanout.append(wall)
            longest.append(max(kids))
    med = statistics.median
    print(f"{args.subtasks} sub-tasks of {args.seconds:.1f} s, {args.runs} runs (median; max):")
    print(
        f"  baseline task (one {args.seconds:.1f} s model call): {med(baseline):.2f} s; {max(baseline):.2f} s"
    )
    print(f"  longest child, start to close:       {med(longest):.2f} s; {max(longest):.2f} s")
    print(f"  fan-out task, start to result:       {med(fanout):.2f} s; {max(fanout):.2f} s")
    ratios = [f / c for f, c in zip(fanout, longest, strict=True)]
    print(f"  fan-out / longest child: {med(ratios):.3f} (max {max(ratios):.3f}; target <= 1.3)")
    print(f"  fan-out / baseline task: {med(fanout) / med(baseline):.3f}")
    print(f"  sequential would be about {args.subtasks * med(longest):.1f} s")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subtasks", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="each sub-task's model call")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    configure_logging("WARNING", json_output=False)
    tmp = Path(tempfile.mkdtemp(prefix="lucy-fanout-"))
    slack, llm = FakeSlack(), FanoutLlm(seconds=args.seconds)
    pg = LocalPostgres(tmp / "pg", port=free_port())
    temporal = scratch_temporal(tmp / "temporal.db")
    bench, engine = Bench(args), None
    try:
        for fake in (slack, llm):
            await fake.start()
        pg.start()
        await asyncio.to_thread(migrate.upgrade, pg.url)
        temporal.start()
        await temporal.wait_ready()
        settings = load_settings(
            env="test",
            log_level="WARNING",
            database_url=pg.app_url,
            database_migration_url=pg.url,
            slack_bot_token=slack.token,
            slack_api_url=slack.api_url,
            openrouter_api_key=llm.api_key,
            openrouter_base_url=llm.base_url,
            camofox_url=f"http://127.0.0.1:{free_port()}",  # nobody listens: no browser tool
            temporal_address=temporal.address,
            temporal_task_queue=f"lucy-bench-{uuid.uuid4().hex[:8]}",
            slack_channel_min_interval=0.0,
            llm_streaming=False,
            delegate_max_parallel=max(4, args.subtasks),
        )
        engine = create_engine(settings.database)
        bench.sessions = create_sessionmaker(engine)
        bench.client = await Client.connect(temporal.address, namespace="default")
        bench.lucy_queue = settings.temporal.temporal_task_queue
        async with lucy_worker(settings, bench.client, engine=engine):
            await measure(bench, args)
    finally:
        if engine is not None:
            await engine.dispose()
        temporal.stop()
        pg.stop()
        for fake in (slack, llm):
            await fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
