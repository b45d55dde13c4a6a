"""Benchmark: one worker holding many idle tasks (waiting for approvals): RSS, CPU, throughput.

    .venv/bin/python bench/worker_scale.py                        # N=500 tasks, 3 runs each (~7 min)
    .venv/bin/python bench/worker_scale.py --tasks 1000           # the issue's size (~15 min)
    .venv/bin/python bench/worker_scale.py --tasks 200 --runs 1   # a quick look
    .venv/bin/python bench/worker_scale.py --profile              # where the memory goes (N=50)
    .venv/bin/python bench/worker_scale.py --runs 1 --py-spy lucy.svg  # where its CPU goes
    .venv/bin/python bench/worker_scale.py --compare-sandbox    # + Lucy on the sandboxed runner it had

One Temporal dev server (SQLite file, Lucy's search attributes registered), and each worker in
a process of its own, so that its RSS (``/proc/<pid>/status`` VmRSS) and its CPU time
(``/proc/<pid>/stat`` utime + stime, every thread, the SDK's Rust core included) are that
worker's alone. Both workers use the SDK's defaults (sandboxed workflow runner, default
converter) with ``max_cached_workflows`` large enough that every idle workflow stays cached.

* Lucy: the real ``LucyTaskWorkflow`` (found in ``app.worker.WORKFLOWS`` by its workflow name,
  so the bench follows the code wherever it moves), with fake activities under the real
  activity names that answer at once, without I/O: every task prepares its context (``exec``
  available), is classified, gets one LLM answer that calls ``exec`` (high risk), and then
  waits for an approval (``approvals.request`` reports a posted message).
* Bare: ``bench/worker_scale_bare.py``, the same number of trivial activities per task as Lucy's
  worker ran before the wait (counted in Lucy's worker in the first run), one after the other,
  then ``workflow.wait_condition`` for a signal that never comes.

Per worker and run: N tasks are started (``--concurrency`` starts in flight); a task is idle when
its worker has run all its activities and the server shows the workflow with no pending
workflow task and no pending activity (``describe``, which does not touch the worker). Then:
RSS (and the idle worker's RSS before the first task), KiB per cached workflow
((RSS - idle RSS) / N), CPU seconds per 100 tasks (from the first start to all idle), and
throughput (N / seconds from the first start to the last activity). Lucy and bare alternate,
run by run (L B, B L, L B...), so drift hits both alike; the table shows each run and the median.

Bytecode: the sandbox loads the workflow's module anew for every workflow. With
``PYTHONDONTWRITEBYTECODE=1`` (set here and in the Dockerfile) and a ``.pyc`` older than its
source, that means compiling the source for every workflow. By default (``--bytecode fresh``)
the workers compile once into a private cache (``sys.pycache_prefix``, nothing written to the
tree), as a deployed image with compiled bytecode behaves; ``--bytecode as-is`` measures the
environment as it is. The report says which bytecode each re-imported module had.

Every run also prints, for one cached workflow of each worker, the Python objects it holds:
reachable from it and not from a second cached one (``sys.getsizeof``), by attribute path.

``--profile`` runs each worker once under ``tracemalloc``: the traces are cleared just before
the first task, so what the snapshot holds when all tasks are idle is what the tasks cost. It
prints the top allocation sites, the same memory by the innermost frame of our own code or the
SDK's, and which modules the workflow sandbox re-imported for one workflow. Its timings are
not comparable (tracemalloc is slow); use a normal run for the figures.
"""

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # lucy, workflows, activities (bench/ itself is sys.path[0])
    sys.path.insert(1, str(ROOT))

PREFIX = "@@worker-scale "  # the child's report lines on stdout (anything else is passed on)
MIB = 1024 * 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
RSS_AIM_MIB = 300.0
RSS_AIM_TASKS = 1000
DEFAULT_TASKS = 500  # 3 runs of 1000 tasks per worker take ~15 min on 2 cores; 500 take ~7
THROUGHPUT_AIM = 0.9
PROFILE_WORKFLOW_TASKS = 2  # --profile: workflow tasks in flight in the worker
PROFILE_TASK_TIMEOUT_S = 120  # --profile: workflow task timeout (the server's maximum)


# =========================================================================== the worker child


class Tally:
    """Activities run in this worker, by name, and the monotonic time of the latest one (Linux
    CLOCK_MONOTONIC is system-wide, so the parent can compare it with its own clock)."""

    def __init__(self) -> None:
        self.by_name: Counter[str] = Counter()
        self.total = 0
        self.last = 0.0

    def __call__(self, name: str) -> None:
        self.by_name[name] += 1
        self.total += 1
        self.last = time.monotonic()


