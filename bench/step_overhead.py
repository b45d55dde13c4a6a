"""Benchmark: the task engine's per-step overhead, and approval click -> resumed -> message updated.

    .venv/bin/python bench/step_overhead.py                  # defaults: N=20, k=5, M=20
    .venv/bin/python bench/step_overhead.py --tasks 50 --steps 8 --concurrency 4

One embedded PostgreSQL, one Temporal dev server (SQLite file) and one worker process (this
one: Lucy's real worker from ``app.worker.lucy_worker``, plus a second ``Worker`` built from
the same config for the baseline), with Lucy's fakes (Slack, OpenAI-compatible LLM, OpenClaw
gateway) as real HTTP servers in this process, all answering at once.

1. Lucy: tasks whose model calls ``read_file`` k times, then answers ("k tool steps"); and
   tasks whose model answers at once (k=0). Wall time per task: ``start_workflow`` -> result.
2. Baseline: a bare workflow running k (and 2k, and 0) no-op activities in sequence. Each Lucy
   tool step is an LLM activity + a tool activity, so bare(2k) is the like-for-like baseline.
   The runs of all configurations are interleaved, round by round, so drift hits them alike.
3. Approvals: M tasks whose model asks for ``exec`` (high risk). Once the ``status`` query shows
   the pending approval, the ``decide_approval`` update is sent (what ingress does for a
   click) and the time to (a) the update returning, (b) the command reaching the gateway (the
   workflow resumed and ran the tool), (c) the approval message's ``chat.update`` reaching Slack.
   Arrival times are taken inside the fake servers, in this process, with the same clock.

4. Budgets: every LLM step reserves its estimate before the call and settles after it (two
   database round trips inside ``llm.chat``). The bench's workspace has a monthly budget
   (``--budget-usd``), so every reservation checks and locks it. With ``--budget-guard both``
   (the default) a second worker, built the same way but without the guard (Lucy before
   budgets), serves its own queue, and its Lucy runs are interleaved with the others: the
   per-step ratio with and without budgets comes from the same rounds. After the timed phases,
   ``--budget-probes`` reserve and settle round trips are timed alone.

5. Queue roles: with ``--queue-split both`` a third Lucy worker with
   ``LUCY_WORKER_SPLIT_QUEUES=false`` (every activity on the workflow's own queue, eager dispatch
   possible) serves its own queue, interleaved with the others: split / one queue from the same
   rounds (docs/benchmarks.md "Task queues by role").

``--tracing`` turns OpenTelemetry on (:mod:`lucy.tracing`: Temporal's interceptor and the httpx,
aiohttp and asyncpg instrumentations, every span through a ``BatchSpanProcessor`` into an
in-memory exporter, so the figure is the cost of making spans, not of a network): compare a run
with and one without it.

The Slack channel pacer (production: 1 s between two posts in a channel) is set to 0 by
default: it is Slack's rate limit, not engine overhead. ``--channel-interval 1`` shows it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

ROOT = Path(__file__).parent.parent  # absolute: Python makes a script's __file__ absolute
if str(ROOT) not in sys.path:  # this module is re-imported by the workflow sandbox
    sys.path.insert(0, str(ROOT))

with workflow.unsafe.imports_passed_through():
    import argparse
    import asyncio
    import contextlib
    import itertools
    import json
    import os
    import re
    import shutil
    import statistics
    import tempfile
    import time
    import uuid
    from collections import Counter, defaultdict
    from collections.abc import Awaitable, Callable
    from typing import Any

    from pydantic import SecretStr
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import Client, WorkflowHandle
    from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
    from temporalio.worker import Worker

    import app.worker
    from app.devservers import LocalPostgres, free_port
    from app.worker import claim_signer, lucy_worker
    from bench.servers import scratch_temporal
    from capabilities.approvals.contracts import ApprovalDecisionKind, ApprovalOutcome
    from capabilities.budgets.activities import BudgetGuard
    from capabilities.task.contracts.task import TaskInput, TaskResult
    from capabilities.task.listeners.claims import signed_decision
    from capabilities.task.repository import ingress_claim
    from lucy import migrate, tracing
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
    from lucy.contracts.llm import ChatMessage, LlmRequest
    from lucy.db.session import create_engine, create_sessionmaker
    from lucy.logging import configure_logging
    from lucy.settings import load_settings
    from tests.fakes.gateway import FakeGateway
    from tests.fakes.llm import FakeLlm, Scripted
    from tests.fakes.slack import FakeSlack


# --------------------------------------------------------------------------- the baseline


@dataclass(frozen=True)
class NoopInput:
    activities: int


@dataclass(frozen=True)
class NoopStep:
    index: int


NOOP_RETRY = RetryPolicy(maximum_attempts=3)


@activity.defn(name="bench.noop")
async def noop(step: NoopStep) -> NoopStep:
    return step


@workflow.defn(name="BenchBareWorkflow")
class BareWorkflow:
    """k no-op activities, one after the other: what a bare Temporal workflow costs."""

    @workflow.run
    async def run(self, inp: NoopInput) -> int:
        for i in range(inp.activities):
            await workflow.execute_activity(
                noop, NoopStep(i), start_to_close_timeout=timedelta(seconds=30), retry_policy=NOOP_RETRY
            )
        return inp.activities


# --------------------------------------------------------------------------- fakes with clocks


@dataclass
class BenchLlm(FakeLlm):
    """The fake LLM, answering by the conversation instead of a shared script (so concurrent
    tasks cannot take each other's answers): the request text says ``steps=<k> tool=<name>
    args=<json>``; the model calls that tool until the conversation has k tool results, then
    answers "done". Intent classifications get the fake's default answer (chat)."""

    def _take(self, body: dict[str, Any]) -> Scripted:
        if (body.get("response_format") or {}).get("type") == "json_object":
            return super()._take(body)
        messages = body.get("messages") or []
        request = next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")
        spec = re.search(r"steps=(\d+) tool=(\S+) args=(.*)$", request)
        done = sum(1 for m in messages if m.get("role") == "tool")
        if spec and done < int(spec[1]):
            return Scripted(tool_calls=[(spec[2], spec[3])])
        return Scripted(content="done")


@dataclass
class BenchGateway(FakeGateway):
    exec_at: dict[str, float] = field(default_factory=dict)  # command -> arrival (perf_counter)

    async def _tool_exec(self, args: dict[str, Any]) -> dict[str, Any]:
        self.exec_at.setdefault(str(args.get("command")), time.perf_counter())
        return await super()._tool_exec(args)


@dataclass
class BenchSlack(FakeSlack):
    update_at: dict[tuple[str, str], float] = field(default_factory=dict)  # (channel, ts) -> 1st update

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        answer = super()._m_chat_update(p)
        if answer.get("ok"):
            self.update_at.setdefault((str(p.get("channel")), str(p.get("ts"))), time.perf_counter())
        return answer


# --------------------------------------------------------------------------- before [speed]

# A second Lucy worker serves this queue suffix, and its workflows take none of the [speed]
# patches: Lucy as it was before them, measured in the same run (a patch not taken is exactly
# the old code path, which is what every recorded history replays).
BEFORE = "-before"
SPEED_PATCHES = frozenset(
    {
        "speed-approval-parallel",
        "speed-finish-together",
        "speed-paced-progress",
        "speed-paced-records",
        "speed-verify-local",
    }
)


def install_before() -> None:
    """Make ``workflow.patched`` say no to the [speed] patches on the ``BEFORE`` queue (called
    once, in the bench's own process; the workflow code looks the function up on the module)."""
    patched = workflow.patched

    def patched_unless_before(patch_id: str) -> bool:
        if patch_id in SPEED_PATCHES and workflow.info().task_queue.endswith(BEFORE):
            return False
        return patched(patch_id)

    workflow.patched = patched_unless_before  # type: ignore[assignment]


# --------------------------------------------------------------------------- helpers


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    if q == 0.5:
        return statistics.median(s)
    return s[min(len(s) - 1, int(len(s) * q))]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.team = f"TBENCH{uuid.uuid4().hex[:6].upper()}"
        self.ts = itertools.count(1)
        self.ids: dict[str, list[str]] = defaultdict(list)  # config -> workflow ids

    async def new_task(self, text: str) -> TaskInput:
        """The rows ingress writes (tenant, user, channel, claimed task), with the function
        ``TaskStarter`` calls; untimed. Each task has its own channel (and so its own pacer lane)."""
        n = next(self.ts)
        ts, channel = f"{1800000000 + n}.{n:06d}", f"CB{n:07d}"
        workflow_id = task_workflow_id(self.team, channel, ts)
        async with self.sessions.begin() as session:
            claim = await ingress_claim(
                session=session,
                slack_team_id=self.team,
                slack_user_id="UBENCH",
                slack_channel_id=channel,
                channel_type="public",
                workflow_id=workflow_id,
                source="mention",
                request_text=text,
                slack_thread_ts=ts,
                user_capacity=1e9,  # the bench measures the engine, not the rate limits
                user_refill_per_second=1e9,
                workspace_capacity=1e9,
                workspace_refill_per_second=1e9,
                month=datetime.now(UTC).date(),
            )
        if not claim.claimed or claim.refused:
            raise RuntimeError(f"{workflow_id}: ingress claim refused ({claim.refused})")
        workspace_id, user_id, channel_id = claim.workspace_id, claim.user_id, claim.channel_id
        return TaskInput(
            workspace_id=str(workspace_id),
            user_id=str(user_id),
            channel_id=str(channel_id),
            slack_team_id=self.team,
            slack_user_id="UBENCH",
            slack_channel_id=channel,
            thread_ts=ts,
            message_ts=ts,
            text=text,
            source="mention",
        )

    async def start_lucy(
        self, task: TaskInput, workflow_id: str, queue: str | None = None
    ) -> WorkflowHandle[Any, TaskResult]:
        attributes = TypedSearchAttributes(
            [
                SearchAttributePair(SA_WORKSPACE, task.slack_team_id),
                SearchAttributePair(SA_USER, task.slack_user_id),
                SearchAttributePair(SA_CHANNEL, task.slack_channel_id),
                SearchAttributePair(SA_THREAD, task.thread_ts),
                SearchAttributePair(SA_SOURCE, task.source),
                SearchAttributePair(SA_STATUS, TaskStatus.CREATED.value),
            ]
        )
        return await self.client.start_workflow(
            TASK_WORKFLOW_NAME,
            task,
            id=workflow_id,
            task_queue=queue or self.lucy_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=attributes,
            result_type=TaskResult,
        )

    def lucy_run(self, steps: int, config: str, queue: str | None = None) -> Callable[[], Awaitable[float]]:
        async def run() -> float:
            task = await self.new_task(f"bench steps={steps} tool=read_file args={json.dumps(READ_ARGS)}")
            workflow_id = task_workflow_id(task.slack_team_id, task.slack_channel_id, task.message_ts)
            started = time.perf_counter()
            handle = await self.start_lucy(task, workflow_id, queue)
            result = await handle.result()
            elapsed = (time.perf_counter() - started) * 1000
            if result.status != TaskStatus.COMPLETED.value:
                raise RuntimeError(f"{workflow_id} ended {result.status} ({result.error_type})")
            self.ids[config].append(workflow_id)
            return elapsed

        return run

    def bare_run(self, activities: int, config: str) -> Callable[[], Awaitable[float]]:
        async def run() -> float:
            workflow_id = f"bench-bare-{uuid.uuid4().hex[:12]}"
            started = time.perf_counter()
            handle = await self.client.start_workflow(
                BareWorkflow.run, NoopInput(activities), id=workflow_id, task_queue=self.bare_queue
            )
            await handle.result()
            elapsed = (time.perf_counter() - started) * 1000
            self.ids[config].append(workflow_id)
            return elapsed

        return run

    async def approval_run(
        self, queue: str | None = None, config: str = "approval"
    ) -> tuple[float, float, float]:
        """One approval, in ms after the click: (update returned, tool running, message updated)."""
        marker = uuid.uuid4().hex[:12]
        task = await self.new_task(
            f"bench steps=1 tool=exec args={json.dumps({'command': f'echo {marker}'})}"
        )
        workflow_id = task_workflow_id(task.slack_team_id, task.slack_channel_id, task.message_ts)
        handle = await self.start_lucy(task, workflow_id, queue)
        deadline = time.monotonic() + 30
        while True:
            status = await handle.query("status")
            pending = status.get("pending_approval")
            if pending:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{workflow_id}: no pending approval after 30 s: {status}")
            await asyncio.sleep(0.01)
        # The workflow waits for the approval (and accepts a click) from just before the message
        # is posted; wait for the message too, since the bench measures its update.
        message_ts = None
        while message_ts is None:
            message_ts = next(
                (
                    m["ts"]
                    for m in self.slack.messages.get(task.slack_channel_id, [])
                    if pending["approval_id"] in json.dumps(m.get("blocks") or [])  # in the buttons' value
                ),
                None,
            )
            if message_ts is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{workflow_id}: no Slack message carries approval {pending['approval_id']}"
                    )
                await asyncio.sleep(0.01)
        # What ingress sends for a click: who clicked, signed; the worker reads the role from Slack.
        decision = signed_decision(
            self.signer,
            workflow_id=workflow_id,
            approval_id=pending["approval_id"],
            decision=ApprovalDecisionKind.APPROVED,
            user="UADMINBENCH",
            team=self.team,
        )
        clicked = time.perf_counter()
        outcome = await handle.execute_update("decide_approval", decision, result_type=ApprovalOutcome)
        returned = time.perf_counter()
        result = await handle.result()
        if outcome.decision != "approved" or result.status != TaskStatus.COMPLETED.value:
            raise RuntimeError(f"{workflow_id}: {outcome.decision}, ended {result.status}")
        updated = self.slack.update_at[(task.slack_channel_id, message_ts)]
        ran = self.gateway.exec_at[f"echo {marker}"]
        self.ids[config].append(workflow_id)
        return (returned - clicked) * 1000, (ran - clicked) * 1000, (updated - clicked) * 1000

    async def history_profile(self, config: str, limit: int = 10) -> dict[str, Any]:
        """Per workflow, averaged over up to ``limit`` runs: workflow tasks, activities by type,
        and where the server's time went (ms, from the history's event times)."""
        ids = self.ids[config][-limit:]
        acts: Counter[str] = Counter()
        act_run: defaultdict[str, float] = defaultdict(float)
        wft = events = 0
        wft_sched_to_start = wft_start_to_close = act_sched_to_start = server_total = 0.0
        for workflow_id in ids:
            history = await self.client.get_workflow_handle(workflow_id).fetch_history()
            evs = history.events
            events += len(evs)
            by_id = {e.event_id: e for e in evs}
            server_total += (evs[-1].event_time.ToMicroseconds() - evs[0].event_time.ToMicroseconds()) / 1000
            for e in evs:
                t = e.event_time.ToMicroseconds() / 1000
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                    wft += 1
                    a = e.workflow_task_completed_event_attributes
                    started = by_id[a.started_event_id]
                    scheduled = by_id[a.scheduled_event_id]
                    wft_start_to_close += t - started.event_time.ToMicroseconds() / 1000
                    wft_sched_to_start += (
                        started.event_time.ToMicroseconds() - scheduled.event_time.ToMicroseconds()
                    ) / 1000
                elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                    a = e.activity_task_completed_event_attributes
                    scheduled = by_id[a.scheduled_event_id]
                    started = by_id[a.started_event_id]
                    kind = scheduled.activity_task_scheduled_event_attributes.activity_type.name
                    acts[kind] += 1
                    act_run[kind] += t - started.event_time.ToMicroseconds() / 1000
                    act_sched_to_start += (
                        started.event_time.ToMicroseconds() - scheduled.event_time.ToMicroseconds()
                    ) / 1000
        n = max(1, len(ids))
        total_acts = sum(acts.values())
        return {
            "runs": len(ids),
            "events": events / n,
            "wft": wft / n,
            "wft_sched_to_start": wft_sched_to_start / max(1, wft),
            "wft_start_to_close": wft_start_to_close / max(1, wft),
            "acts": {k: v / n for k, v in sorted(acts.items(), key=lambda kv: -kv[1])},
            "act_run": {k: act_run[k] / acts[k] for k in acts},
            "act_sched_to_start": act_sched_to_start / max(1, total_acts),
            "server_total": server_total / n,
        }


