"""Benchmark: how long a task takes to answer after ``kill -9`` of its worker, by phase.

    .venv/bin/python bench/kill_recovery.py                 # 3 rounds of the four phases
    .venv/bin/python bench/kill_recovery.py --rounds 1 --phases classify,answer

One embedded PostgreSQL, one Temporal dev server (SQLite file), Lucy's fakes (Slack, the
OpenAI-compatible model, the OpenClaw gateway) in this process, and Lucy's real worker
(``app.worker.lucy_worker``) in a process of its own. For each phase a task is started; the
fake holds that phase's first call for good (the context read's ``conversations.replies`` of a
follow-up in a thread, the intent classification, the answer's model call, a ``read_file`` tool
step), so the worker is certainly in the middle of it; then the worker gets SIGKILL and a new
worker process is started at once. The figure is the time from the kill to the task's result
(the answer posted and recorded).

Before and after in the same run: every round runs each phase twice, on two task queues, once
with Lucy's worker as it is (``after``) and once as it was before [speed] (``before``: the
context read and the classification without their heartbeat timeouts, and the SDK's default
10 s sticky-queue timeout instead of ``app.worker.STICKY_TIMEOUT``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PHASES = ("context", "classify", "answer", "tool")
HOLD_S = 45.0  # longer than any recovery: the killed worker never sees an answer (and the fakes can stop)


# --------------------------------------------------------------------------- the worker process


async def child(kind: str) -> None:
    """Lucy's worker (as ``lucy worker`` runs it, without the maintenance schedule); ``before``:
    the context read and the classification without their heartbeat timeouts."""
    from temporalio.client import Client

    import app.worker
    import capabilities.task.workflow.options as options
    from lucy.settings import load_settings

    if kind == "before":
        app.worker.STICKY_TIMEOUT = timedelta(seconds=10)  # the SDK's default
        for name in ("CONTEXT", "CLASSIFY"):
            bundle = dict(getattr(options, name))
            bundle.pop("heartbeat_timeout", None)
            setattr(options, name, bundle)
    settings = load_settings()
    client = await Client.connect(settings.temporal.temporal_address, namespace="default")
    async with app.worker.lucy_worker(settings, client):
        print("ready", flush=True)
        await asyncio.Event().wait()


# --------------------------------------------------------------------------- the fakes


def _marker(body: dict[str, Any]) -> str | None:
    """The ``hang=<phase>-<id>`` of the request's user text."""
    for m in body.get("messages") or []:
        if m.get("role") == "user":
            for word in str(m.get("content") or "").split():
                if word.startswith("hang="):
                    return word.removeprefix("hang=")
    return None


def _make_fakes() -> tuple[Any, Any, Any]:
    from tests.fakes.gateway import FakeGateway
    from tests.fakes.llm import FakeLlm, Scripted
    from tests.fakes.slack import FakeSlack

    @dataclass
    class KillLlm(FakeLlm):
        """Holds the first classification (``classify``) or answer call (``answer``) of a
        marked task for good; a ``tool`` task calls ``read_file`` on its marker's path first."""

        held: dict[str, float] = field(default_factory=dict)

        def _take(self, body: dict[str, Any]) -> Scripted:
            marker = _marker(body) or ""
            phase = marker.split("-")[0]
            classify = (body.get("response_format") or {}).get("type") == "json_object"
            if marker and marker not in self.held:
                if (phase == "classify" and classify) or (phase == "answer" and not classify):
                    self.held[marker] = time.monotonic()
                    return Scripted(delay=HOLD_S)
            if classify:
                return super()._take(body)
            tools_done = sum(1 for m in body.get("messages") or [] if m.get("role") == "tool")
            if phase == "tool" and not tools_done:
                return Scripted(tool_calls=[("read_file", json.dumps({"path": f"/tmp/{marker}"}))])
            return Scripted(content="done")

    @dataclass
    class KillGateway(FakeGateway):
        held: dict[str, float] = field(default_factory=dict)

        async def _tool_read(self, args: dict[str, Any]) -> dict[str, Any]:
            path = str(args.get("path"))
            if path.startswith("/tmp/tool-") and path not in self.held:
                self.held[path] = time.monotonic()
                await asyncio.sleep(HOLD_S)
            self.files.setdefault(path, "hello\n")
            return await super()._tool_read(args)

    return FakeSlack(), KillLlm(), KillGateway()