def lucy_fakes(tally: Tally) -> list[Any]:
    """Lucy's activities under their real names, answering at once (no I/O). Annotations are
    real types (no ``from __future__ import annotations`` in this file), so the SDK decodes
    each payload into Lucy's dataclasses, as the real activities do."""
    from temporalio import activity

    from capabilities.approvals.contracts import (
        Actor,
        ActorCheck,
        ApprovalPosted,
        ApprovalRequest,
        ApprovalSettled,
    )
    from capabilities.task.contracts.records import StepBatch, TaskFinished, TaskStarted
    from capabilities.task.contracts.task import TaskContext, TaskContextRequest
    from capabilities.tools.contracts import ToolRequest, ToolResult
    from lucy.contracts.llm import LlmRequest, LlmResponse, ToolCall
    from lucy.contracts.slack import PostMessageRequest, PostMessageResult, UpdateMessageRequest

    exec_call = [ToolCall(id="call_0", name="exec", arguments=json.dumps({"command": "ls -la /srv/app"}))]

    @activity.defn(name="records.task_running")
    async def task_running(started: TaskStarted) -> str:
        tally("records.task_running")
        return str(uuid.uuid4())

    @activity.defn(name="records.task_finished")
    async def task_finished(finished: TaskFinished) -> bool:
        tally("records.task_finished")
        return True

    @activity.defn(name="records.steps")
    async def steps(batch: StepBatch) -> int:
        tally("records.steps")
        return len(batch.records)

    @activity.defn(name="context.prepare")
    async def prepare(request: TaskContextRequest) -> TaskContext:
        tally("context.prepare")
        return TaskContext(
            task_id=str(uuid.uuid4()),
            workspace_name="Bench Co",
            channel_name="ops",
            user_name="Bench User",
            user_timezone="Europe/Berlin",
            local_time="Saturday 21 November 2026, 14:05 (Europe/Berlin)",
            available_tools=["exec"],
        )

    @activity.defn(name="llm.chat")
    async def chat(request: LlmRequest) -> LlmResponse:
        tally("llm.chat")
        if request.json_object:  # the intent classification
            return LlmResponse(content='{"intent": "tool_use"}', model="model-fast", cost_usd=0.0001)
        if any(m.role == "tool" for m in request.messages):
            return LlmResponse(content="done", model=f"model-{request.tier}", prompt_tokens=3)
        return LlmResponse(
            content="I'll list the files first.",
            model=f"model-{request.tier}",
            prompt_tokens=420,
            completion_tokens=24,
            cost_usd=0.002,
            finish_reason="tool_calls",
            tool_calls=exec_call,
        )

    @activity.defn(name="slack.post_message")
    async def post_message(request: PostMessageRequest) -> PostMessageResult:
        tally("slack.post_message")
        return PostMessageResult(ts=f"{time.time():.6f}", channel=request.channel)

    @activity.defn(name="slack.update_message")
    async def update_message(request: UpdateMessageRequest) -> bool:
        tally("slack.update_message")
        return True

    @activity.defn(name="approvals.request")
    async def approval_request(request: ApprovalRequest) -> ApprovalPosted:
        tally("approvals.request")
        return ApprovalPosted(approval_id=request.approval_id, message_ts=f"{time.time():.6f}")

    @activity.defn(name="approvals.settle")
    async def approval_settle(settled: ApprovalSettled) -> bool:
        tally("approvals.settle")
        return True

    @activity.defn(name="identity.verify")
    async def verify(check: ActorCheck) -> Actor:
        tally("identity.verify")
        return Actor(slack_user_id=check.slack_user_id, role="admin")

    @activity.defn(name="tools.gateway")
    async def gateway(request: ToolRequest) -> ToolResult:
        tally("tools.gateway")
        return ToolResult(output=f"{request.tool} ok")

    return [
        task_running,
        task_finished,
        steps,
        prepare,
        chat,
        post_message,
        update_message,
        approval_request,
        approval_settle,
        verify,
        gateway,
    ]


def bare_fakes(tally: Tally) -> list[Any]:
    from temporalio import activity
    from worker_scale_bare import BARE_ACTIVITY_NAME, Trivial  # bench/ is sys.path[0]

    @activity.defn(name=BARE_ACTIVITY_NAME)
    async def trivial(step: Trivial) -> Trivial:
        tally(BARE_ACTIVITY_NAME)
        return step

    return [trivial]


def sandbox_runner() -> Any:
    """The runner ``lucy worker`` used before it ran its workflows unsandboxed: Temporal's
    sandbox with Lucy's modules passed through (``app.worker.PASSTHROUGH``)."""
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    from app.worker import PASSTHROUGH

    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def lucy_task_workflow() -> type:
    """``LucyTaskWorkflow`` as the worker registers it, wherever its code lives."""
    from temporalio import workflow

    from app.worker import WORKFLOWS
    from lucy.contracts.ids import TASK_WORKFLOW_NAME

    for cls in WORKFLOWS:
        defn = workflow._Definition.from_class(cls)
        if defn is not None and defn.name == TASK_WORKFLOW_NAME:
            return cls
    raise SystemExit(f"no workflow named {TASK_WORKFLOW_NAME} in app.worker.WORKFLOWS")


def _emit(kind: str, **data: Any) -> None:
    sys.stdout.write(PREFIX + json.dumps({"kind": kind, **data}) + "\n")
    sys.stdout.flush()