READ_ARGS = {"path": "/tmp/a"}


async def rounds(
    configs: dict[str, Callable[[], Awaitable[float]]], n: int, concurrency: int
) -> dict[str, list[float]]:
    """``n`` runs of each configuration, ``concurrency`` at a time, configurations interleaved
    (the order rotates each round)."""
    samples: dict[str, list[float]] = {name: [] for name in configs}
    names = list(configs)
    done = 0
    r = 0
    while done < n:
        batch = min(concurrency, n - done)
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            samples[name].extend(await asyncio.gather(*(configs[name]() for _ in range(batch))))
        done += batch
        r += 1
    return samples


# --------------------------------------------------------------------------- main


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", "-n", type=int, default=20, help="runs per configuration (N)")
    parser.add_argument("--steps", "-k", type=int, default=5, help="tool steps per Lucy task (k)")
    parser.add_argument("--approvals", "-m", type=int, default=20, help="approval round trips (M)")
    parser.add_argument("--concurrency", "-c", type=int, default=1, help="runs of a config in flight")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs of each config first")
    parser.add_argument("--tracing", action="store_true", help="OpenTelemetry on (spans kept in memory)")
    parser.add_argument(
        "--channel-interval", type=float, default=0.0, help="Slack pacer, s between posts per channel"
    )
    parser.add_argument(
        "--budget-guard",
        choices=("on", "both"),
        default="both",
        help="also run Lucy without the budget guard",
    )
    parser.add_argument(
        "--queue-split",
        choices=("on", "both"),
        default="on",
        help="both: also run Lucy with LUCY_WORKER_SPLIT_QUEUES=false (every activity on one queue)",
    )
    parser.add_argument(
        "--no-before",
        dest="before",
        action="store_false",
        help="do not run Lucy before the [speed] patches (a worker whose runs take none of them)",
    )
    parser.add_argument(
        "--budget-usd", type=float, default=1_000_000.0, help="the workspace's monthly budget"
    )
    parser.add_argument(
        "--budget-probes", type=int, default=200, help="reserve+settle round trips timed alone"
    )
    args = parser.parse_args()
    spans = _tracing_on() if args.tracing else None
    k = args.steps
    configure_logging("WARNING", json_output=False)
    tmp = Path(tempfile.mkdtemp(prefix="lucy-steps-"))
    slack, llm, gateway = BenchSlack(), BenchLlm(), BenchGateway()
    gateway.files[READ_ARGS["path"]] = "hello from the fake gateway\n"
    pg = LocalPostgres(tmp / "pg", port=free_port())
    temporal = scratch_temporal(tmp / "temporal.db")
    bench = Bench(args)
    engine = None
    wall = time.perf_counter()
    try:
        for fake in (slack, llm, gateway):
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
            openclaw_api_key=SecretStr(gateway.api_key),
            openclaw_base_url=gateway.base_url,
            camofox_url=f"http://127.0.0.1:{free_port()}",  # nobody listens: no browser tool
            temporal_address=temporal.address,
            temporal_task_queue=f"lucy-bench-{uuid.uuid4().hex[:8]}",
            slack_channel_min_interval=args.channel_interval,
            agent_max_steps=max(12, k + 2),
            budget_workspace_monthly_usd=args.budget_usd,
        )
        engine = create_engine(settings.database)
        bench.sessions = create_sessionmaker(engine)
        bench.engine = engine
        bench.client = client = await Client.connect(
            temporal.address, namespace="default", interceptors=tracing.temporal_interceptors()
        )
        bench.slack, bench.gateway = slack, gateway
        bench.lucy_queue = settings.temporal.temporal_task_queue
        bench.signer = claim_signer(settings)
        bench.bare_queue = bench.lucy_queue + "-bare"
        async with contextlib.AsyncExitStack() as stack:
            worker = (await stack.enter_async_context(lucy_worker(settings, client, engine=engine)))[0]
            if args.budget_guard == "both":  # Lucy as it was before budgets: no guard in llm.chat
                guard = app.worker.BudgetGuard
                app.worker.BudgetGuard = lambda *_a, **_k: None  # type: ignore[assignment,misc]
                try:
                    await stack.enter_async_context(
                        lucy_worker(settings, client, engine=engine, task_queue=bench.lucy_queue + "-noguard")
                    )
                finally:
                    app.worker.BudgetGuard = guard  # type: ignore[misc]
            if args.queue_split == "both":  # Lucy before the queue roles: every activity on one queue
                await _one_queue_worker(stack, settings, client, engine, bench.lucy_queue)
            if args.before:  # Lucy as it was before the [speed] patches, in the same run
                install_before()
                await stack.enter_async_context(
                    lucy_worker(settings, client, engine=engine, task_queue=bench.lucy_queue + BEFORE)
                )
            # The baseline: the same worker config (client, options, sandbox), its own queue.
            config = worker.config()
            config.update(task_queue=bench.bare_queue, workflows=[BareWorkflow], activities=[noop])
            async with Worker(**config):
                configs = {
                    f"Lucy k={k}": bench.lucy_run(k, "lucy_k"),
                    "Lucy k=0": bench.lucy_run(0, "lucy_0"),
                    f"bare {k} act.": bench.bare_run(k, "bare_k"),
                    f"bare {2 * k} act.": bench.bare_run(2 * k, "bare_2k"),
                    "bare 0 act.": bench.bare_run(0, "bare_0"),
                }
                if args.queue_split == "both":
                    one = bench.lucy_queue + "-onequeue"
                    configs[f"Lucy k={k} one queue"] = bench.lucy_run(k, "lucy_k_1q", one)
                    configs["Lucy k=0 one queue"] = bench.lucy_run(0, "lucy_0_1q", one)
                if args.budget_guard == "both":
                    noguard = bench.lucy_queue + "-noguard"
                    configs[f"Lucy k={k} no guard"] = bench.lucy_run(k, "lucy_k_ng", noguard)
                    configs["Lucy k=0 no guard"] = bench.lucy_run(0, "lucy_0_ng", noguard)
                if args.before:
                    before = bench.lucy_queue + BEFORE
                    configs[f"Lucy k={k} before"] = bench.lucy_run(k, "lucy_k_before", before)
                    configs["Lucy k=0 before"] = bench.lucy_run(0, "lucy_0_before", before)
                if args.warmup:
                    await rounds(configs, args.warmup, 1)
                    for _ in range(min(3, args.warmup)):
                        await bench.approval_run()
                    bench.ids.clear()
                started = time.perf_counter()
                samples = await rounds(configs, args.tasks, args.concurrency)
                steps_s = time.perf_counter() - started
                started = time.perf_counter()
                approvals, approvals_before = [], []
                for i in range(args.approvals):  # interleaved, the order alternating
                    pair = ["after", "before"] if args.before else ["after"]
                    for which in pair if i % 2 == 0 else pair[::-1]:
                        if which == "after":
                            approvals.append(await bench.approval_run())
                        else:
                            approvals_before.append(
                                await bench.approval_run(bench.lucy_queue + BEFORE, "approval_before")
                            )
                approvals_s = time.perf_counter() - started
                profiles = {
                    name: await bench.history_profile(key)
                    for name, key in (
                        (f"Lucy k={k}", "lucy_k"),
                        ("Lucy k=0", "lucy_0"),
                        (f"bare {k} act.", "bare_k"),
                        ("approval (k=1 exec)", "approval"),
                        *(
                            ((f"Lucy k={k} before", "lucy_k_before"), ("Lucy k=0 before", "lucy_0_before"))
                            if args.before
                            else ()
                        ),
                        *((("approval before", "approval_before"),) if args.before else ()),
                    )
                }
        budget = await budget_round_trips(bench, settings, args.budget_probes)
        report(args, samples, approvals, profiles, steps_s, approvals_s, time.perf_counter() - wall, budget)
        if args.before:
            report_before(args, samples, approvals, approvals_before)
        if spans is not None:
            spans[0].force_flush()
            print(f"tracing on: {len(spans[1].get_finished_spans())} spans made")
    finally:
        if engine is not None:
            await engine.dispose()
        temporal.stop()
        pg.stop()
        for fake in (slack, llm, gateway):
            await fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _tracing_on() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracing.install(provider)
    return provider, exporter


