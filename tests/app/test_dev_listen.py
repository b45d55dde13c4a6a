"""Where ``lucy dev`` listens: on loopback unless ``--host`` says otherwise. Its ingress also
serves the codec (``/codec/decode``) and ``/metrics``, so they are on the same address."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from app import dev_ports
from app.devservers import free_port, port_in_use
from lucy.crypto import KeyRing
from tests.conftest import answers, eventually, non_loopback_address

ROOT = Path(__file__).resolve().parents[2]


async def _run_dev(
    tmp_path: Path, *extra: str, console: bool = False
) -> tuple[int, asyncio.subprocess.Process]:
    if port_in_use(dev_ports.TEMPORAL) or port_in_use(dev_ports.UI):
        pytest.skip("another Temporal (lucy dev?) holds this machine's dev ports 7233/8233")
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
        "LUCY_ENV": "development",
        "LUCY_DATA_DIR": str(tmp_path / "data"),
        "LUCY_TEMPORAL_ENCRYPT_PAYLOADS": "true",
        "LUCY_ENCRYPTION_KEYS": KeyRing.new_key("k1"),
    }
    if not console:  # a workspace is configured, so no local console
        env.update(LUCY_SLACK_SIGNING_SECRET="dev-listen-secret", LUCY_SLACK_BOT_TOKEN="xoxb-dev-listen")
    args = ["dev", "--port", str(port), "--pg-port", str(free_port()), *extra]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", *args, cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    return port, proc


async def _stop(proc: asyncio.subprocess.Process) -> str:
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    except TimeoutError:
        proc.kill()
        _, err = await proc.communicate()
    return err.decode(errors="replace")


async def _codec_route(host: str, port: int) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        return (await http.post(f"http://{host}:{port}/codec/decode", json={"payloads": []})).status_code


@pytest.mark.parametrize(("extra", "outside"), [((), False), (("--host", "0.0.0.0"), True)])
async def test_lucy_dev_listens_on_loopback_unless_told(
    tmp_path: Path, extra: tuple[str, ...], outside: bool
):
    port, proc = await _run_dev(tmp_path, *extra)
    try:
        await eventually(lambda: answers("127.0.0.1", port), "lucy dev's ingress", timeout=120)
        assert await _codec_route("127.0.0.1", port) == 200  # the codec is on the ingress
        assert await answers(non_loopback_address(), port) is outside
    finally:
        stderr = await _stop(proc)
    assert "Traceback" not in stderr, stderr


async def test_the_console_is_never_served_beyond_this_machine(tmp_path: Path):
    _, proc = await _run_dev(tmp_path, "--host", "0.0.0.0", console=True)
    stderr = await _stop_when_done(proc)
    assert proc.returncode == 1 and "--host" in stderr and "console" in stderr, stderr


async def _stop_when_done(proc: asyncio.subprocess.Process) -> str:
    try:
        await asyncio.wait_for(proc.wait(), timeout=60)
    finally:
        stderr = await _stop(proc)
    return stderr