def bytecode_state(module: str) -> str:
    """Whether the sandbox can load ``module`` from a valid ``.pyc`` (where this interpreter
    looks for it now), or has to compile its source again for every workflow."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return "n/a"
    pyc = Path(importlib.util.cache_from_source(spec.origin))
    try:
        header = pyc.read_bytes()[:16]
    except OSError:
        state = "missing"
    else:
        source = os.stat(spec.origin)
        flags = int.from_bytes(header[4:8], "little")
        mtime, size = int.from_bytes(header[8:12], "little"), int.from_bytes(header[12:16], "little")
        fresh = flags != 0 or (
            mtime == int(source.st_mtime) & 0xFFFFFFFF and size == source.st_size & 0xFFFFFFFF
        )
        state = "fresh" if fresh else "stale"
    if state != "fresh" and sys.dont_write_bytecode:
        state += ", compiled from source for every workflow"
    return state


def _sandbox_modules(worker: Any) -> dict[str, list[str]]:
    """For one cached workflow: the modules its sandbox imported anew (run per workflow) and
    the ones it wraps in a restriction proxy. Reads SDK internals; empty if they moved."""
    try:
        running = next(iter(worker._workflow_worker._running_workflows.values()))
        modules = running.instance.importer.new_modules
    except (AttributeError, StopIteration):
        return {}
    fresh, proxied = [], []
    for name, mod in modules.items():
        if name in ("sys", "builtins", "__main__") or sys.modules.get(name) is mod:
            continue
        (proxied if type(mod).__name__ == "RestrictedModule" else fresh).append(name)
    return {
        "reimported": sorted(fresh),
        "proxied": sorted(proxied),
        "bytecode": {name: bytecode_state(name) for name in sorted(fresh)},
    }


def _instance_walk(worker: Any, top: int = 25) -> dict[str, Any]:
    """Where one cached workflow's Python memory is: every object reachable from one cached
    workflow (its ``_RunningWorkflow``: the sandbox, the SDK's instance, the workflow object and
    its state) and not from a second one, by ``sys.getsizeof``, labelled with the attribute path
    it was first reached by. Modules and classes are not entered (shared by every workflow).
    Reads SDK internals; empty if they moved."""
    import gc
    import types
    from collections import deque

    try:
        runs = list(worker._workflow_worker._running_workflows.values())
        first, second = runs[0], runs[-1]
    except (AttributeError, IndexError):
        return {}
    if first is second:
        return {}
    stop = (types.ModuleType, type, types.CodeType, types.FunctionType, types.BuiltinFunctionType)

    def children(obj: Any) -> list[tuple[str, Any]]:
        if isinstance(obj, dict):
            out = []
            for k, v in obj.items():
                out.append((f"[{k!r}]"[:60] if isinstance(k, str) else "[..]", v))
                out.append(("<key>", k))
            return out
        if hasattr(obj, "__dict__") and not isinstance(obj, stop):
            d = obj.__dict__
            return [(f".{k}", v) for k, v in d.items()] + [("<__dict__>", d)]
        slots = [s for c in type(obj).__mro__ for s in getattr(c, "__slots__", ()) if isinstance(s, str)]
        named = [(f".{s}", getattr(obj, s)) for s in slots if hasattr(obj, s)]
        if named:
            return named
        return [("[]", r) for r in gc.get_referents(obj)]

    def reach(root: Any, depth_names: int) -> dict[int, tuple[str, int]]:
        seen: dict[int, tuple[str, int]] = {}
        queue = deque([(root, "", 0)])
        while queue:
            obj, label, depth = queue.popleft()
            if id(obj) in seen or isinstance(obj, stop):
                continue
            try:
                size = sys.getsizeof(obj)
            except TypeError:
                size = 0
            seen[id(obj)] = (label or "<running workflow>", size)
            for name, child in children(obj):
                if id(child) in seen:
                    continue
                step = name if not name.startswith("[") or name in ("[]", "[..]") else "[k]"
                sub = label + step if depth < depth_names and name not in ("[]",) else label
                queue.append((child, sub, depth + 1))
        return seen

    keep = [first, second]  # both stay reachable while walking
    mine = reach(keep[0], 5)
    other = reach(keep[1], 0)
    by_label: Counter[str] = Counter()
    total = 0
    for oid, (label, size) in mine.items():
        if oid in other:
            continue
        total += size
        by_label[label] += size
    return {
        "unique_kib": total / 1024,
        "by_path": [{"path": p, "kib": s / 1024} for p, s in by_label.most_common(top)],
    }


def _frame_label(frame: Any) -> str:
    path = frame.filename
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        if "/lib/python" in path:
            path = "stdlib/" + path.split("/lib/python", 1)[1].split("/", 1)[-1]
    return f"{path}:{frame.lineno}"


def _is_ours(frame: Any) -> bool:
    """A frame of our code or the SDK's (not the stdlib, not the import machinery)."""
    path = frame.filename
    return ("site-packages/temporalio" in path or path.startswith(str(ROOT))) and not path.endswith(
        "workflow_sandbox/_importer.py"
    )


def _origin(frames: list[Any], workflow_module: str) -> str:
    """Who made an allocation: the innermost frame of our code or the SDK's; an allocation made
    while a module is imported is labelled as that import."""
    importing = False
    for frame in reversed(frames):  # newest first
        if frame.filename.startswith("<frozen importlib"):
            importing = True
        elif _is_ours(frame):
            if frame.filename.endswith("workflow_sandbox/_runner.py") and importing:
                return f"import {workflow_module} (the workflow's module, by the sandbox)"
            return _frame_label(frame) + (" (an import)" if importing else "")
    return _frame_label(frames[-1])


def _memory_report(tasks: int, workflow_module: str, limit: int = 15) -> dict[str, Any]:
    import linecache
    import tracemalloc

    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<unknown>")]
    )
    total = sum(t.size for t in snapshot.traces)
    sites = []
    for stat in snapshot.statistics("lineno")[:limit]:
        frame = stat.traceback[-1]
        sites.append(
            {
                "site": _frame_label(frame),
                "code": linecache.getline(frame.filename, frame.lineno).strip()[:70],
                "kib": stat.size / 1024,
                "count": stat.count,
            }
        )
    by_origin: Counter[str] = Counter()
    for trace in snapshot.traces:
        by_origin[_origin(list(trace.traceback), workflow_module)] += trace.size
    origins = [{"site": site, "kib": size / 1024} for site, size in by_origin.most_common(limit)]
    return {
        "total_kib": total / 1024,
        "per_task_kib": total / 1024 / max(1, tasks),
        "sites": sites,
        "origins": origins,
    }


async def child_main(args: argparse.Namespace) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    tally = Tally()
    runner: Any = None  # the SDK's default sandbox
    if args.child == "lucy":
        from app.worker import workflow_runner

        workflows, activities = [lucy_task_workflow()], lucy_fakes(tally)
        runner = workflow_runner()  # as `lucy worker` runs it
    elif args.child == "untrimmed":  # --compare-trim: Lucy's worker without app.memory_trim
        from app.worker import workflow_runner

        workflows, activities = [lucy_task_workflow()], lucy_fakes(tally)
        runner = workflow_runner()
    elif args.child == "sandbox":  # --compare-sandbox: Lucy as it ran before (see sandbox_runner)
        workflows, activities = [lucy_task_workflow()], lucy_fakes(tally)
        runner = sandbox_runner()
    else:
        from worker_scale_bare import BareIdleWorkflow

        workflows, activities = [BareIdleWorkflow], bare_fakes(tally)
    client = await Client.connect(args.address, namespace=args.namespace)
    worker = Worker(
        client,
        task_queue=args.queue,
        workflows=workflows,
        activities=activities,
        max_cached_workflows=args.max_cached,
        **({"workflow_runner": runner} if runner is not None else {}),
        # Under tracemalloc a workflow task is many times slower: few at a time, so none
        # outlives its timeout, and few activities at a time, so none outlives the LLM
        # activity's heartbeat timeout (normal runs keep the SDK's defaults).
        max_concurrent_workflow_tasks=PROFILE_WORKFLOW_TASKS if args.profile else None,
        max_concurrent_activities=PROFILE_WORKFLOW_TASKS if args.profile else None,
    )
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()
    background: list[asyncio.Task[None]] = []

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line.strip())
        loop.call_soon_threadsafe(commands.put_nowait, "quit")

    async with worker:
        threading.Thread(target=read_stdin, name="commands", daemon=True).start()
        if args.child == "lucy":  # as `lucy worker` runs: freed heap back to the OS now and then
            from app.memory_trim import trim_freed_memory

            background.append(asyncio.create_task(trim_freed_memory(args.memory_trim)))
        if args.profile:  # from here on: what the tasks allocate (the traces are cleared at "mark")
            import tracemalloc

            tracemalloc.start(args.frames)
        _emit("ready", pid=os.getpid(), workflow=workflows[0].__qualname__)
        while True:
            command = await commands.get()
            if command == "stats":
                try:
                    cached = len(worker._workflow_worker._running_workflows)  # type: ignore[union-attr]
                except AttributeError:
                    cached = -1
                _emit("stats", total=tally.total, by_name=dict(tally.by_name), last=tally.last, cached=cached)
            elif command == "mark" and args.profile:
                import gc
                import tracemalloc

                gc.collect()
                tracemalloc.clear_traces()
                _emit("marked")
            elif command.startswith("memory ") and args.profile:
                report = _memory_report(int(command.split()[1]), workflows[0].__module__)
                report["modules"] = _sandbox_modules(worker)
                _emit("memory", **report)
            elif command == "modules":
                _emit("modules", **_sandbox_modules(worker))
            elif command == "walk":
                _emit("walk", **_instance_walk(worker))
            elif command == "quit":
                break
    _emit("bye")


