"""Benchmark: what one Lucy task costs, by kind: Temporal events and billable actions, database
round trips, Slack calls, LLM calls and prompt sizes, history bytes; and the rows it leaves.

    .venv/bin/python bench/task_costs.py                 # every kind, 3 runs each, size phase 20/kind
    .venv/bin/python bench/task_costs.py --quick         # one chat task, no size phase
    .venv/bin/python bench/task_costs.py --runs 5 --size-tasks 50 --json /tmp/costs.json

One embedded PostgreSQL, one Temporal dev server (SQLite file), Lucy's real worker
(``app.worker.lucy_worker``) and the real ingress app (FastAPI + Bolt, over ASGI) in this
process, each with its own SQLAlchemy engine, and the fakes (Slack, LLM, OpenClaw gateway) as
real HTTP servers. Every task enters as Slack sends it: a signed ``app_mention``, a signed click
on the approval's button, a signed ``/lucy schedule`` and its Create click; a scheduled run is
the Temporal Schedule's ``trigger``. Tasks run one at a time, so every count between two
snapshots belongs to that task.

What is counted, per task:

* **history**: events, workflow tasks, bytes (the ``History`` protobuf), activities by type
  with the time each ran (started -> completed, against the local fakes).
* **billable actions** (Temporal Cloud's definition, https://docs.temporal.io/cloud/actions,
  read 2026-12-07): workflow started 1; each activity start or retry 1 (the started event's
  ``attempt``); timer started 1; search attribute upsert 1; signal 1; update accepted 1;
  child workflow 2; a workflow task's local-activity markers 1; a schedule's fire 2 more than
  the start. Patch markers are not counted (versioning markers, like ``TemporalChangeVersion``,
  which that page exempts). Not in a history, so not counted here: queries (the bench sends
  none), rejected updates (none) and activity heartbeats (the first of an activity reaches
  Temporal at once, then one per 2 s at most: docs/capacity.md derives them from durations).
* **database**: on the worker's engine and on the ingress's, separately: statements
  (SQLAlchemy ``before_cursor_execute``), transactions (``begin``) and pool checkouts; a round
  trip is a statement, a BEGIN, a COMMIT/ROLLBACK, or a checkout's pre-ping (one ``;``).
* **Slack**: Web API calls by method (the fake's request log; worker and ingress together).
* **LLM**: chat-completion calls (classification and agent), the prompt Lucy built (characters
  of messages + tool schemas; tokens estimated as the budget guard estimates them,
  ``estimate_prompt_tokens``: 4 characters each).

The size phase runs ``--size-tasks`` more tasks of each kind (4 at a time) and divides the
growth of ``pg_total_relation_size`` (tables, their partitions, indexes and TOAST) by the count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import event, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402
from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.api.history.v1 import History  # noqa: E402
from temporalio.client import Client  # noqa: E402

from app.devservers import LocalPostgres, free_port  # noqa: E402
from bench.servers import scratch_temporal  # noqa: E402
from capabilities.budgets.rules import estimate_prompt_tokens  # noqa: E402
from lucy import migrate  # noqa: E402
from lucy.contracts.ids import task_workflow_id  # noqa: E402
from lucy.db.session import create_engine  # noqa: E402
from lucy.logging import configure_logging  # noqa: E402
from lucy.settings import Settings  # noqa: E402
from tests.conftest import Lucy, eventually, fake_settings, mention_event, running_lucy  # noqa: E402
from tests.fakes.camofox import FakeCamoFox  # noqa: E402
from tests.fakes.gateway import FakeGateway  # noqa: E402
from tests.fakes.llm import FakeLlm  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.proactive.helpers import click_ephemeral  # noqa: E402

KINDS = ("chat", "web_fetch", "exec_approval", "schedule_create", "scheduled_run")
APPROVER = "UADMIN1"
APPROVER_READS_S = 1.0  # the fake Slack's convention: UADMIN… are workspace admins
PAGE = "https://example.com/article"
EV = EventType
PING_ROUND_TRIPS = 1  # lucy.db.session: ";" (behind PgBouncer SQLAlchemy's 3: BEGIN, ";", ROLLBACK)


# --------------------------------------------------------------------------- counters


@dataclass
class DbCounter:
    """Round trips on one engine, from SQLAlchemy's events: statements (``before_cursor_execute``),
    transactions (``begin``; asyncpg sends BEGIN with the first statement) and their COMMIT or
    ROLLBACK, and pool checkouts (``pool_pre_ping``: one empty statement, lucy.db.session)."""

    statements: int = 0
    begins: int = 0
    ends: int = 0
    checkouts: int = 0

    def attach(self, engine: AsyncEngine) -> None:
        def bump(name: str) -> Callable[..., None]:
            def on_event(*_: Any) -> None:
                setattr(self, name, getattr(self, name) + 1)

            return on_event

        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", bump("statements"))
        event.listen(sync, "begin", bump("begins"))
        event.listen(sync, "commit", bump("ends"))
        event.listen(sync, "rollback", bump("ends"))
        event.listen(sync.pool, "checkout", bump("checkouts"))

    def snapshot(self) -> tuple[int, int, int, int]:
        return self.statements, self.begins, self.ends, self.checkouts


@dataclass
class Rig:
    """A running Lucy (worker + ingress, each its own engine) and the fakes it talks to."""

    lucy: Lucy
    slack: FakeSlack
    llm: FakeLlm
    gateway: FakeGateway
    worker_db: DbCounter
    ingress_db: DbCounter
    team: str = field(default_factory=lambda: f"TCOST{uuid.uuid4().hex[:8].upper()}")
    seq: int = 0
    schedule: tuple[str, str] | None = None  # (row id, Temporal schedule id) of the last one made
    runs_seen: set[str] = field(default_factory=set)
    last_fire: float = 0.0  # time.monotonic() of the last trigger

    def marker(self) -> str:
        self.seq += 1
        return f"cost{self.seq}x{uuid.uuid4().hex[:6]}"

    def snapshot(self) -> dict[str, Any]:
        return {
            "worker": self.worker_db.snapshot(),
            "ingress": self.ingress_db.snapshot(),
            "slack": len(self.slack.calls),
            "llm": len(self.llm.requests),
        }


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    client: Client,
    *,
    worker_engine: AsyncEngine,
    ingress_engine: AsyncEngine,
    admin_engine: AsyncEngine,
    slack: FakeSlack,
    llm: FakeLlm,
    gateway: FakeGateway,
) -> AsyncIterator[Rig]:
    """Lucy's worker and ingress on ``settings``, their statements counted per engine."""
    worker_db, ingress_db = DbCounter(), DbCounter()
    worker_db.attach(worker_engine)
    ingress_db.attach(ingress_engine)
    gateway.pages[PAGE] = ("An article", "The article says the release ships on Thursday. " * 20)
    async with running_lucy(
        settings, client, worker_engine, admin_engine, ingress_engine=ingress_engine
    ) as lucy:
        yield Rig(
            lucy=lucy, slack=slack, llm=llm, gateway=gateway, worker_db=worker_db, ingress_db=ingress_db
        )