# --------------------------------------------------------------------------- the run


class Run:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.queue = f"lucy-kill-{uuid.uuid4().hex[:8]}"
        self.workers: dict[str, subprocess.Popen[bytes]] = {}

    def env(self, kind: str) -> dict[str, str]:
        slack, llm, gateway = self.slack, self.llm, self.gateway
        return {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "LUCY_ENV": "test",
            "LUCY_LOG_LEVEL": "ERROR",
            "LUCY_DATABASE_URL": self.pg.app_url,
            "LUCY_TEMPORAL_ADDRESS": self.temporal.address,
            "LUCY_TEMPORAL_TASK_QUEUE": f"{self.queue}-{kind}",
            "LUCY_TEMPORAL_METRICS_PORT": "0",
            "LUCY_WORKER_METRICS_PORT": "0",
            "LUCY_SLACK_BOT_TOKEN": slack.token,
            "LUCY_SLACK_API_URL": slack.api_url,
            "LUCY_SLACK_CHANNEL_MIN_INTERVAL": "0",
            "LUCY_OPENROUTER_API_KEY": llm.api_key,
            "LUCY_OPENROUTER_BASE_URL": llm.base_url,
            "LUCY_OPENCLAW_API_KEY": gateway.api_key,
            "LUCY_OPENCLAW_BASE_URL": gateway.base_url,
            "LUCY_CAMOFOX_URL": self.nobody,
            "LUCY_LLM_STREAMING": "true",
        }

    async def start_worker(self, kind: str) -> float:
        """A new worker process of ``kind``; returns the seconds until it said ready."""
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", kind],
            cwd=ROOT,
            env=self.env(kind),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        self.workers[kind] = proc
        assert proc.stdout is not None
        while (line := await asyncio.to_thread(proc.stdout.readline)).strip() != b"ready":
            if not line:
                raise RuntimeError(f"the {kind} worker did not start")
            sys.stderr.write(f"{kind} worker: {line.decode(errors='replace')}")
        return time.monotonic() - started

    def kill(self, kind: str) -> None:
        proc = self.workers.pop(kind)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    async def held(self, phase: str, marker: str, thread_ts: str, within_s: float = 60.0) -> None:
        """Wait until the fake holds the phase's call of this task."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if phase == "context":
                if any(c.params.get("ts") == thread_ts for c in self.slack.calls_to("conversations.replies")):
                    return
            elif phase == "tool":
                if f"/tmp/{marker}" in self.gateway.held:
                    return
            elif marker in self.llm.held:
                return
            await asyncio.sleep(0.01)
        raise RuntimeError(f"{marker}: the {phase} call never arrived")

    async def one(self, kind: str, phase: str) -> tuple[float, float]:
        """One kill during ``phase``: (seconds from the kill to the result, worker start-up s)."""
        from capabilities.task.contracts.task import TaskResult
        from lucy.contracts.ids import task_workflow_id

        marker = f"{phase}-{uuid.uuid4().hex[:8]}"
        task = await self.bench.new_task(f"please help hang={marker}")
        release = asyncio.Event()
        if phase == "context":  # a follow-up in a thread reads the thread so far
            release = self.slack.hold_answer(
                "conversations.replies", lambda p, ts=task.thread_ts: p.get("ts") == ts
            )
            task = dataclasses.replace(task, with_thread_history=True)
        workflow_id = task_workflow_id(task.slack_team_id, task.slack_channel_id, task.message_ts)
        handle = await self.bench.start_lucy(task, workflow_id, f"{self.queue}-{kind}")
        await self.held(phase, marker, task.thread_ts)
        await asyncio.sleep(self.args.settle)  # well inside the call (heartbeats sent)
        killed = time.monotonic()
        self.kill(kind)
        startup = await self.start_worker(kind)
        result: TaskResult = await asyncio.wait_for(handle.result(), timeout=300)
        took = time.monotonic() - killed
        release.set()
        if result.status != "completed":
            raise RuntimeError(f"{workflow_id} ended {result.status} ({result.error_type})")
        return took, startup

    async def main(self) -> dict[tuple[str, str], list[tuple[float, float]]]:
        from temporalio.client import Client

        from app.devservers import LocalPostgres, free_port
        from bench.servers import scratch_temporal
        from lucy import migrate
        from lucy.db.session import create_engine, create_sessionmaker
        from lucy.settings import load_settings

        sys.argv = sys.argv[:1]  # step_overhead's Bench reads no arguments of ours
        from bench.step_overhead import Bench

        self.slack, self.llm, self.gateway = _make_fakes()
        self.nobody = f"http://127.0.0.1:{free_port()}"
        for fake in (self.slack, self.llm, self.gateway):
            await fake.start()
        self.pg = LocalPostgres(self.tmp / "pg", port=free_port())
        self.temporal = scratch_temporal(self.tmp / "temporal.db")
        out: dict[tuple[str, str], list[tuple[float, float]]] = {}
        engine = None
        try:
            self.pg.start()
            await asyncio.to_thread(migrate.upgrade, self.pg.url)
            self.temporal.start()
            await self.temporal.wait_ready()
            settings = load_settings(env="test", database_url=self.pg.app_url)
            engine = create_engine(settings.database)
            self.bench = Bench(self.args)
            self.bench.sessions = create_sessionmaker(engine)
            self.bench.client = await Client.connect(self.temporal.address, namespace="default")
            self.bench.lucy_queue = self.queue
            kinds = ("after", "before")
            for kind in kinds:
                await self.start_worker(kind)
            for r in range(self.args.rounds):
                for phase in self.args.phases:
                    for kind in kinds if r % 2 == 0 else kinds[::-1]:
                        took, startup = await self.one(kind, phase)
                        out.setdefault((phase, kind), []).append((took, startup))
                        print(
                            f"round {r + 1} {phase:<8} {kind:<6} {took:6.1f} s (worker up in {startup:.1f} s)"
                        )
        finally:
            for kind in list(self.workers):
                self.kill(kind)
            if engine is not None:
                await engine.dispose()
            self.temporal.stop()
            self.pg.stop()
            for fake in (self.slack, self.llm, self.gateway):
                await fake.stop()
        return out


def report(out: dict[tuple[str, str], list[tuple[float, float]]]) -> None:
    print(f"\nkill -9 -> answer, seconds (median of {len(next(iter(out.values())))} per cell; aim <= 30 s)")
    print(f"{'phase':<10} {'before':>8} {'after':>8}   after: worker start-up s")
    for phase in dict.fromkeys(p for p, _ in out):
        before = statistics.median(t for t, _ in out[(phase, "before")])
        after = statistics.median(t for t, _ in out[(phase, "after")])
        start = statistics.median(s for _, s in out[(phase, "after")])
        print(f"{phase:<10} {before:8.1f} {after:8.1f}   {start:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", choices=("before", "after"), help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--phases", type=lambda s: s.split(","), default=list(PHASES))
    parser.add_argument("--settle", type=float, default=2.5, help="s inside the held call before the kill")
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child))
        return
    from lucy.logging import configure_logging

    configure_logging("WARNING", json_output=False)
    tmp = Path(tempfile.mkdtemp(prefix="lucy-kill-"))
    try:
        report(asyncio.run(Run(args, tmp).main()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