async def budget_round_trips(bench: Bench, settings: Any, probes: int) -> dict[str, list[float]]:
    """``probes`` reserve and settle round trips, one after the other, as ``llm.chat`` makes them
    (the same guard, the bench's workspace and its budget), in ms."""
    task = await bench.new_task("budget probe")
    guard = BudgetGuard(bench.engine, settings.budget)
    request = LlmRequest(
        messages=[ChatMessage(role="user", content="x" * 2_000)],
        workspace_id=task.workspace_id,
        user_id=task.user_id,
    )
    out: dict[str, list[float]] = {"reserve": [], "settle": []}
    for n in range(probes):
        started = time.perf_counter()
        hold = await guard.reserve(
            request, model="bench/model", reports_cost=True, key=f"probe-{uuid.uuid4()}-{n}"
        )
        reserved = time.perf_counter()
        assert hold is not None
        await guard.settle(hold, hold.amount_usd / 2)
        settled = time.perf_counter()
        out["reserve"].append((reserved - started) * 1000)
        out["settle"].append((settled - reserved) * 1000)
    return out


async def _one_queue_worker(
    stack: contextlib.AsyncExitStack, settings: Any, client: Client, engine: Any, base: str
) -> None:
    """Lucy with ``LUCY_WORKER_SPLIT_QUEUES=false`` on ``<base>-onequeue``: every activity on the
    workflow's own queue (eager dispatch possible), as one process serving everything may run."""
    from app.worker import lucy_worker

    temporal = settings.temporal.model_copy(update={"worker_split_queues": False})
    one = settings.model_copy(update={"temporal": temporal})
    await stack.enter_async_context(lucy_worker(one, client, engine=engine, task_queue=base + "-onequeue"))