# --------------------------------------------------------------------------- the task kinds


async def _mention(rig: Rig, text: str, channel: str) -> str:
    payload = mention_event(team=rig.team, user="U0ALICE", channel=channel, text=text)
    response = await rig.lucy.post_event(payload)
    if response.status_code != 200:
        raise RuntimeError(f"ingress answered {response.status_code}: {response.text[:200]}")
    ev = payload["event"]
    return task_workflow_id(rig.team, channel, ev["ts"])


async def _finished(rig: Rig, workflow_id: str) -> None:
    result = await asyncio.wait_for(rig.lucy.client.get_workflow_handle(workflow_id).result(), 60)
    status = result["status"] if isinstance(result, dict) else result.status
    if status != "completed":
        raise RuntimeError(f"{workflow_id} ended {status}")


async def chat(rig: Rig) -> list[str]:
    """A plain answer: classification, one model call, the answer posted."""
    marker = rig.marker()
    rig.llm.then(content="Here is a short, plain answer.", user_contains=marker)
    workflow_id = await _mention(rig, f"{marker} what is a good name for a cat?", f"CC{marker.upper()}")
    await _finished(rig, workflow_id)
    return [workflow_id]


async def web_fetch(rig: Rig) -> list[str]:
    """One low-risk tool step: the model fetches a page (no approval), then answers."""
    marker = rig.marker()
    rig.llm.then(tool_calls=[("web_fetch", json.dumps({"url": PAGE}))], user_contains=marker)
    rig.llm.then(content="The release ships on Thursday.", user_contains=marker)
    workflow_id = await _mention(rig, f"{marker} when does the release ship? {PAGE}", f"CF{marker.upper()}")
    await _finished(rig, workflow_id)
    return [workflow_id]


