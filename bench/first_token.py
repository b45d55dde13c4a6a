"""Benchmark: from a signed mention to the first visible answer text, and to the complete answer,
with streaming on and off in the same run.

    .venv/bin/python bench/first_token.py            # N=10 runs of each, interleaved
    .venv/bin/python bench/first_token.py --runs 20

One embedded PostgreSQL, one Temporal dev server, Lucy's real ingress (over ASGI, the mention
signed exactly as Slack signs it) and two of Lucy's real workers on their own queues, one with
``LUCY_LLM_STREAMING=true`` and one with ``false``; the fake Slack and the fake OpenAI-compatible
model are real HTTP servers in this process. The model answers 400 tokens (~4 characters each)
after a 500 ms first-token delay at 40 tokens/s; without streaming it answers the whole
completion after the same 0.5 + 399/40 s. Times are taken in this process with one clock: the
first visible text is the first change of the fake Slack that shows answer text in the thread,
the complete answer is the thread's message equal to the output pipeline's text.

Aims (issue 14): first visible text within the first-token time + 300 ms (p50); the complete
answer no later than 1.1x the non-streamed path; Slack API calls per answer reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from temporalio.client import Client

from app import worker
from app.devservers import LocalPostgres, free_port
from app.ingress.app import IngressDeps, create_app
from app.worker import lucy_worker
from bench.servers import scratch_temporal
from lucy import migrate
from lucy.db.session import create_engine
from lucy.logging import configure_logging
from lucy.settings import Settings, load_settings
from lucy.slack.text import prepare
from tests.conftest import SIGNING_SECRET, mention_event, new_team, sign
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack

BEFORE = "on, no session"  # --compare-session: streaming, a new Slack session per call (as before)
FIRST_TOKEN_S = 0.5
TOKENS_PER_S = 40.0
ANSWER = " ".join(f"word{i:03d}" for i in range(200))[: 400 * 4]  # 400 tokens of ~4 characters


async def one_run(http: httpx.AsyncClient, slack: FakeSlack, llm: FakeLlm) -> tuple[float, float, int, int]:
    """(s to first visible text, s to complete answer, Slack API calls of the answer, TCP
    connections those calls were made over)."""
    llm.then(content=ANSWER)
    event = mention_event(team=new_team(), text="write the long answer")
    body = json.dumps(event).encode()
    thread = event["event"]["ts"]
    final = prepare(ANSWER)[0]
    calls_before, connections_before = len(slack.calls), len(slack.connections)
    started = time.perf_counter()
    response = await http.post(
        "/slack/events", content=body, headers={**sign(body), "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    first = done = None
    version = slack.version
    while done is None:
        version = await slack.wait_change(version, 0.05)
        texts = [m["text"] for m in slack.posted() if m.get("thread_ts") == thread and m.get("text")]
        if texts and first is None:
            first = time.perf_counter() - started
        if final in texts:
            done = time.perf_counter() - started
        if time.perf_counter() - started > 60:
            raise AssertionError("no answer within 60 s")
    assert first is not None
    answer_calls = [
        c
        for c in slack.calls[calls_before:]
        if c.method.startswith("chat.") and c.params.get("channel") == event["event"]["channel"]
    ]
    ports = {port for method, port in slack.connections[connections_before:] if method.startswith("chat.")}
    return first, done, len(answer_calls), len(ports)


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", "-n", type=int, default=10, help="runs of each configuration")
    parser.add_argument(
        "--compare-session",
        action="store_true",
        help=f"also run a streaming worker without the shared Slack session ({BEFORE!r}), interleaved",
    )
    args = parser.parse_args()
    configure_logging("WARNING", json_output=False)
    tmp = Path(tempfile.mkdtemp(prefix="lucy-first-token-"))
    slack, llm = FakeSlack(), FakeLlm(first_token_delay=FIRST_TOKEN_S, tokens_per_s=TOKENS_PER_S)
    pg = LocalPostgres(tmp / "pg", port=free_port())
    temporal = scratch_temporal(tmp / "temporal.db")
    try:
        await slack.start()
        await llm.start()
        pg.start()
        await asyncio.to_thread(migrate.upgrade, pg.url)
        temporal.start()
        await temporal.wait_ready()

        def config(streaming: bool) -> Settings:
            return load_settings(
                env="test",
                log_level="WARNING",
                database_url=pg.app_url,
                database_migration_url=pg.url,
                slack_bot_token=slack.token,
                slack_signing_secret=SIGNING_SECRET,
                slack_api_url=slack.api_url,
                openrouter_api_key=llm.api_key,
                openrouter_base_url=llm.base_url,
                temporal_address=temporal.address,
                temporal_task_queue=f"lucy-bench-{uuid.uuid4().hex[:8]}",
                slack_channel_min_interval=0.0,
                llm_streaming=streaming,
            )

        settings = {"streaming on": config(True), "streaming off": config(False)}
        if args.compare_session:
            settings[BEFORE] = config(True)
        engine = create_engine(next(iter(settings.values())).database)
        client = await Client.connect(temporal.address, namespace="default")

        async def get_client() -> Client:
            return client

        results: dict[str, list[tuple[float, float, int, int]]] = {name: [] for name in settings}
        async with contextlib.AsyncExitStack() as stack:
            ingress = {}
            for name, s in settings.items():
                # BEFORE: the worker as it was, slack_sdk making a session per call.
                no_session = mock.patch.object(worker, "slack_session", lambda: None)
                with no_session if name == BEFORE else contextlib.nullcontext():
                    await stack.enter_async_context(lucy_worker(s, client, engine=engine))
                app = create_app(IngressDeps(settings=s, engine=engine, temporal=get_client))
                ingress[name] = await stack.enter_async_context(
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingress")
                )
            for name in settings:  # warm-up, untimed
                await one_run(ingress[name], slack, llm)
            for _ in range(args.runs):  # interleaved, so drift hits both alike
                for name in settings:
                    results[name].append(await one_run(ingress[name], slack, llm))
        await engine.dispose()
        report(results)
    finally:
        with contextlib.suppress(Exception):
            temporal.stop()
        with contextlib.suppress(Exception):
            pg.stop()
        await llm.stop()
        await slack.stop()


def report(results: dict[str, list[tuple[float, float, int, int]]]) -> None:
    model_total = FIRST_TOKEN_S + 399 / TOKENS_PER_S
    print(f"fake model: first token {FIRST_TOKEN_S * 1000:.0f} ms, {TOKENS_PER_S:.0f} tokens/s, 400 tokens")
    print(f"(the model alone: {model_total:.2f} s to the last token)\n")
    print(
        f"{'':15} {'first text p50':>15} {'p90':>8} {'complete p50':>13} {'p90':>8} {'Slack calls':>12}"
        f" {'connections':>12}"
    )
    for name, runs in results.items():
        first = [r[0] for r in runs]
        done = [r[1] for r in runs]
        calls = statistics.mean(r[2] for r in runs)
        connections = statistics.mean(r[3] for r in runs)
        print(
            f"{name:15} {pct(first, 0.5) * 1000:>12.0f} ms {pct(first, 0.9) * 1000:>5.0f} ms"
            f" {pct(done, 0.5):>11.2f} s {pct(done, 0.9):>6.2f} s {calls:>12.1f} {connections:>12.1f}"
        )
    on, off = results["streaming on"], results["streaming off"]
    ratio = pct([r[1] for r in on], 0.5) / pct([r[1] for r in off], 0.5)
    first_p50 = pct([r[0] for r in on], 0.5)
    print()
    print(
        f"first visible text (streaming, p50): {first_p50 * 1000:.0f} ms"
        f" (aim: <= {(FIRST_TOKEN_S + 0.3) * 1000:.0f} ms from the mention, i.e. the first-token"
        " time + 300 ms; includes ingress, the workflow start, the intent classification)"
    )
    print(f"complete answer, streaming / not streaming (p50): {ratio:.2f}x (aim: <= 1.10x)")
    print("connections: the TCP connections the answer's chat.* calls were made over (per answer, mean)")
    if BEFORE in results:
        before = pct([r[0] for r in results[BEFORE]], 0.5)
        print(
            f"first visible text, shared Slack session / a session per call (p50, same run): "
            f"{first_p50 / before:.2f}x ({first_p50 * 1000:.0f} vs {before * 1000:.0f} ms)"
        )


if __name__ == "__main__":
    asyncio.run(main())
