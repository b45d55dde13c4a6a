"""``lucy worker`` serves both Prometheus endpoints docs/operations.md names: the Temporal SDK's runtime
metrics on ``LUCY_TEMPORAL_METRICS_PORT`` and Lucy's own on ``LUCY_WORKER_METRICS_PORT``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from app.devservers import LocalPostgres, free_port
from lucy.contracts.ids import MAINTENANCE_SCHEDULE_ID
from tests.conftest import answers, eventually, non_loopback_address

ROOT = Path(__file__).resolve().parent.parent.parent


async def _scrape(port: int, needle: str) -> str | None:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.HTTPError:
        return None
    return text if needle in text else None


async def test_lucy_worker_serves_both_metrics_ports(
    tmp_path: Path, postgres: LocalPostgres, temporal_env: WorkflowEnvironment
):
    temporal_port, lucy_port = free_port(), free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "LUCY_ENV": "test",
        "LUCY_DATABASE_URL": postgres.app_url,
        "LUCY_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "LUCY_TEMPORAL_TASK_QUEUE": f"lucy-test-metrics-{uuid.uuid4().hex[:8]}",
        "LUCY_TEMPORAL_METRICS_PORT": str(temporal_port),
        "LUCY_WORKER_METRICS_PORT": str(lucy_port),
        # Tracing through the standard variables, printed: the CLI turns it on (lucy.tracing).
        "OTEL_TRACES_EXPORTER": "console",
    }
    spans = (tmp_path / "spans.out").open("w")
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "worker",
        cwd=tmp_path,
        env=env,
        stdout=spans,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # The worker runs the maintenance workflow at start: a workflow task was scheduled and
        # picked up, so the SDK has a schedule-to-start latency to report.
        sdk = await eventually(
            lambda: _scrape(temporal_port, "temporal_workflow_task_schedule_to_start_latency"),
            "the Temporal SDK's metrics on LUCY_TEMPORAL_METRICS_PORT",
            timeout=60,
        )
        assert "temporal_worker_task_slots_available" in sdk or "temporal_num_pollers" in sdk
        own = await eventually(
            lambda: _scrape(lucy_port, "lucy_llm_request_seconds"),
            "Lucy's metrics on LUCY_WORKER_METRICS_PORT",
            timeout=30,
        )
        assert "# TYPE lucy_llm_request_seconds histogram" in own
        await eventually(  # the maintenance run's first activity ran
            lambda: _scrape(temporal_port, "temporal_activity_execution_latency"),
            "an activity of the maintenance run",
            timeout=60,
        )
        assert worker.returncode is None, "the worker stopped"
        # Unauthenticated, so on loopback only by default (LUCY_WORKER_METRICS_HOST).
        other = non_loopback_address()
        for port in (temporal_port, lucy_port):
            assert not await answers(other, port), f"worker metrics on {other}:{port}"
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            _, err = await asyncio.wait_for(worker.communicate(), timeout=30)
        except TimeoutError:
            worker.kill()
            _, err = await worker.communicate()
        stderr = err.decode(errors="replace")
        with contextlib.suppress(Exception):  # the worker created it for its own (now gone) queue
            await temporal_env.client.get_schedule_handle(MAINTENANCE_SCHEDULE_ID).delete()
        spans.close()
    assert "Traceback" not in stderr, stderr
    # The maintenance run the worker starts at once was traced: its activities and their SQL.
    printed = (tmp_path / "spans.out").read_text()
    assert '"name": "RunActivity:maintenance.' in printed, printed[-2000:]
    assert '"db.system": "postgresql"' in printed