async def exec_approval(rig: Rig) -> list[str]:
    """A high-risk exec: the approval is posted, an admin clicks Approve (signed, through
    ingress), the command runs on the gateway, the model answers."""
    marker = rig.marker()
    channel = f"CA{marker.upper()}"
    rig.llm.then(
        tool_calls=[("exec", json.dumps({"command": f"ls -la /srv/{marker}"}))], user_contains=marker
    )
    rig.llm.then(content="The folder holds 3 files.", user_contains=marker)
    workflow_id = await _mention(rig, f"{marker} what is in /srv on the box?", channel)
    approval = await eventually(lambda: rig.slack.with_actions(channel, "lucy_approve"), "the approval", 60)
    # A person reads before clicking: the workflow is waiting by then, with its expiry timer
    # (a click that beats the wait finds the decision already made and starts no timer).
    await asyncio.sleep(APPROVER_READS_S)
    response = await rig.lucy.click(approval, "lucy_approve", team=rig.team, user=APPROVER, channel=channel)
    if response.status_code != 200:
        raise RuntimeError(f"the click was answered {response.status_code}")
    await _finished(rig, workflow_id)
    return [workflow_id]


async def schedule_create(rig: Rig) -> list[str]:
    """``/lucy schedule "every weekday at 9:00" …`` and its Create click: once per schedule."""
    channel = f"CS{rig.marker().upper()}"
    response = await rig.lucy.command(
        'schedule "every weekday at 9:00" summarise the news', team=rig.team, channel=channel
    )
    if response.status_code != 200:
        raise RuntimeError(f"/lucy schedule was answered {response.status_code}")
    answer = await click_ephemeral(
        rig.lucy,
        rig.slack,
        response.json()["blocks"],
        "lucy_schedule_create",
        team=rig.team,
        user="U0ALICE",
        channel=channel,
    )
    if "Scheduled" not in answer.get("text", ""):
        raise RuntimeError(f"the schedule was not created: {answer.get('text')}")
    rig.schedule = await _schedule_of(rig, channel)
    return []


async def _schedule_of(rig: Rig, channel: str) -> tuple[str, str]:
    async with rig.lucy.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT s.id, s.temporal_schedule_id FROM schedules s JOIN workspaces w "
                    "ON w.id = s.workspace_id WHERE w.slack_team_id = :team AND s.channel_id IN "
                    "(SELECT id FROM channels WHERE slack_channel_id = :channel) AND s.deleted_at IS NULL"
                ),
                {"team": rig.team, "channel": channel},
            )
        ).one()
    return str(row.id), str(row.temporal_schedule_id)


async def scheduled_run(rig: Rig) -> list[str]:
    """One fire of a schedule (``trigger``): the root message, the task, its answer."""
    if rig.schedule is None:
        await schedule_create(rig)
    assert rig.schedule is not None
    row_id, schedule_id = rig.schedule
    marker = rig.marker()
    rig.llm.then(content=f"Here is the news summary {marker}.", user_contains="summarise the news")
    handle = rig.lucy.client.get_schedule_handle(schedule_id)

    async def idle() -> bool:  # a fire while the last run is open is skipped (overlap: skip)
        return not (await handle.describe()).info.running_actions

    await eventually(idle, "the last scheduled run to close", 60)
    # A run's id ends with its fire time to the second: two fires in one second are one run.
    await asyncio.sleep(max(0.0, rig.last_fire + 1.1 - time.monotonic()))
    rig.last_fire = time.monotonic()
    await handle.trigger()
    seen = set(rig.runs_seen)

    async def new_run() -> str | None:
        async with rig.lucy.engine.connect() as conn:
            ids = (
                await conn.execute(
                    text("SELECT workflow_id FROM tasks WHERE workflow_id LIKE :p"),
                    {"p": f"lucy-task-{rig.team}-%-sched-{row_id}-%"},
                )
            ).scalars()
            fresh = [i for i in ids if i not in seen]
        return fresh[0] if fresh else None

    workflow_id = await eventually(new_run, "the scheduled run's task", 60)
    rig.runs_seen.add(workflow_id)
    await _finished(rig, workflow_id)
    return [workflow_id]


DRIVERS: dict[str, Callable[[Rig], Awaitable[list[str]]]] = {
    "chat": chat,
    "web_fetch": web_fetch,
    "exec_approval": exec_approval,
    "schedule_create": schedule_create,
    "scheduled_run": scheduled_run,
}


# --------------------------------------------------------------------------- one measurement


