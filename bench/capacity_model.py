"""The capacity model of docs/capacity.md: 10,000 users and 100,000 tasks a day, sized from the
per-task costs that ``bench/task_costs.py`` measured.

    .venv/bin/python bench/task_costs.py --json /tmp/costs1.json     # three times: 1, 2, 3
    .venv/bin/python bench/capacity_model.py /tmp/costs1.json /tmp/costs2.json /tmp/costs3.json

Every per-task figure is the median over the files given (each file already holds the median
of its runs). The assumptions are the constants below, each named in docs/capacity.md; change
one with a flag and the whole model follows.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

MIX = {"chat": 0.55, "web_fetch": 0.30, "exec_approval": 0.05, "scheduled_run": 0.10}
BUSINESS_SHARE, BUSINESS_HOURS, PEAK_OVER_BUSINESS = 0.8, 8, 2.0
HEARTBEAT_THROTTLE_S = 2.0  # app/worker.py HEARTBEAT_THROTTLE: at most one heartbeat per 2 s reaches Temporal
SLOTS_PER_WORKER = 100  # temporalio's default max_concurrent_activities / _workflow_tasks
# https://docs.temporal.io/cloud/pricing#payg-action-pricing (read 2026-12-07): $ per million, by tier
PRICE_TIERS = [(5e6, 50.0), (5e6, 45.0), (10e6, 40.0), (30e6, 35.0), (50e6, 30.0), (100e6, 25.0)]
RETAINED_GBH_USD = 0.00105  # the same page, retained storage per GBh
SLACK_TIER_PER_MIN = {  # the documented minimum per method, per app, per workspace
    "chat.postMessage": 60,  # special tier: about 1 per second per channel, plus a workspace limit
    "chat.update": 50,  # Tier 3
    "chat.startStream": 20,  # Tier 2 (assumed as chat.stopStream's; see docs/capacity.md)
    "chat.stopStream": 20,  # Tier 2
    "chat.appendStream": 100,  # Tier 4
    "users.info": 100,  # Tier 4
}
ROLES = {
    "workflow tasks": None,
    "LLM activities": ("llm.chat",),
    "tool activities": ("tools.gateway",),
    "Slack I/O": ("slack.post_message", "slack.update_message", "approvals.request", "identity.verify"),
    "store activities": (
        "records.task_running",
        "records.task_finished",
        "records.steps",
        "context.prepare",
        "approvals.settle",
        "schedules.claim_run",
        "schedules.run_finished",
    ),
}


def load(paths: list[Path]) -> tuple[dict[str, dict[str, Any]], float]:
    """Per kind, the median over the files of every figure; and the store's bytes per task
    (channels left out: the bench gives every task a new channel, people reuse theirs)."""
    files = [json.loads(p.read_text()) for p in paths]
    kinds: dict[str, dict[str, Any]] = {}
    for kind in MIX:
        runs = [f["figures"][kind] for f in files]
        kinds[kind] = _median_tree(runs)
    per_task = [
        sum(b for name, b in f["sizes"]["bytes"].items() if name != "channels") / f["sizes"]["tasks"]
        for f in files
        if f.get("sizes")
    ]
    return kinds, statistics.median(per_task) if per_task else 0.0


def _median_tree(runs: list[Any]) -> Any:
    if isinstance(runs[0], dict):
        keys = {k for r in runs for k in r}
        return {k: _median_tree([r.get(k, 0) for r in runs]) for k in keys}
    return statistics.median(runs)


def mixed(kinds: dict[str, dict[str, Any]], get: Any) -> float:
    """The mix's weighted mean of ``get(kind figures)``."""
    return sum(share * float(get(kinds[kind])) for kind, share in MIX.items())


def llm_calls(kinds: dict[str, dict[str, Any]]) -> tuple[float, float]:
    """The mix's classification and answer calls per task."""
    return tuple(mixed(kinds, lambda k, n=n: k["llm"].get(f"{n} calls", 0)) for n in ("classify", "agent"))  # type: ignore[return-value]


def heartbeats(seconds: float) -> int:
    """Heartbeats that reach Temporal from one activity of ``seconds``: Lucy beats at once and
    then every 1-2 s (``liveness.beating``, ``llm._heartbeat``); the SDK sends the first at once
    and at most one per throttle interval after it, min(0.8 x heartbeat timeout, 2 s) = 2 s."""
    return 1 + math.floor(seconds / HEARTBEAT_THROTTLE_S)


def price(actions: float) -> float:
    left, total = actions, 0.0
    for size, usd in PRICE_TIERS:
        take = min(left, size)
        total += take / 1e6 * usd
        left -= take
    return total + left / 1e6 * PRICE_TIERS[-1][1]


