"""Benchmark: how long one task waits behind a backlog, with and without Lucy's priority and
fairness keys (issue 30, "Priority and fairness").

    .venv/bin/python bench/priority_wait.py                  # defaults: backlog 30, 3 runs
    .venv/bin/python bench/priority_wait.py --backlog 50 --runs 5

One Temporal dev server, started as ``lucy dev`` starts it (``app.devservers.LocalTemporal``:
fairness on, one partition per queue), and a worker that runs one 20 ms activity at a time (a
stand-in for a task's first step; what is measured is Temporal's hand-out order, not Lucy's
steps). Each round, on fresh task queues, with no worker running while they are queued:

1. **priority**: ``--backlog`` webhook tasks, then one mention. Baseline: started without a
   priority (as before this change: first come, first served); Lucy: ``task_priority(source,
   team)``.
2. **fairness**: ``--backlog`` mentions from one workspace, then one from another. Baseline: no
   fairness key; Lucy: the Slack team as the key.

Then the worker starts; the figures are the last task's place in the order its tasks' first
activities started and its wait after the first of them started (Temporal's history). The
script prints each round and the medians, baseline and Lucy side by side.
"""

from __future__ import annotations

import sys
from pathlib import Path

from temporalio import activity, workflow

ROOT = Path(__file__).parent.parent
if str(ROOT) not in sys.path:  # this module is re-imported by the workflow sandbox
    sys.path.insert(0, str(ROOT))

with workflow.unsafe.imports_passed_through():
    import argparse
    import asyncio
    import shutil
    import statistics
    import tempfile
    import uuid
    from datetime import UTC, datetime, timedelta

    from temporalio.api.enums.v1 import EventType
    from temporalio.client import Client
    from temporalio.common import Priority
    from temporalio.worker import Worker

    from app.devservers import LocalTemporal, free_port
    from lucy.contracts.ids import TaskSource
    from lucy.contracts.priority import task_priority


@activity.defn(name="bench.first_step")
async def first_step(name: str) -> str:
    await asyncio.sleep(0.02)
    return name


@workflow.defn(name="BenchTask")
class BenchTask:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(first_step, name, start_to_close_timeout=timedelta(seconds=30))


async def _first_activity(client: Client, workflow_id: str) -> datetime:
    """When the workflow's first activity started (Temporal's history)."""
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            return event.event_time.ToDatetime(tzinfo=UTC)
    raise AssertionError(f"{workflow_id} started no activity")


async def _scenario(client: Client, starts: list[tuple[str, Priority]]) -> tuple[float, int]:
    """Queue ``starts`` (id suffix, priority) with no worker, then run them one at a time: the
    last one's wait after the queue's first hand-out (so the worker's own start-up, which the
    busy machine makes vary by seconds, is not counted) and its place (1 = first)."""
    queue = f"bench-{uuid.uuid4().hex[:10]}"
    ids = [f"{queue}-{name}" for name, _ in starts]
    for workflow_id, (_, priority) in zip(ids, starts, strict=True):
        await client.start_workflow(
            BenchTask.run, workflow_id, id=workflow_id, task_queue=queue, priority=priority
        )
    await asyncio.sleep(1.0)  # every start reaches the queue's backlog
    async with Worker(
        client,
        task_queue=queue,
        workflows=[BenchTask],
        activities=[first_step],
        max_concurrent_workflow_tasks=1,
        max_concurrent_activities=1,
    ):
        await asyncio.gather(*(client.get_workflow_handle(w).result() for w in ids))
    firsts = {w: await _first_activity(client, w) for w in ids}
    place = sorted(firsts, key=lambda w: firsts[w]).index(ids[-1]) + 1
    return (firsts[ids[-1]] - min(firsts.values())).total_seconds(), place


def _priority_case(backlog: int, lucy: bool) -> list[tuple[str, Priority]]:
    def p(source: TaskSource) -> Priority:
        return task_priority(source, "T0ACME") if lucy else Priority.default

    return [
        *((f"hook-{n}", p(TaskSource.WEBHOOK)) for n in range(backlog)),
        ("mention", p(TaskSource.MENTION)),
    ]


def _fairness_case(backlog: int, lucy: bool) -> list[tuple[str, Priority]]:
    def p(team: str) -> Priority:
        key = task_priority(TaskSource.MENTION, team)
        return key if lucy else Priority(priority_key=key.priority_key)

    return [*((f"busy-{n}", p("T0BUSY")) for n in range(backlog)), ("quiet", p("T0QUIET"))]


async def main(backlog: int, runs: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="lucy-bench-priority-"))
    temporal = LocalTemporal(
        data / "temporal.db", port=free_port(), ui_port=free_port(), namespace="default", search_attributes=[]
    )
    temporal.start()
    try:
        await temporal.wait_ready()
        client = await Client.connect(temporal.address)
        results: dict[str, list[tuple[float, int, float, int]]] = {"priority": [], "fairness": []}
        for run in range(1, runs + 1):
            for name, case in (("priority", _priority_case), ("fairness", _fairness_case)):
                base = await _scenario(client, case(backlog, lucy=False))
                lucy = await _scenario(client, case(backlog, lucy=True))
                results[name].append((*base, *lucy))
                print(
                    f"run {run} {name}: baseline waits {base[0]:.3f} s (place {base[1]}/{backlog + 1}), "
                    f"Lucy {lucy[0]:.3f} s (place {lucy[1]}/{backlog + 1})",
                    flush=True,
                )
        for name, rows in results.items():
            med = [statistics.median(r[i] for r in rows) for i in range(4)]
            print(
                f"{name}: median over {runs} runs: baseline {med[0]:.3f} s, place {med[1]:.0f}; "
                f"Lucy {med[2]:.3f} s, place {med[3]:.0f}"
            )
    finally:
        temporal.stop()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlog", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.backlog, args.runs))