@dataclass
class Cost:
    """What one task of a kind cost (one run)."""

    kind: str
    events: int = 0
    workflow_tasks: int = 0
    history_bytes: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    activities: dict[str, int] = field(default_factory=dict)
    activity_ms: dict[str, float] = field(default_factory=dict)  # mean run time per type
    workflow_task_ms: float = 0.0  # sum of the workflow tasks' run times (worker CPU, mostly)
    db: dict[str, int] = field(default_factory=dict)
    slack: dict[str, int] = field(default_factory=dict)
    llm: dict[str, int] = field(default_factory=dict)
    wall_ms: float = 0.0

    @property
    def billable(self) -> int:
        return sum(self.actions.values())


def _ms(e: Any) -> float:
    return float(e.event_time.ToMicroseconds()) / 1000


def _activity_cost(e: Any, by_id: dict[int, Any], cost: Cost, runs: dict[str, list[float]]) -> None:
    if e.event_type == EV.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        attempts = max(1, e.activity_task_started_event_attributes.attempt)
        cost.actions["activity"] = cost.actions.get("activity", 0) + attempts
    elif e.event_type == EV.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        a = e.activity_task_completed_event_attributes
        name = by_id[a.scheduled_event_id].activity_task_scheduled_event_attributes.activity_type.name
        cost.activities[name] = cost.activities.get(name, 0) + 1
        runs.setdefault(name, []).append(_ms(e) - _ms(by_id[a.started_event_id]))


ACTION_EVENTS = {
    EV.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: ("workflow start", 1),
    EV.EVENT_TYPE_TIMER_STARTED: ("timer", 1),
    EV.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: ("search attribute upsert", 1),
    EV.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: ("signal", 1),
    EV.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: ("signal", 1),
    EV.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: ("update", 1),
    EV.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED: ("child workflow", 2),
}


def add_history(cost: Cost, events: list[Any]) -> None:
    """Add one workflow run's history to ``cost``: events, bytes, actions, activities."""
    by_id = {e.event_id: e for e in events}
    runs: dict[str, list[float]] = {}
    local_markers: set[int] = set()  # workflow tasks that recorded local-activity markers
    cost.events += len(events)
    cost.history_bytes += History(events=events).ByteSize()
    for e in events:
        if e.event_type in ACTION_EVENTS:
            name, n = ACTION_EVENTS[e.event_type]
            cost.actions[name] = cost.actions.get(name, 0) + n
        elif e.event_type == EV.EVENT_TYPE_MARKER_RECORDED:
            a = e.marker_recorded_event_attributes
            if "local_activity" in a.marker_name:
                local_markers.add(a.workflow_task_completed_event_id)
        elif e.event_type == EV.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            a = e.workflow_task_completed_event_attributes
            cost.workflow_tasks += 1
            cost.workflow_task_ms += _ms(e) - _ms(by_id[a.started_event_id])
        _activity_cost(e, by_id, cost, runs)
    if local_markers:
        cost.actions["local activities"] = cost.actions.get("local activities", 0) + len(local_markers)
    for name, values in runs.items():
        cost.activity_ms[name] = statistics.fmean(values)


def add_llm(cost: Cost, requests: list[dict[str, Any]]) -> None:
    """The model calls Lucy made: how many, the prompt it built (messages + tool schemas)."""
    cost.llm["prompt tokens (est.)"] = 0
    for body in requests:
        classify = (body.get("response_format") or {}).get("type") == "json_object"
        key = "classify" if classify else "agent"
        messages = json.dumps(body.get("messages") or [], ensure_ascii=False)
        tools = json.dumps(body.get("tools") or [], ensure_ascii=False)
        for name, value in (
            (f"{key} calls", 1),
            (f"{key} prompt chars", len(messages) + len(tools)),
            (f"{key} tool schema chars", len(tools)),
            (f"{key} max_tokens", int(body.get("max_tokens") or body.get("max_completion_tokens") or 0)),
            ("prompt tokens (est.)", estimate_prompt_tokens([messages, tools])),  # as the budget guard
        ):
            cost.llm[name] = cost.llm.get(name, 0) + value


