"""Benchmark: Slack ack latency of Lucy's ingress against a plain Bolt app, same run, same load.

    .venv/bin/python bench/ingress_ack.py --count 2000 --concurrency 20

Lucy's ingress (``lucy ingress --http``) verifies the signature, resolves the tenant in
PostgreSQL, claims the task, checks limits and *durably starts a workflow* before answering.
The baseline is a plain Bolt app (AsyncApp + FastAPI adapter, signature check on, a listener
that does nothing). Both run as separate uvicorn processes and receive the same unique,
correctly signed ``app_mention`` events. Afterwards every event Lucy acknowledged must have
exactly one workflow, counted through Temporal's visibility API.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lucy import migrate  # noqa: E402
from lucy.contracts import SEARCH_ATTRIBUTES  # noqa: E402
from lucy.devservers import LocalPostgres, LocalTemporal, free_port  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402

SECRET = "bench-signing-secret"
PLAIN_BOLT = """
import os
from fastapi import FastAPI, Request
from slack_bolt.async_app import AsyncApp
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_sdk.web.async_client import AsyncWebClient

bolt = AsyncApp(
    client=AsyncWebClient(token=os.environ["BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
    signing_secret=os.environ["SIGNING_SECRET"],
)

@bolt.event("app_mention")
async def noop(ack):
    await ack()

handler = AsyncSlackRequestHandler(bolt)
app = FastAPI()

@app.post("/slack/events")
async def events(req: Request):
    return await handler.handle(req)
"""


def signed(body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    sig = hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={sig}",
    }


def event(team: str, i: int) -> bytes:
    ts = f"{1700000000 + i}.{i % 1000000:06d}"
    return json.dumps(
        {
            "team_id": team,
            "api_app_id": "A0BENCH",
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:12]}",
            "event_time": int(time.time()),
            "event": {
                "type": "app_mention",
                "user": f"U{i % 200:05d}",
                "text": f"<@UBOTLUCY> question {i}",
                "ts": ts,
                "channel": f"C{i % 20:04d}",
            },
        }
    ).encode()


async def wait_http(url: str, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient() as http:
        while True:
            try:
                await http.get(url, timeout=1)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def drive(url: str, bodies: list[bytes], concurrency: int) -> tuple[list[float], list[int], float]:
    latencies: list[float] = []
    statuses: list[int] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                r = await http.post(url, content=body, headers=signed(body))
                latencies.append((time.perf_counter() - started) * 1000)
                statuses.append(r.status_code)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, statuses, elapsed


def report(name: str, latencies: list[float], elapsed: float) -> tuple[float, float]:
    s = sorted(latencies)
    p50, p99 = statistics.median(s), s[min(len(s) - 1, int(len(s) * 0.99))]
    print(
        f"{name:<12} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  max {s[-1]:7.2f} ms  {len(s) / elapsed:8.1f} req/s"
    )
    return p50, p99


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lucy-ack-"))
    slack = FakeSlack()
    await slack.start()
    pg = LocalPostgres(tmp / "pg", port=free_port())
    temporal = LocalTemporal(
        tmp / "temporal.db",
        port=free_port(),
        ui_port=free_port(),
        namespace="default",
        search_attributes=[k.name for k in SEARCH_ATTRIBUTES],
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        pg.start()
        await asyncio.to_thread(migrate.upgrade, pg.url)
        temporal.start()
        await temporal.wait_ready()
        lucy_port, bolt_port = free_port(), free_port()
        env = dict(
            os.environ,
            LUCY_DATABASE_URL=pg.app_url,
            LUCY_TEMPORAL_ADDRESS=temporal.address,
            LUCY_SLACK_API_URL=slack.api_url,
            LUCY_SLACK_BOT_TOKEN=slack.token,
            LUCY_SLACK_SIGNING_SECRET=SECRET,
            LUCY_LOG_LEVEL="WARNING",
            LUCY_RATE_LIMIT_USER_PER_MINUTE="100000",
            LUCY_RATE_LIMIT_WORKSPACE_PER_MINUTE="1000000",
            BOT_TOKEN=slack.token,
            SLACK_API_URL=slack.api_url,
            SIGNING_SECRET=SECRET,
        )
        bolt_file = tmp / "plain_bolt.py"
        bolt_file.write_text(PLAIN_BOLT)
        bin_dir = Path(sys.executable).parent
        procs.append(
            subprocess.Popen(
                [str(bin_dir / "lucy"), "ingress", "--http", "--port", str(lucy_port)], env=env, cwd=tmp
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    str(bin_dir / "uvicorn"),
                    "plain_bolt:app",
                    "--port",
                    str(bolt_port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                env=env,
                cwd=tmp,
            )
        )
        await wait_http(f"http://127.0.0.1:{lucy_port}/health")
        await wait_http(f"http://127.0.0.1:{bolt_port}/docs")
        print(
            f"machine: {os.cpu_count()} cores; {args.count} events per app, concurrency {args.concurrency}\n"
        )
        results = {}
        admin = await asyncpg.connect(pg.superuser_url_for(pg.database).replace("+asyncpg", ""))
        for name, port in (("plain Bolt", bolt_port), ("Lucy", lucy_port)):
            team = f"TBENCH{uuid.uuid4().hex[:6].upper()}"
            for t in (team, team + "W"):  # a plan whose monthly quota the run cannot exhaust
                ws = await admin.fetchval("SELECT lucy_resolve_workspace($1)", t)
                await admin.execute("UPDATE workspaces SET max_monthly_actions = 10000000 WHERE id = $1", ws)
            url = f"http://127.0.0.1:{port}/slack/events"
            await drive(url, [event(team + "W", i) for i in range(args.warmup)], args.concurrency)
            latencies, statuses, elapsed = await drive(
                url, [event(team, i) for i in range(args.count)], args.concurrency
            )
            ok = sum(1 for s in statuses if s == 200)
            results[name] = (report(name, latencies, elapsed), ok, team)
        await admin.close()
        (bolt_p50, bolt_p99), _, _ = results["plain Bolt"]
        (lucy_p50, lucy_p99), lucy_ok, lucy_team = results["Lucy"]
        print(
            f"\nLucy / plain Bolt: p50 {lucy_p50 / bolt_p50:.2f}x, p99 {lucy_p99 / bolt_p99:.2f}x (aim: p99 <= 1.5x)"
        )
        from temporalio.client import Client

        client = await Client.connect(temporal.address)
        await asyncio.sleep(2)  # visibility is eventually consistent
        count = (await client.count_workflows(f"LucyWorkspace = '{lucy_team}'")).count
        listed = len({w.id async for w in client.list_workflows(f"LucyWorkspace = '{lucy_team}'")})
        print(f"visibility: count_workflows {count}, distinct ids listed {listed}")
        print(
            f"Lucy acknowledged {lucy_ok}/{args.count} events; workflows in Temporal: {count}; "
            f"{'exactly one per event, none lost' if count == lucy_ok == args.count else 'MISMATCH'}"
        )
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        temporal.stop()
        pg.stop()
        await slack.stop()


if __name__ == "__main__":
    asyncio.run(main())