# =========================================================================== the parent


def _die_with_parent() -> None:  # in the child, between fork and exec
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def proc_threads(pid: int) -> int:
    """Threads of the process (the SDK runs workflow activations on a thread pool)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return -1


def proc_rss(pid: int) -> int:
    """Resident set size in bytes (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of every thread of the process so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


class Child:
    """A worker process, driven over its stdin; it reports on stdout (lines with PREFIX)."""

    def __init__(self, kind: str, cmd: list[str], log: Path) -> None:
        self.kind, self.cmd, self.log = kind, cmd, log
        self.proc: asyncio.subprocess.Process | None = None
        self.pid = 0
        self._reports: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._log = open(log, "ab", buffering=0)  # the worker's stderr

    async def start(self, within_s: float = 120.0) -> dict[str, Any]:
        self.proc = await asyncio.create_subprocess_exec(
            *self.cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            preexec_fn=_die_with_parent,
        )
        self._reader = asyncio.create_task(self._read())
        ready = await self.expect("ready", within_s)
        self.pid = int(ready["pid"])
        return ready

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith(PREFIX):
                await self._reports.put(json.loads(line[len(PREFIX) :]))
            elif line.strip():
                self._log.write(raw)  # the worker's own prints, kept with its stderr
        await self._reports.put({"kind": "exited"})

    async def expect(self, kind: str, within_s: float = 60.0) -> dict[str, Any]:
        try:
            report = await asyncio.wait_for(self._reports.get(), within_s)
        except TimeoutError:
            raise RuntimeError(
                f"{self.kind} worker: no {kind!r} report in {within_s:.0f} s{self.tail()}"
            ) from None
        if report["kind"] != kind:
            raise RuntimeError(f"{self.kind} worker: expected {kind!r}, got {report}{self.tail()}")
        return report

    async def ask(self, command: str, kind: str, within_s: float = 60.0) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.expect(kind, within_s)

    def tail(self) -> str:
        try:
            text = self.log.read_text(errors="replace")[-1500:]
        except OSError:
            return ""
        return f"\n--- {self.log} (tail) ---\n{text}" if text.strip() else ""

    async def stop(self, within_s: float = 60.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, RuntimeError):
                assert proc.stdin is not None
                proc.stdin.write(b"quit\n")
                await proc.stdin.drain()
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), within_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._log.close()

    def kill(self) -> None:
        """Last resort (Ctrl-C): the process and, under py-spy, the worker it spawned."""
        if self.proc is None or self.proc.returncode is not None:
            return
        for pid in {p for p in (self.pid, self.proc.pid if self.proc else 0) if p}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class Run:
    kind: str  # lucy | bare
    index: int
    tasks: int
    idle_rss: int = 0  # bytes, the worker before its first task
    rss: int = 0  # bytes, with every task idle
    cpu_s: float = 0.0  # the worker's CPU seconds from the first start to all idle
    wall_s: float = 0.0  # first start -> last activity
    start_s: float = 0.0  # first start -> last start returned
    cached: int = -1
    threads: int = -1  # with every task idle
    by_name: dict[str, int] = field(default_factory=dict)

    @property
    def kib_per_workflow(self) -> float:
        return (self.rss - self.idle_rss) / 1024 / self.tasks

    @property
    def cpu_per_100(self) -> float:
        return self.cpu_s * 100 / self.tasks

    @property
    def throughput(self) -> float:
        return self.tasks / self.wall_s


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.per_task: int | None = None  # activities per task before the wait (from Lucy's worker)
        self.children: list[Child] = []
        self.samples: dict[str, dict[str, Any]] = {}  # kind -> what one workflow looks like
        self.memory: dict[str, dict[str, Any]] = {}
        self.address = ""
        self.client: Any = None  # temporalio.client.Client, once the dev server is up
        self.py_spy = ""

    def child_cmd(self, kind: str, queue: str, *, spy: str | None) -> list[str]:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            kind,
            "--address",
            self.address,
            "--namespace",
            "default",
            "--queue",
            queue,
            "--max-cached",
            str(self.args.max_cached),
            "--memory-trim",
            str(self.args.memory_trim),
        ]
        if self.args.bytecode == "fresh":
            cmd += ["--pycache", str(self.tmp / "pycache")]
        if self.args.profile:
            cmd += ["--profile", "--frames", str(self.args.frames)]
        if spy:
            cmd = [
                self.py_spy,
                "record",
                "--rate",
                "100",
                "--output",
                spy,
                "--format",
                _spy_format(spy),
                "--",
                *cmd,
            ]
        return cmd

    async def start_all(self, kind: str, queue: str, n: int) -> list[str]:
        from temporalio.common import SearchAttributePair, TypedSearchAttributes
        from worker_scale_bare import BARE_WORKFLOW_NAME, BareInput

        from capabilities.task.contracts.task import TaskInput
        from lucy.contracts.ids import (
            SA_CHANNEL,
            SA_SOURCE,
            SA_STATUS,
            SA_THREAD,
            SA_USER,
            SA_WORKSPACE,
            TASK_WORKFLOW_NAME,
            TaskStatus,
            task_workflow_id,
        )

        team = f"TSCALE{uuid.uuid4().hex[:6].upper()}"
        task_timeout = timedelta(seconds=PROFILE_TASK_TIMEOUT_S) if self.args.profile else None
        ids: list[str] = []
        gate = asyncio.Semaphore(self.args.concurrency)

        async def one(i: int) -> None:
            async with gate:
                if kind == "bare":
                    workflow_id = f"bench-bare-{queue}-{i}"
                    await self.client.start_workflow(
                        BARE_WORKFLOW_NAME,
                        BareInput(self.per_task or 0),
                        id=workflow_id,
                        task_queue=queue,
                        task_timeout=task_timeout,
                    )
                else:
                    ts, channel = f"{1800000000 + i}.{i:06d}", f"CS{i:07d}"
                    workflow_id = task_workflow_id(team, channel, ts)
                    task = TaskInput(
                        workspace_id=str(uuid.uuid4()),
                        user_id=str(uuid.uuid4()),
                        channel_id=str(uuid.uuid4()),
                        slack_team_id=team,
                        slack_user_id="USCALE",
                        slack_channel_id=channel,
                        thread_ts=ts,
                        message_ts=ts,
                        text="can you check what is in /srv/app on the workspace machine? run ls -la there",
                    )
                    await self.client.start_workflow(
                        TASK_WORKFLOW_NAME,
                        task,
                        id=workflow_id,
                        task_queue=queue,
                        task_timeout=task_timeout,
                        search_attributes=TypedSearchAttributes(
                            [
                                SearchAttributePair(SA_WORKSPACE, team),
                                SearchAttributePair(SA_USER, task.slack_user_id),
                                SearchAttributePair(SA_CHANNEL, channel),
                                SearchAttributePair(SA_THREAD, ts),
                                SearchAttributePair(SA_SOURCE, task.source),
                                SearchAttributePair(SA_STATUS, TaskStatus.CREATED.value),
                            ]
                        ),
                    )
                ids.append(workflow_id)

        await asyncio.gather(*(one(i) for i in range(n)))
        return ids

    async def busy(self, ids: list[str]) -> list[str]:
        """The workflows the server does not show idle yet (a workflow task or an activity
        pending, or not running). ``describe`` is answered by the server, not the worker."""
        from temporalio.client import WorkflowExecutionStatus

        gate = asyncio.Semaphore(32)
        still: list[str] = []

        async def one(workflow_id: str) -> None:
            async with gate:
                desc = await self.client.get_workflow_handle(workflow_id).describe()
            raw = desc.raw_description
            if desc.status != WorkflowExecutionStatus.RUNNING:
                raise RuntimeError(f"{workflow_id} is {desc.status}, not waiting")
            if raw.HasField("pending_workflow_task") or len(raw.pending_activities) > 0:
                still.append(workflow_id)

        await asyncio.gather(*(one(w) for w in ids))
        return still

    async def run_one(self, kind: str, index: int, *, spy: str | None = None) -> Run:
        n = self.args.tasks
        queue = f"scale-{kind}-{index}-{uuid.uuid4().hex[:6]}"
        child = Child(kind, self.child_cmd(kind, queue, spy=spy), self.tmp / f"{kind}-{index}.log")
        self.children.append(child)
        run = Run(kind, index, n)
        try:
            await child.start()
            await asyncio.sleep(self.args.settle)
            run.idle_rss = proc_rss(child.pid)
            if self.args.profile:
                await child.ask("mark", "marked")
            cpu0 = proc_cpu(child.pid)
            t0 = time.monotonic()
            ids = await self.start_all(kind, queue, n)
            run.start_s = time.monotonic() - t0
            stats = await self.wait_activities(child, kind, n, t0)
            while busy := await self.busy(ids):  # normally empty at once
                ids = busy
                await asyncio.sleep(0.2)
            if self.args.memory_trim:  # every kind idles as long: one trim period and a second
                await asyncio.sleep(self.args.memory_trim + 1)
            stats = await child.ask("stats", "stats")
            run.cpu_s = proc_cpu(child.pid) - cpu0
            run.rss = proc_rss(child.pid)
            run.threads = proc_threads(child.pid)
            run.wall_s = stats["last"] - t0
            run.cached = stats["cached"]
            run.by_name = stats["by_name"]
            if kind == "lucy":
                per_task = stats["total"] / n
                if self.per_task is None:
                    if per_task != int(per_task):
                        raise RuntimeError(f"Lucy's tasks ran different activities: {stats['by_name']}")
                    self.per_task = int(per_task)
                elif per_task != self.per_task:
                    raise RuntimeError(f"Lucy ran {per_task} activities per task, before {self.per_task}")
            if self.args.profile:
                self.memory[kind] = await child.ask(f"memory {n}", "memory", within_s=900)
            if kind not in self.samples:  # untimed: what one of these workflows looks like
                self.samples[kind] = await self.describe_sample(kind, ids[0] if ids else None, child)
            return run
        except Exception:
            sys.stderr.write(child.tail() + "\n")
            raise
        finally:
            await child.stop()

    async def wait_activities(self, child: Child, kind: str, n: int, t0: float) -> dict[str, Any]:
        """Poll the worker's tally until every task has run its activities: for Lucy's first
        run (the count per task is not known yet) until every task asked for its approval and
        nothing ran for a second."""
        deadline = t0 + self.args.timeout
        steady_since, last_total = 0.0, -1
        while True:
            await asyncio.sleep(0.2)
            stats = await child.ask("stats", "stats")
            total = stats["total"]
            now = time.monotonic()
            if self.per_task is not None:
                if total >= n * self.per_task:
                    return stats
            elif stats["by_name"].get("approvals.request", 0) >= n:
                if total != last_total:
                    steady_since, last_total = now, total
                elif now - steady_since >= 1.0:
                    return stats
            if now > deadline:
                raise RuntimeError(
                    f"{kind}: not idle after {self.args.timeout:.0f} s: {total} activities, {stats['by_name']}"
                )

    async def describe_sample(self, kind: str, workflow_id: str | None, child: Child) -> dict[str, Any]:
        """One workflow's history (events, workflow tasks, history bytes) and, for Lucy, its
        ``status`` query: the task waits for the approval of ``exec``."""
        from temporalio.api.enums.v1 import EventType

        if workflow_id is None:
            return {}
        handle = self.client.get_workflow_handle(workflow_id)
        history = await handle.fetch_history()
        wft = sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
        sample: dict[str, Any] = {
            "events": len(history.events),
            "wft": wft,
            "history_bytes": sum(e.ByteSize() for e in history.events),
        }
        if kind != "bare":
            status = await handle.query("status")
            pending = status.get("pending_approval") or {}
            sample["status"] = f"{status.get('status')} ({pending.get('tool')}: {pending.get('summary')})"
        sample["modules"] = await child.ask("modules", "modules")
        sample["walk"] = await child.ask("walk", "walk", within_s=300)
        return sample

    async def main(self) -> list[Run]:
        from temporalio.client import Client

        from bench.servers import scratch_temporal

        args = self.args
        temporal = scratch_temporal(self.tmp / "temporal.db")
        runs: list[Run] = []
        try:
            temporal.start()
            await temporal.wait_ready()
            self.address = temporal.address
            self.client = await Client.connect(temporal.address, namespace="default")
            kinds = ["lucy"] if args.only == "lucy" else ["bare"] if args.only == "bare" else ["lucy", "bare"]
            if args.compare_sandbox:
                kinds.insert(1, "sandbox")
            if args.compare_trim:
                kinds.insert(1, "untrimmed")
            if "bare" in kinds and "lucy" not in kinds:
                self.per_task = args.activities
            for i in range(args.runs):
                order = kinds if i % 2 == 0 else kinds[::-1]
                if self.per_task is None:  # Lucy first: it tells how many activities a task runs
                    order = sorted(order, key=lambda k: k != "lucy")
                for kind in order:
                    spy = spy_output(args.py_spy, kind) if (i == 0 and args.py_spy) else None
                    run = await self.run_one(kind, i + 1, spy=spy)
                    runs.append(run)
                    print(_row(run), flush=True)
        finally:
            for child in self.children:
                child.kill()
            temporal.stop()
        return runs