async def measure(rig: Rig, kind: str) -> Cost:
    """Run one task of ``kind`` alone and count what it cost."""
    before = rig.snapshot()
    started = time.perf_counter()
    workflow_ids = await DRIVERS[kind](rig)
    wall = (time.perf_counter() - started) * 1000
    await asyncio.sleep(0.3)  # anything the last answer set off (none expected) lands before the count
    after = rig.snapshot()
    cost = Cost(kind=kind, wall_ms=wall)
    for workflow_id in workflow_ids:
        history = await rig.lucy.client.get_workflow_handle(workflow_id).fetch_history()
        add_history(cost, list(history.events))
    if kind == "scheduled_run":
        cost.actions["schedule fire"] = 2  # https://docs.temporal.io/cloud/actions#schedules: 3 per fire
    for side in ("worker", "ingress"):
        statements, begins, ends, checkouts = (a - b for a, b in zip(after[side], before[side], strict=True))
        cost.db[f"{side} statements"] = statements
        cost.db[f"{side} transactions"] = begins
        cost.db[f"{side} checkouts"] = checkouts
        cost.db[f"{side} round trips"] = statements + begins + ends + PING_ROUND_TRIPS * checkouts
    cost.slack = dict(Counter(c.method for c in rig.slack.calls[before["slack"] : after["slack"]]))
    add_llm(cost, rig.llm.requests[before["llm"] : after["llm"]])
    return cost


# --------------------------------------------------------------------------- rows left behind

SIZES = text(
    "SELECT coalesce(parent.relname, c.relname) AS name, sum(pg_total_relation_size(c.oid)) AS bytes "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class parent ON parent.oid = i.inhparent "
    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm') GROUP BY 1"
)


async def table_sizes(admin: AsyncEngine) -> dict[str, int]:
    """Bytes per table (its partitions, indexes and TOAST included)."""
    async with admin.connect() as conn:
        return {str(r.name): int(r.bytes) for r in await conn.execute(SIZES)}


async def size_phase(rig: Rig, per_kind: int, concurrency: int = 4) -> tuple[int, dict[str, int]]:
    """``per_kind`` more tasks of each kind that leaves rows (a scheduled run one at a time:
    a fire while the last run is open is skipped); the store's growth: (tasks, bytes by table)."""
    before = await table_sizes(rig.lucy.engine)
    done = 0
    for kind in ("chat", "web_fetch", "exec_approval"):
        for start in range(0, per_kind, concurrency):
            batch = min(concurrency, per_kind - start)
            await asyncio.gather(*(DRIVERS[kind](rig) for _ in range(batch)))
            done += batch
    for _ in range(per_kind):
        await scheduled_run(rig)
        done += 1
    after = await table_sizes(rig.lucy.engine)
    grown = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    return done, grown


# --------------------------------------------------------------------------- report


def median_cost(runs: list[Cost]) -> dict[str, Any]:
    """The median of every figure over the runs of one kind."""

    def med(get: Callable[[Cost], dict[str, Any]]) -> dict[str, float]:
        keys = sorted({k for r in runs for k in get(r)})
        return {k: statistics.median([get(r).get(k, 0) for r in runs]) for k in keys}

    return {
        "runs": len(runs),
        "events": statistics.median(r.events for r in runs),
        "workflow_tasks": statistics.median(r.workflow_tasks for r in runs),
        "workflow_task_ms": statistics.median(r.workflow_task_ms for r in runs),
        "history_bytes": statistics.median(r.history_bytes for r in runs),
        "billable_actions": statistics.median(r.billable for r in runs),
        "actions": med(lambda r: r.actions),
        "activities": med(lambda r: r.activities),
        "activity_ms": med(lambda r: r.activity_ms),
        "db": med(lambda r: r.db),
        "slack_calls": statistics.median(sum(r.slack.values()) for r in runs),
        "slack": med(lambda r: r.slack),
        "llm": med(lambda r: r.llm),
        "wall_ms": statistics.median(r.wall_ms for r in runs),
    }


def _pairs(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in d.items()) or "none"


