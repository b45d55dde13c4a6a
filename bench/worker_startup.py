"""Benchmark: worker start-up with the SDKs imported lazily (as shipped) against eagerly.

    .venv/bin/python bench/worker_startup.py            # 5 interleaved runs of each
    .venv/bin/python bench/worker_startup.py --runs 9

Starts an embedded PostgreSQL (migrated) and a Temporal dev server, then times ``python -m
app.cli worker`` from process start to its "worker started" log line, with Composio and
AgentMail configured. The baseline, in the same run, is the same command with
``composio_client`` and the AgentMail client imported first (what an eager import would cost);
prints the medians and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from app.devservers import LocalPostgres, free_port, temporal_cli_path
from lucy import migrate
from lucy.contracts.ids import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
LAZY = "from app.cli import main; main(['worker'])"
EAGER = "import composio_client, agentmail.inboxes.messages.client; " + LAZY


async def _once(code: str, database_url: str, address: str, cwd: str) -> float:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "LUCY_ENV": "test",
        "LUCY_DATABASE_URL": database_url,
        "LUCY_TEMPORAL_ADDRESS": address,
        "LUCY_TEMPORAL_TASK_QUEUE": "bench-startup",
        "LUCY_TEMPORAL_METRICS_PORT": "0",
        "LUCY_WORKER_METRICS_PORT": "0",
        "LUCY_COMPOSIO_API_KEY": "ak_bench",
        "LUCY_AGENTMAIL_API_KEY": "am_bench",
        "LUCY_AGENTMAIL_ENABLED": "true",
    }
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        while True:
            line = await asyncio.wait_for(process.stdout.readline(), 120)
            if not line:
                raise SystemExit("the worker ended before it started")
            if b"worker started" in line:
                return time.perf_counter() - started
    finally:
        process.terminate()
        await process.wait()


async def _run(runs: int, database_url: str, cwd: str) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_log_level="error",
    )
    address = env.client.service_client.config.target_host
    times: dict[str, list[float]] = {"lazy (shipped)": [], "eager (baseline)": []}
    try:
        for _ in range(runs):  # interleaved: the machine's load hits both alike
            times["lazy (shipped)"].append(await _once(LAZY, database_url, address, cwd))
            times["eager (baseline)"].append(await _once(EAGER, database_url, address, cwd))
    finally:
        await env.shutdown()
    for name, values in times.items():
        shown = " ".join(f"{v:.2f}" for v in values)
        print(f"{name:17} median {statistics.median(values):5.2f} s   runs {shown}")
    ratio = statistics.median(times["lazy (shipped)"]) / statistics.median(times["eager (baseline)"])
    print(f"lazy / eager: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cwd = tempfile.mkdtemp(prefix="lucy-bench-")
    pg = LocalPostgres(Path(cwd) / "pg", port=free_port())
    pg.start()
    try:
        migrate.upgrade(pg.url)
        asyncio.run(_run(args.runs, pg.app_url, cwd))
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