def spy_output(out: str, kind: str) -> str:
    """Lucy's worker's profile goes to OUT, the bare worker's to OUT with ``-bare`` added."""
    if kind == "lucy":
        return out
    path = Path(out)
    return str(path.with_name(f"{path.stem}-{kind}{path.suffix}"))


def _spy_format(path: str) -> str:
    return "speedscope" if path.endswith(".json") else "raw" if path.endswith(".txt") else "flamegraph"


def _row(run: Run, label: str | None = None) -> str:
    return _format_row(label or f"{run.index:>3}", run.kind, _metrics(run), run.cached, run.threads)


def _metrics(run: Run) -> dict[str, float]:
    return {
        "idle": run.idle_rss / MIB,
        "rss": run.rss / MIB,
        "kib": run.kib_per_workflow,
        "cpu": run.cpu_per_100,
        "tput": run.throughput,
        "wall": run.wall_s,
    }


def _format_row(label: str, kind: str, m: dict[str, float], cached: int, threads: int) -> str:
    return (
        f"{label:<7} {kind:<7} {m['idle']:9.1f} {m['rss']:9.1f} {m['kib']:9.1f} {m['cpu']:9.2f} "
        f"{m['tput']:8.1f} {m['wall']:8.1f} {cached:>7} {threads:>8}"
    )