def report(figures: dict[str, dict[str, Any]], sizes: tuple[int, dict[str, int]] | None) -> str:
    lines = ["per task (median of the runs)", ""]
    head = f"{'kind':<16} {'runs':>4} {'events':>6} {'WFTs':>5} {'actions':>7} {'hist B':>7} "
    head += f"{'db rt W':>7} {'db rt I':>7} {'slack':>5} {'llm':>4} {'prompt tok':>10}"
    lines.append(head)
    for kind, f in figures.items():
        llm_calls = f["llm"].get("classify calls", 0) + f["llm"].get("agent calls", 0)
        lines.append(
            f"{kind:<16} {f['runs']:>4} {f['events']:>6g} {f['workflow_tasks']:>5g} "
            f"{f['billable_actions']:>7g} {f['history_bytes']:>7g} {f['db'].get('worker round trips', 0):>7g} "
            f"{f['db'].get('ingress round trips', 0):>7g} {f['slack_calls']:>5g} {llm_calls:>4g} "
            f"{f['llm'].get('prompt tokens (est.)', 0):>10g}"
        )
    for kind, f in figures.items():
        lines += [
            "",
            f"{kind}: wall {f['wall_ms']:.0f} ms; workflow tasks ran {f['workflow_task_ms']:.1f} ms in all",
            f"  actions: {_pairs(f['actions'])}",
            f"  activities: {_pairs(f['activities'])}",
            "  activity run ms: " + ", ".join(f"{k} {v:.1f}" for k, v in f["activity_ms"].items()),
            f"  db: {_pairs(f['db'])}",
            f"  slack: {_pairs(f['slack'])}",
            f"  llm: {_pairs(f['llm'])}",
        ]
    if sizes is not None:
        tasks, grown = sizes
        total = sum(grown.values())
        lines += ["", f"store growth over {tasks} tasks (a quarter of each kind that leaves rows):"]
        lines += [
            f"  {name:<28} {b / tasks:>9.0f} B/task"
            for name, b in sorted(grown.items(), key=lambda kv: -kv[1])
        ]
        lines.append(f"  {'all tables':<28} {total / tasks:>9.0f} B/task")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


async def collect(
    rig: Rig, kinds: tuple[str, ...], runs: int, warmup: bool = True
) -> dict[str, dict[str, Any]]:
    """``runs`` measured tasks of each kind (after one untimed task of each: first-time rows)."""
    if warmup:
        for kind in kinds:
            await DRIVERS[kind](rig)
    results: dict[str, list[Cost]] = {kind: [] for kind in kinds}
    for _ in range(runs):  # kinds interleaved, round by round
        for kind in kinds:
            results[kind].append(await measure(rig, kind))
    return {kind: median_cost(costs) for kind, costs in results.items()}


@contextlib.asynccontextmanager
async def local_servers(tmp: Path) -> AsyncIterator[tuple[LocalPostgres, Client]]:
    pg = LocalPostgres(tmp / "pg", port=free_port())
    temporal = scratch_temporal(tmp / "temporal.db")
    try:
        pg.start()
        await asyncio.to_thread(migrate.upgrade, pg.url)
        temporal.start()
        await temporal.wait_ready()
        yield pg, await Client.connect(temporal.address, namespace="default")
    finally:
        temporal.stop()
        pg.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="measured tasks of each kind")
    parser.add_argument("--size-tasks", type=int, default=20, help="tasks per kind for the store growth")
    parser.add_argument("--quick", action="store_true", help="one chat task, no size phase")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    configure_logging("WARNING", json_output=False)
    kinds = ("chat",) if args.quick else KINDS
    tmp = Path(tempfile.mkdtemp(prefix="lucy-costs-"))
    fakes = slack, llm, gateway, camofox = FakeSlack(), FakeLlm(), FakeGateway(), FakeCamoFox()
    try:
        for fake in fakes:
            await fake.start()
        async with local_servers(tmp) as (pg, client):
            settings = fake_settings(
                pg,
                slack,
                llm,
                gateway,
                camofox,
                slack_channel_min_interval=0.0,  # Slack's pacing is time, not cost
                rate_limit_user_per_minute=1e6,  # the bench sends more than a person would
                rate_limit_workspace_per_minute=1e6,
            )
            engines = [create_engine(settings.database) for _ in range(2)]
            admin = create_engine(settings.database, url=pg.superuser_url_for(pg.database))
            try:
                async with running(
                    settings,
                    client,
                    worker_engine=engines[0],
                    ingress_engine=engines[1],
                    admin_engine=admin,
                    slack=slack,
                    llm=llm,
                    gateway=gateway,
                ) as rig:
                    figures = await collect(rig, kinds, 1 if args.quick else args.runs)
                    sizes = None if args.quick else await size_phase(rig, args.size_tasks)
            finally:
                for engine in (*engines, admin):
                    await engine.dispose()
        print(report(figures, sizes))
        if args.json:
            out = {
                "figures": figures,
                "sizes": None if sizes is None else {"tasks": sizes[0], "bytes": sizes[1]},
            }
            args.json.write_text(json.dumps(out, indent=1) + "\n")
    finally:
        for fake in fakes:
            await fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