def model(kinds: dict[str, dict[str, Any]], store_bytes: float, args: argparse.Namespace) -> list[str]:
    per_day = args.tasks_per_day
    peak = per_day * BUSINESS_SHARE / BUSINESS_HOURS / 3600 * PEAK_OVER_BUSINESS
    mean = per_day / 86400
    out = [
        f"peak {peak:.2f} tasks/s = {peak / mean:.1f}x the 24-hour mean {mean:.2f}/s ({per_day:,} tasks/day)"
    ]
    act = mixed(kinds, lambda k: k["billable_actions"])
    classify, agent = llm_calls(kinds)
    tools = mixed(kinds, lambda k: k["activities"].get("tools.gateway", 0))
    beats = classify * heartbeats(args.classify_seconds) + agent * heartbeats(args.llm_seconds)
    beats += tools * heartbeats(args.tool_seconds)
    events = mixed(kinds, lambda k: k["events"])
    hist = mixed(kinds, lambda k: k["history_bytes"])
    out += [
        f"per task (mix): {events:.1f} history events, {act:.2f} billable actions in the history "
        f"+ {beats:.2f} heartbeat actions (classification {args.classify_seconds:g} s, answer "
        f"{args.llm_seconds:g} s, tool {args.tool_seconds:g} s), "
        f"{hist / 1024:.1f} KiB of history",
        f"Temporal at peak: {peak * (act + beats):.0f} actions/s, {peak * events:.0f} history events/s; "
        f"per shard of 512: {peak * events / 512:.2f} events/s",
    ]
    monthly = per_day * 30 * (act + beats)
    cost = price(max(0.0, monthly - args.included_actions))
    storage = per_day * hist / 1e9 * args.retention_days * 744  # GB held x hours in a month
    plan = max(args.plan_minimum, args.plan_share * (cost + storage * RETAINED_GBH_USD))
    out.append(
        f"Temporal Cloud: {monthly / 1e6:.1f} M actions/month -> ${cost:,.0f} actions + "
        f"${storage * RETAINED_GBH_USD:,.0f} retained storage ({args.retention_days} days) + ${plan:,.0f} plan "
        f"= ${cost + storage * RETAINED_GBH_USD + plan:,.0f}/month"
    )
    out += _workers(kinds, peak, args)
    out += _store(kinds, store_bytes, peak, per_day)
    out += _slack(kinds, peak, args.workspaces)
    return out


def _workers(kinds: dict[str, dict[str, Any]], peak: float, args: argparse.Namespace) -> list[str]:
    out = ["workers at peak (Little's law: slots busy = rate x time held):"]
    wft_s = mixed(kinds, lambda k: k["workflow_task_ms"]) / 1000
    out.append(
        f"  workflow tasks: {mixed(kinds, lambda k: k['workflow_tasks']):.1f} per task, {wft_s * 1000:.0f} ms "
        f"held per task -> {peak * wft_s:.1f} slots (CPU-bound: about that many cores)"
    )
    classify, agent = llm_calls(kinds)
    seconds = {  # mean seconds one activity of the role is held
        "LLM activities": (classify * args.classify_seconds + agent * args.llm_seconds) / (classify + agent),
        "tool activities": args.tool_seconds,
        "Slack I/O": args.slack_seconds,
    }
    for role, names in ROLES.items():
        if names is None:
            continue
        count = mixed(kinds, lambda k, n=names: sum(k["activities"].get(a, 0) for a in n))
        measured = mixed(
            kinds, lambda k, n=names: sum(k["activities"].get(a, 0) * k["activity_ms"].get(a, 0) for a in n)
        )
        held = seconds.get(role, measured / 1000 / max(count, 1e-9)) * count
        slots = peak * held
        out.append(
            f"  {role}: {count:.2f} per task, measured {measured / max(count, 1e-9):.0f} ms each against the "
            f"fakes; held {held:.2f} s per task -> {slots:.1f} slots = {math.ceil(slots / SLOTS_PER_WORKER)} "
            f"worker(s) of {SLOTS_PER_WORKER}"
        )
    return out


def _store(kinds: dict[str, dict[str, Any]], store_bytes: float, peak: float, per_day: int) -> list[str]:
    worker = mixed(kinds, lambda k: k["db"].get("worker round trips", 0))
    ingress = mixed(kinds, lambda k: k["db"].get("ingress round trips", 0))
    pings = mixed(kinds, lambda k: k["db"].get("worker checkouts", 0)) * 3
    return [
        f"Postgres: {worker:.1f} worker + {ingress:.1f} ingress round trips per task ({pings:.0f} of them "
        f"pool pre-ping) -> {peak * (worker + ingress):.0f} round trips/s at peak",
        f"  store growth {store_bytes / 1024:.1f} KiB/task -> {store_bytes * per_day / 1e9:.2f} GB/day, "
        f"{store_bytes * per_day * 30 / 1e9:.1f} GB per 30 days",
    ]


def _slack(kinds: dict[str, dict[str, Any]], peak: float, workspaces: int) -> list[str]:
    per_min = peak * 60 / workspaces
    out = [
        f"Slack per workspace at peak ({workspaces} workspace(s) sharing the load evenly, {per_min:.1f} tasks/min):"
    ]
    methods = sorted({m for k in kinds.values() for m in k["slack"]})
    for method in methods:
        calls = mixed(kinds, lambda k, m=method: k["slack"].get(m, 0))
        limit = SLACK_TIER_PER_MIN.get(method)
        note = f" (documented minimum {limit}/min: {calls * per_min / limit:.2f}x)" if limit else ""
        out.append(f"  {method}: {calls:.2f} per task -> {calls * per_min:.1f}/min{note}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "costs", type=Path, nargs="+", help="JSON files written by bench/task_costs.py --json"
    )
    parser.add_argument("--tasks-per-day", type=int, default=100_000)
    parser.add_argument("--llm-seconds", type=float, default=6.0, help="an answer's model call, as served")
    parser.add_argument("--classify-seconds", type=float, default=1.0, help="the classification call")
    parser.add_argument("--tool-seconds", type=float, default=2.0, help="a gateway tool call")
    parser.add_argument("--slack-seconds", type=float, default=0.3, help="a Slack Web API call")
    parser.add_argument("--workspaces", type=int, default=1)
    parser.add_argument("--retention-days", type=int, default=7)
    parser.add_argument("--included-actions", type=float, default=1e6, help="the plan's actions (Essentials)")
    parser.add_argument("--plan-minimum", type=float, default=100.0)
    parser.add_argument("--plan-share", type=float, default=0.05)
    args = parser.parse_args()
    kinds, store_bytes = load(args.costs)
    print("\n".join(model(kinds, store_bytes, args)))


if __name__ == "__main__":
    main()