def _median_row(runs: list[Run]) -> str:
    """Each column's median over the runs (so a column need not come from one run)."""
    each = [_metrics(r) for r in runs]
    medians = {key: statistics.median(m[key] for m in each) for key in each[0]}
    threads = int(statistics.median(r.threads for r in runs))
    return _format_row("median", runs[0].kind, medians, runs[0].cached, threads)


HEADER = (
    f"{'run':<7} {'worker':<7} {'idle MiB':>9} {'RSS MiB':>9} {'KiB/wf':>9} {'CPU s/100':>9} "
    f"{'tasks/s':>8} {'wall s':>8} {'cached':>7} {'threads':>8}"
)


def _median_run(runs: list[Run]) -> Run:
    m = Run(runs[0].kind, 0, runs[0].tasks)
    m.idle_rss = int(statistics.median(r.idle_rss for r in runs))
    m.rss = int(statistics.median(r.rss for r in runs))
    m.cpu_s = statistics.median(r.cpu_s for r in runs)
    m.wall_s = statistics.median(r.wall_s for r in runs)
    m.cached = runs[0].cached
    return m


def _kib_median(runs: list[Run]) -> float:
    return statistics.median(r.kib_per_workflow for r in runs)


def report(bench: Bench, runs: list[Run]) -> None:
    args = bench.args
    lucy = [r for r in runs if r.kind == "lucy"]
    bare = [r for r in runs if r.kind == "bare"]
    sandboxed = [r for r in runs if r.kind == "sandbox"]
    untrimmed = [r for r in runs if r.kind == "untrimmed"]
    print()
    if lucy and bench.per_task:
        counts = Counter({k: v / args.tasks for k, v in lucy[0].by_name.items()})
        listed = ", ".join(f"{k} {v:g}" for k, v in counts.most_common())
        print(f"activities per task before the wait (counted in Lucy's worker): {listed} = {bench.per_task}")
        if bare:
            print(
                f"the bare workflow runs {bench.per_task} trivial activities, one after the other, then waits"
            )
    for kind, sample in bench.samples.items():
        line = f"one {kind} workflow: {sample['events']} history events, {sample['wft']} workflow tasks, "
        line += f"{sample['history_bytes'] / 1024:.1f} KiB of history"
        if sample.get("status"):
            line += f"; status query: {sample['status']}"
        print(line)
        modules = sample.get("modules") or {}
        if "reimported" not in modules:
            print("  no sandbox (the workflow runs unsandboxed)")
        else:
            anew = ", ".join(f"{m} (bytecode {modules['bytecode'][m]})" for m in modules["reimported"])
            print(
                f"  its sandbox imported anew: {anew or 'none'}; restriction proxies: "
                f"{', '.join(modules['proxied']) or 'none'}"
            )
        walk = sample.get("walk") or {}
        if walk.get("by_path"):
            print(
                f"  Python objects one cached {kind} workflow holds (reachable from it and not from another "
                f"cached one, sys.getsizeof): {walk['unique_kib']:.1f} KiB; by the path first reached"
            )
            for row in walk["by_path"]:
                print(f"    {row['kib']:8.1f} KiB  {row['path']}")
    print(
        "\nper worker, each column's median: RSS with all tasks idle; KiB per cached workflow = (RSS - idle RSS) / N; "
        "CPU s of the worker process per 100 tasks; tasks/s from the first start to the last activity; "
        "cached: workflows in the worker's cache; threads: the worker's threads"
    )
    print(HEADER)
    medians: dict[str, Run] = {}
    for kind, group in (("lucy", lucy), ("sandbox", sandboxed), ("untrimmed", untrimmed), ("bare", bare)):
        if group:
            medians[kind] = _median_run(group)
            print(_median_row(group))
    if args.profile:
        print("\n(--profile: timings under tracemalloc are not comparable)")
    if "lucy" in medians and "bare" in medians:
        lm, bm = medians["lucy"], medians["bare"]
        kib_ratio = _kib_median(lucy) / _kib_median(bare)
        pairs = [(lr, br) for lr in lucy for br in bare if lr.index == br.index]
        per_run = ", ".join(f"{lr.throughput / br.throughput:.2f}x" for lr, br in pairs)
        tput_ratio = statistics.median(lr.throughput / br.throughput for lr, br in pairs)
        print("\nratios, Lucy / bare")
        rows = [
            (
                f"RSS with {args.tasks} idle tasks",
                lm.rss / bm.rss,
                f"{lm.rss / MIB:.1f} vs {bm.rss / MIB:.1f} MiB",
            ),
            (
                "RSS per cached workflow",
                kib_ratio,
                f"{_kib_median(lucy):.1f} vs {_kib_median(bare):.1f} KiB, medians",
            ),
            (
                "CPU per task",
                lm.cpu_per_100 / bm.cpu_per_100,
                f"{lm.cpu_per_100:.2f} vs {bm.cpu_per_100:.2f} CPU-s per 100 tasks, medians",
            ),
            ("throughput (median of the runs' ratios)", tput_ratio, f"per run: {per_run}"),
        ]
        for label, value, detail in rows:
            print(f"  {label:<42} {value:6.2f}x  ({detail})")
    if "lucy" in medians and "sandbox" in medians:
        _print_before_after(lucy, sandboxed, medians["lucy"], medians["sandbox"])
    if "lucy" in medians and "untrimmed" in medians:
        title = "Lucy / Lucy without app.memory_trim (as before)"
        _print_before_after(lucy, untrimmed, medians["lucy"], medians["untrimmed"], title)
    if "lucy" in medians:
        lm = medians["lucy"]
        at_aim = lm.rss / MIB
        how = f"measured with {args.tasks}"
        if args.tasks != RSS_AIM_TASKS:
            at_aim = (lm.idle_rss + RSS_AIM_TASKS * _kib_median(lucy) * 1024) / MIB
            how = f"idle {lm.idle_rss / MIB:.1f} MiB + {RSS_AIM_TASKS} x {_kib_median(lucy):.1f} KiB, from N={args.tasks}"
        print("\naims")
        print(
            f"  Lucy worker RSS < {RSS_AIM_MIB:.0f} MiB with {RSS_AIM_TASKS} cached workflows: "
            f"{at_aim:.1f} MiB ({how})  {'PASS' if at_aim < RSS_AIM_MIB else 'MISS'}"
        )
        if "bare" in medians:
            print(
                f"  throughput >= {THROUGHPUT_AIM}x the bare worker's (same run): {tput_ratio:.2f}x  "
                f"{'PASS' if tput_ratio >= THROUGHPUT_AIM else 'MISS'}"
            )
    for kind, memory in bench.memory.items():
        print_memory(kind, memory, args.tasks)