def report(
    args: argparse.Namespace,
    samples: dict[str, list[float]],
    approvals: list[tuple[float, float, float]],
    profiles: dict[str, dict[str, Any]],
    steps_s: float,
    approvals_s: float,
    wall_s: float,
    budget: dict[str, list[float]] | None = None,
) -> None:
    k = args.steps
    print(
        f"machine: {os.cpu_count()} cores; N={args.tasks} runs per config, k={k}, concurrency "
        f"{args.concurrency}, M={args.approvals} approvals, Slack pacer {args.channel_interval:g} s; "
        f"one dev server, one worker process\n"
    )
    print(f"{'end-to-end (start -> result)':<30} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9}")
    p50 = {}
    for name, values in samples.items():
        p50[name] = pct(values, 0.5)
        print(f"{name:<30} {p50[name]:9.1f} {pct(values, 0.99):9.1f} {statistics.fmean(values):9.1f}")
    lucy_k, lucy_0 = p50[f"Lucy k={k}"], p50["Lucy k=0"]
    bare_k, bare_2k, bare_0 = p50[f"bare {k} act."], p50[f"bare {2 * k} act."], p50["bare 0 act."]
    lucy_step = (lucy_k - lucy_0) / k
    bare_act = (bare_2k - bare_0) / (2 * k)
    print(
        f"\nLucy fixed cost (k=0) {lucy_0:.1f} ms; per tool step (T(k) - T(0)) / k = {lucy_step:.1f} ms"
        f"\nbare: empty workflow {bare_0:.1f} ms; per no-op activity (bare(2k) - bare(0)) / 2k = "
        f"{bare_act:.1f} ms, so {2 * bare_act:.1f} ms per LLM + tool pair"
    )
    ratios = [
        (f"Lucy k={k} / bare {k} act. (the issue's aim)", lucy_k / bare_k),
        (f"Lucy k={k} / bare {2 * k} act. (same activity count on the critical path)", lucy_k / bare_2k),
        ("per step: Lucy step / 2 bare activities", lucy_step / (2 * bare_act)),
        ("fixed: Lucy k=0 / bare 0 act.", lucy_0 / bare_0),
    ]
    print("\nratios (p50)")
    for label, value in ratios:
        print(f"  {label:<72} {value:6.2f}x")
    if f"Lucy k={k} no guard" in p50:
        ng_step = (p50[f"Lucy k={k} no guard"] - p50["Lucy k=0 no guard"]) / k
        with_guard, without = lucy_step / (2 * bare_act), ng_step / (2 * bare_act)
        print(
            f"\nbudgets (same rounds): per tool step {lucy_step:.1f} ms with the guard, {ng_step:.1f} ms "
            f"without;\n  per-step ratio (Lucy step / 2 bare activities) {with_guard:.2f}x with, "
            f"{without:.2f}x without: {with_guard / without - 1:+.1%} (aim: within 5%)"
        )
    if f"Lucy k={k} one queue" in p50:
        one_k, one_0 = p50[f"Lucy k={k} one queue"], p50["Lucy k=0 one queue"]
        one_step = (one_k - one_0) / k
        print(
            f"\nqueue roles (same rounds): Lucy k={k} {lucy_k:.1f} ms split, {one_k:.1f} ms on one queue "
            f"({lucy_k / one_k:.2f}x); k=0 {lucy_0:.1f} vs {one_0:.1f} ms ({lucy_0 / one_0:.2f}x);"
            f"\n  per tool step {lucy_step:.1f} ms split, {one_step:.1f} ms one queue ({lucy_step / one_step:.2f}x)"
        )
    if budget:
        reserve, settle = budget["reserve"], budget["settle"]
        both = pct(reserve, 0.5) + pct(settle, 0.5)
        print(
            f"\nbudget guard {args.budget_guard} (workspace budget ${args.budget_usd:,.0f}); "
            f"{len(reserve)} round trips timed alone:"
            f"\n  reserve (lucy_budget_reserve)   p50 {pct(reserve, 0.5):6.2f} ms  p99 {pct(reserve, 0.99):6.2f} ms"
            f"\n  settle  (lucy_budget_settle)    p50 {pct(settle, 0.5):6.2f} ms  p99 {pct(settle, 0.99):6.2f} ms"
            f"\n  per LLM call {both:.2f} ms = {both / max(lucy_step, 1e-9):.1%} of one Lucy tool step "
            f"({lucy_step:.1f} ms, which holds one LLM call)"
        )
    print(f"\napproval (M={len(approvals)}): ms after the decide_approval update is sent")
    print(f"{'':<46} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    columns = (
        ("(a) decide_approval update returned", [a[0] for a in approvals]),
        ("(b) workflow resumed: gateway got the command", [a[1] for a in approvals]),
        ("(c) approval message updated (chat.update)", [a[2] for a in approvals]),
        ("both (b) and (c) done", [max(a[1], a[2]) for a in approvals]),
    )
    for label, values in columns:
        print(f"{label:<46} {pct(values, 0.5):9.1f} {pct(values, 0.99):9.1f} {max(values):9.1f}")
    print("  (speed-approval-parallel: the tool starts once the click is verified, the settle alongside)")
    print("\nwhere the time goes (history of the measured runs; averages per workflow)")
    for name, p in profiles.items():
        acts = ", ".join(
            f"{kind} {count:g}x {p['act_run'][kind]:.1f} ms" for kind, count in p["acts"].items()
        )
        print(
            f"  {name}: {p['events']:.0f} events, {p['wft']:.1f} workflow tasks "
            f"(queue {p['wft_sched_to_start']:.1f} ms, run {p['wft_start_to_close']:.1f} ms each); "
            f"activity queue {p['act_sched_to_start']:.1f} ms each; server-side {p['server_total']:.0f} ms"
        )
        print(f"      activities (count, mean run): {acts or 'none'}")
    ran_p50 = pct([a[1] for a in approvals], 0.5)
    fixed, per_step = lucy_0 / bare_0, lucy_step / (2 * bare_act)
    print(
        f"\nverdict (issue 31): click -> tool running p50 {ran_p50:.1f} ms (aim < 100 ms): "
        f"{'met' if ran_p50 < 100 else 'NOT met'}"
        f"\nverdict (issue 31): fixed cost {fixed:.2f}x an empty workflow (aim <= 4x): "
        f"{'met' if fixed <= 4 else 'NOT met'}"
        f"\nverdict (issue 31): per tool step {per_step:.2f}x two bare activities (aim <= 1.2x): "
        f"{'met' if per_step <= 1.2 else 'NOT met'}"
    )
    print(f"\n(timed phases {steps_s:.1f} s + {approvals_s:.1f} s; whole run {wall_s:.1f} s)")


