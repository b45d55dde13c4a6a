"""Benchmark: the first visible answer text through ``lucy dev``, over HTTP, as a person running
Lucy on one machine gets it.

    .venv/bin/python bench/first_token_dev.py            # N=10 mentions
    .venv/bin/python bench/first_token_dev.py --runs 20

``lucy dev`` runs as its own process (``python -m app.cli dev``: its embedded PostgreSQL, its
Temporal dev server on the dev ports, its worker and its ingress), pointed at the fake Slack and
the fake OpenAI-compatible model of this process (real HTTP servers). Each run signs a mention
exactly as Slack does and POSTs it to the process's port over TCP; the times are taken here, with
one clock, by :func:`bench.first_token.one_run`: the first visible answer text is the first change
of the fake Slack that shows text in the thread. The model answers as in ``bench/first_token.py``
(first token after 500 ms, 40 tokens/s, 400 tokens).

Baseline, measured in the same run and interleaved: the model's own first token, as a client in
this process sees it (a streamed completion straight to the fake model, time to its first chunk).
Aim (issue 31): first visible text within the first-token time + 300 ms (p50).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from app import dev_ports
from app.devservers import free_port, port_in_use
from bench.first_token import FIRST_TOKEN_S, TOKENS_PER_S, one_run, pct
from lucy.crypto import KeyRing
from tests.conftest import SIGNING_SECRET, answers
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack

ROOT = Path(__file__).resolve().parent.parent


def dev_env(tmp: Path, slack: FakeSlack, llm: FakeLlm) -> dict[str, str]:
    """``lucy dev``'s environment: one workspace on the fake Slack, the fake model, streaming."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp),
        "LUCY_ENV": "development",
        "LUCY_LOG_LEVEL": "WARNING",
        "LUCY_DATA_DIR": str(tmp / "data"),
        "LUCY_ENCRYPTION_KEYS": KeyRing.new_key("k1"),
        "LUCY_SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "LUCY_SLACK_BOT_TOKEN": slack.token,
        "LUCY_SLACK_API_URL": slack.api_url,
        "LUCY_SLACK_CHANNEL_MIN_INTERVAL": "0",
        "LUCY_OPENROUTER_API_KEY": llm.api_key,
        "LUCY_OPENROUTER_BASE_URL": llm.base_url,
        "LUCY_LLM_STREAMING": "true",
    }


async def start_dev(tmp: Path, env: dict[str, str]) -> tuple[int, asyncio.subprocess.Process]:
    if port_in_use(dev_ports.TEMPORAL) or port_in_use(dev_ports.UI):
        raise SystemExit("another Temporal (lucy dev?) holds this machine's dev ports 7233/8233")
    port = free_port()
    log = (tmp / "lucy-dev.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "dev",
        "--port",
        str(port),
        "--pg-port",
        str(free_port()),
        cwd=tmp,
        env=env,
        stdout=log,
        stderr=log,
    )
    started = time.monotonic()
    while not await answers("127.0.0.1", port):
        if proc.returncode is not None or time.monotonic() - started > 180:
            raise SystemExit(f"lucy dev did not start; see {tmp / 'lucy-dev.log'}")
        await asyncio.sleep(0.2)
    print(f"lucy dev answered on :{port} after {time.monotonic() - started:.1f} s", flush=True)
    return port, proc


async def stop_dev(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(proc.wait(), 60)
    except TimeoutError:
        proc.kill()


async def model_first_token(llm: FakeLlm) -> float:
    """Seconds to the first content of a streamed completion, straight from the model (the
    whole stream is read, so the model never writes to a closed connection)."""
    llm.then(content="baseline answer")
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "baseline"}]}
    headers = {"Authorization": f"Bearer {llm.api_key}"}
    first = None
    async with httpx.AsyncClient(timeout=10) as http:
        started = time.perf_counter()
        async with http.stream("POST", f"{llm.base_url}/chat/completions", json=body, headers=headers) as r:
            async for line in r.aiter_lines():
                if first is None and line.startswith("data: {") and _content(line[6:]):
                    first = time.perf_counter() - started
    if first is None:
        raise AssertionError("the model sent no content")
    return first


def _content(chunk: str) -> str:
    choices = json.loads(chunk).get("choices") or [{}]
    return str((choices[0].get("delta") or {}).get("content") or "")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", "-n", type=int, default=10, help="timed mentions")
    parser.add_argument("--warmup", type=int, default=2, help="untimed mentions first")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lucy-first-token-dev-"))
    slack, llm = FakeSlack(), FakeLlm(first_token_delay=FIRST_TOKEN_S, tokens_per_s=TOKENS_PER_S)
    await slack.start()
    await llm.start()
    proc = None
    try:
        port, proc = await start_dev(tmp, dev_env(tmp, slack, llm))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(args.warmup):
                await one_run(http, slack, llm)
            runs, model = [], []
            for _ in range(args.runs):  # interleaved, so drift hits both alike
                runs.append(await one_run(http, slack, llm))
                model.append(await model_first_token(llm))
    finally:
        if proc is not None:
            await stop_dev(proc)
        await llm.stop()
        await slack.stop()
    report(runs, model)


def report(runs: list[tuple[float, float, int, int]], model: list[float]) -> None:
    first = [r[0] for r in runs]
    done = [r[1] for r in runs]
    p50 = pct(first, 0.5)
    aim = FIRST_TOKEN_S + 0.3
    print(f"fake model: first token {FIRST_TOKEN_S * 1000:.0f} ms, {TOKENS_PER_S:.0f} tokens/s, 400 tokens")
    print(f"through lucy dev over HTTP, N={len(runs)}")
    print(f"  first visible text  p50 {p50 * 1000:6.0f} ms  p90 {pct(first, 0.9) * 1000:6.0f} ms")
    print(f"  complete answer     p50 {pct(done, 0.5):6.2f} s   p90 {pct(done, 0.9):6.2f} s")
    print(f"  the model's first token, straight  p50 {pct(model, 0.5) * 1000:6.0f} ms (baseline)")
    print(f"  first text / the model's first token (p50): {p50 / pct(model, 0.5):.2f}x")
    verdict = "met" if p50 <= aim else "NOT met"
    print(
        f"verdict (issue 31): first visible text p50 {p50 * 1000:.0f} ms (aim <= {aim * 1000:.0f} ms): {verdict}"
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