def _print_before_after(
    lucy: list[Run],
    before: list[Run],
    lm: Run,
    sm: Run,
    title: str = "Lucy (unsandboxed) / Lucy (sandboxed, as before)",
) -> None:
    """--compare-sandbox, --compare-trim: Lucy's worker now against the same worker as it was
    (runs interleaved in this run)."""
    pairs = [(lr, sr) for lr in lucy for sr in before if lr.index == sr.index]
    tput = statistics.median(lr.throughput / sr.throughput for lr, sr in pairs)
    print(f"\nratios, {title}, same run")
    print(
        f"  {'RSS with all tasks idle':<42} {lm.rss / sm.rss:6.2f}x  ({lm.rss / MIB:.1f} vs {sm.rss / MIB:.1f} MiB)"
    )
    print(
        f"  {'RSS per cached workflow':<42} {_kib_median(lucy) / _kib_median(before):6.2f}x  "
        f"({_kib_median(lucy):.1f} vs {_kib_median(before):.1f} KiB, medians)"
    )
    print(
        f"  {'CPU per task':<42} {lm.cpu_per_100 / sm.cpu_per_100:6.2f}x  "
        f"({lm.cpu_per_100:.2f} vs {sm.cpu_per_100:.2f} CPU-s per 100 tasks, medians)"
    )
    label = "throughput (median of the runs' ratios)"
    print(f"  {label:<42} {tput:6.2f}x")