def report_before(
    args: argparse.Namespace,
    samples: dict[str, list[float]],
    approvals: list[tuple[float, float, float]],
    approvals_before: list[tuple[float, float, float]],
) -> None:
    """Before and after the [speed] patches, from the same rounds."""
    k = args.steps
    p50 = {name: pct(values, 0.5) for name, values in samples.items()}
    bare_0 = p50["bare 0 act."]
    bare_act = (p50[f"bare {2 * k} act."] - bare_0) / (2 * k)
    print("\n[speed] before -> after, same rounds (p50)")
    for label, suffix in (("before", " before"), ("after", "")):
        fixed = p50[f"Lucy k=0{suffix}"]
        step = (p50[f"Lucy k={k}{suffix}"] - fixed) / k
        print(
            f"  {label:<7} fixed cost {fixed:7.1f} ms = {fixed / bare_0:5.2f}x an empty workflow; "
            f"per tool step {step:6.1f} ms = {step / (2 * bare_act):5.2f}x two bare activities"
        )
    for label, values in (("before", approvals_before), ("after", approvals)):
        ran = [a[1] for a in values]
        shown = [a[2] for a in values]
        print(
            f"  {label:<7} approval click -> tool running p50 {pct(ran, 0.5):6.1f} ms "
            f"(p99 {pct(ran, 0.99):6.1f}); message updated p50 {pct(shown, 0.5):6.1f} ms; "
            f"update returned p50 {pct([a[0] for a in values], 0.5):6.1f} ms"
        )


if __name__ == "__main__":
    asyncio.run(main())