def print_memory(kind: str, memory: dict[str, Any], tasks: int) -> None:
    print(
        f"\n{kind}: tracemalloc, held with {tasks} tasks idle (traces cleared before the first task): "
        f"{memory['total_kib'] / 1024:.1f} MiB, {memory['per_task_kib']:.1f} KiB per task"
    )
    print(f"  top allocation sites (line that allocated)   {'KiB':>9} {'KiB/task':>9} {'blocks':>8}")
    for s in memory["sites"]:
        print(f"  {s['site']:<66} {s['kib']:9.0f} {s['kib'] / tasks:9.2f} {s['count']:8d}  {s['code']}")
    print("  the same memory by the innermost frame of our code or the SDK's (not the stdlib)")
    for s in memory["origins"]:
        print(f"  {s['site']:<66} {s['kib']:9.0f} {s['kib'] / tasks:9.2f}")
    modules = memory.get("modules") or {}
    if modules:
        print(f"  modules its sandbox imported anew for one workflow: {', '.join(modules['reimported'])}")
        print(f"  modules wrapped in a restriction proxy for one workflow: {', '.join(modules['proxied'])}")


def _machine() -> str:
    import platform
    import subprocess

    from temporalio import __version__ as sdk

    from app.devservers import temporal_cli_path

    try:
        cli = subprocess.run([temporal_cli_path(), "--version"], capture_output=True, text=True, timeout=10)
        cli_version = cli.stdout.strip().split(" (")[0].replace("temporal version ", "")
    except Exception:
        cli_version = "?"
    mem = os.sysconf("SC_PHYS_PAGES") * PAGE / 1024**3
    return (
        f"{os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}, temporalio {sdk}, "
        f"Temporal CLI {cli_version} dev server (SQLite file)"
    )


def _find_py_spy() -> str:
    import shutil

    for candidate in (
        os.environ.get("PY_SPY"),
        shutil.which("py-spy"),
        str(Path(sys.executable).parent / "py-spy"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    raise SystemExit("py-spy not found: pip install py-spy (anywhere), then PATH or PY_SPY=/path/to/py-spy")


async def parent_main(args: argparse.Namespace) -> None:
    if args.tasks is None:
        args.tasks = 50 if args.profile else DEFAULT_TASKS
    if args.max_cached is None:
        args.max_cached = max(1000, 2 * args.tasks)
    if args.profile and args.runs > 1:
        args.runs = 1
    tmp = Path(tempfile.mkdtemp(prefix="lucy-worker-scale-"))
    bench = Bench(args, tmp)
    if args.py_spy:
        bench.py_spy = _find_py_spy()
    print(
        f"machine: {_machine()}\nN={args.tasks} tasks per run, {args.runs} run(s) per worker, "
        f"max_cached_workflows={args.max_cached}, {args.concurrency} starts in flight, bytecode "
        f"{args.bytecode}; each worker in its own process\n",
        flush=True,
    )
    print(HEADER, flush=True)
    started = time.monotonic()
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)  # as Ctrl-C
    try:
        runs = await bench.main()
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    report(bench, runs)
    print(f"\n(whole run {time.monotonic() - started:.0f} s)")
    if args.py_spy:
        kinds = sorted({r.kind for r in runs})
        print("py-spy profiles (run 1): " + ", ".join(f"{k} {spy_output(args.py_spy, k)}" for k in kinds))


def parse_args() -> argparse.Namespace:
    from lucy.settings import TemporalSettings

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tasks",
        "-n",
        type=int,
        default=None,
        help="tasks per run (N), default 500 (50 with --profile); the RSS aim is then judged on idle RSS + 1000 x KiB per workflow",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per worker, alternating, default 3")
    parser.add_argument("--concurrency", "-c", type=int, default=50, help="workflow starts in flight")
    parser.add_argument(
        "--max-cached", type=int, default=None, help="max_cached_workflows (default max(1000, 2N))"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="s for one run's tasks to go idle")
    parser.add_argument("--settle", type=float, default=2.0, help="s between worker start and idle RSS")
    parser.add_argument("--only", choices=("lucy", "bare"), help="run one worker only")
    parser.add_argument(
        "--compare-sandbox",
        action="store_true",
        help="also run Lucy's worker with the sandboxed runner it used before (interleaved): before/after",
    )
    parser.add_argument(
        "--compare-trim",
        action="store_true",
        help="also run Lucy's worker without app.memory_trim (interleaved): before/after",
    )
    parser.add_argument(
        "--memory-trim",
        type=float,
        default=TemporalSettings.model_fields["worker_memory_trim_seconds"].default,
        help="s between Lucy's heap trims (LUCY_WORKER_MEMORY_TRIM_SECONDS' default); every worker "
        "idles this long and a second more before its RSS is read (0: no trim, no wait)",
    )
    parser.add_argument(
        "--activities", type=int, default=6, help="with --only bare: trivial activities per task"
    )
    parser.add_argument(
        "--profile", action="store_true", help="one run per worker under tracemalloc: where the memory goes"
    )
    parser.add_argument("--frames", type=int, default=16, help="--profile: frames kept per allocation")
    parser.add_argument(
        "--py-spy",
        metavar="OUT",
        help="record run 1's workers with py-spy: Lucy's to OUT, the bare one's to OUT-bare (OUT.svg: "
        "flamegraph, OUT.json: speedscope, OUT.txt: raw collapsed stacks)",
    )
    parser.add_argument(
        "--bytecode",
        choices=("fresh", "as-is"),
        default="fresh",
        help="fresh (default): the workers load compiled bytecode from a private cache, as a deployed "
        "image does; as-is: whatever this environment has (with PYTHONDONTWRITEBYTECODE=1 and a stale "
        ".pyc the sandbox compiles the workflow's module from source for every workflow)",
    )
    # the worker child (internal)
    parser.add_argument("--pycache", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=("lucy", "sandbox", "untrimmed", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--namespace", default="default", help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.child:
        if args.pycache:  # --bytecode fresh: compile once into a private cache, as an image does
            sys.pycache_prefix = args.pycache
            sys.dont_write_bytecode = False
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(child_main(args))
        return
    if args.py_spy:
        args.py_spy = str(Path(args.py_spy).resolve())
    try:
        asyncio.run(parent_main(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted: workers and the dev server stopped", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
