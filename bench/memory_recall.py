"""Recall@5 of Lucy's memory retrieval: PostgreSQL full-text search alone, and hybrid (full-text
fused with embeddings' cosine by reciprocal rank), on the labelled set ``bench/memory_recall.json``
(105 team memories, 54 questions, 12 of them misspelt, each with the ids of the memories
that answer it).

Starts its own embedded PostgreSQL (or uses ``--database-url``, already migrated), writes the
memories into a fresh workspace through the real repository (as ``lucy_app``, row-level
security on), and asks every question through :func:`capabilities.memory.repository.search`,
the code a task's recall runs. Embeddings come from an OpenAI-compatible ``/embeddings``
endpoint: by default the test suite's fake (deterministic character-trigram vectors, a
stand-in for a model, not one), or a real one with ``--embeddings-url``/``--embeddings-model``
(key in ``LUCY_MEMORY_EMBEDDINGS_API_KEY``). Prints recall@5 of both and their ratio.

    .venv/bin/python bench/memory_recall.py [--database-url URL] [--memories N] [--queries N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from capabilities.memory import repository as memories  # noqa: E402
from capabilities.memory.activities.embeddings import embed  # noqa: E402
from capabilities.memory.contracts import MemoryScope  # noqa: E402
from lucy.db.repositories.tenants import upsert_workspace  # noqa: E402
from lucy.db.session import create_sessionmaker  # noqa: E402
from lucy.settings import LlmSettings  # noqa: E402

DATA = Path(__file__).with_name("memory_recall.json")
K = 5


@dataclass(frozen=True)
class Figures:
    memories: int
    queries: int
    full_text: float  # mean recall@5
    hybrid: float
    pgvector: bool

    @property
    def ratio(self) -> float:
        return self.hybrid / self.full_text if self.full_text else float("inf")


def labelled(
    n_memories: int | None, n_queries: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The set, cut to its first ``n_memories`` and the questions answerable within them."""
    data = json.loads(DATA.read_text())
    kept = data["memories"][:n_memories]
    ids = {m["id"] for m in kept}
    questions = [q for q in data["queries"] if set(q["relevant"]) <= ids][:n_queries]
    return kept, questions


def recall_at_k(found: list[str], relevant: list[str]) -> float:
    return len(set(found[:K]) & set(relevant)) / len(relevant)


async def measure(
    database_url: str, embeddings: LlmSettings, n_memories: int | None, n_queries: int | None
) -> Figures:
    kept, questions = labelled(n_memories, n_queries)
    engine = create_async_engine(database_url)
    sessions = create_sessionmaker(engine)
    viewer = memories.Viewer("UBENCH", "CBENCH")
    try:
        async with httpx.AsyncClient() as http:
            vectors = await embed(http, embeddings, [m["text"] for m in kept])
            asked = await embed(http, embeddings, [q["query"] for q in questions])
        if vectors is None or asked is None:
            raise SystemExit("the embeddings endpoint did not answer: no hybrid figure")
        async with sessions() as session:  # one transaction, never committed: nothing is left behind
            workspace_id = await upsert_workspace(
                session=session, slack_team_id=f"TBENCH{uuid.uuid4().hex[:8]}"
            )
            by_row: dict[uuid.UUID, str] = {}
            for memory, vector in zip(kept, vectors, strict=True):
                row_id, _ = await memories.add(
                    session,
                    workspace_id,
                    memories.NewMemory(
                        scope=MemoryScope.WORKSPACE,
                        text=memory["text"],
                        author_slack_id="UBENCH",
                        source_channel_id="CBENCH",
                        source_ts="",
                        source_workflow_id="",
                        source_key=memory["id"],
                        embedding=vector,
                    ),
                )
                by_row[row_id] = memory["id"]
            pgvector = await memories.has_pgvector(session)
            full, hybrid = [], []
            for question, vector in zip(questions, asked, strict=True):
                words = await memories.search(session, workspace_id, viewer, question["query"], limit=K)
                both = await memories.search(
                    session, workspace_id, viewer, question["query"], limit=K, embedding=vector
                )
                full.append(recall_at_k([by_row[r.id] for r in words], question["relevant"]))
                hybrid.append(recall_at_k([by_row[r.id] for r in both], question["relevant"]))
    finally:
        await engine.dispose()
    return Figures(len(kept), len(questions), sum(full) / len(full), sum(hybrid) / len(hybrid), pgvector)


def report(figures: Figures, model: str) -> str:
    return "\n".join(
        [
            f"labelled set: {figures.memories} memories, {figures.queries} questions; embeddings: {model}; "
            f"cosine in {'SQL (pgvector)' if figures.pgvector else 'Python (no vector extension)'}",
            f"recall@{K} full-text (websearch_to_tsquery, ts_rank_cd): {figures.full_text:.3f}",
            f"recall@{K} hybrid (full-text + cosine, reciprocal rank fusion): {figures.hybrid:.3f}",
            f"hybrid / full-text: {figures.ratio:.2f}",
        ]
    )


async def _serve_fake() -> tuple[Any, str, str]:
    from tests.fakes.llm import FakeLlm

    fake = FakeLlm()
    await fake.start()
    return fake, fake.base_url, fake.api_key


async def main(argv: list[str] | None = None) -> Figures:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="a migrated database (default: an embedded one)")
    parser.add_argument("--memories", type=int, help="use only the first N memories")
    parser.add_argument("--queries", type=int, help="use at most N questions")
    parser.add_argument("--embeddings-url", help="an OpenAI-compatible base URL (default: the fake)")
    parser.add_argument("--embeddings-model", default="text-embedding-3-small")
    args = parser.parse_args(argv)
    fake, url, key = (None, args.embeddings_url, os.environ.get("LUCY_MEMORY_EMBEDDINGS_API_KEY", ""))
    if url is None:
        fake, url, key = await _serve_fake()
    settings = LlmSettings(
        memory_embeddings_base_url=url,
        memory_embeddings_api_key=SecretStr(key) if key else None,
        memory_embeddings_model=args.embeddings_model,
    )
    model = "the fake (character trigrams)" if fake else args.embeddings_model
    tmp, pg = None, None
    try:
        database_url = args.database_url
        if database_url is None:
            from app.devservers import LocalPostgres, free_port
            from lucy import migrate

            tmp = Path(tempfile.mkdtemp(prefix="lucy-bench-memory-"))
            pg = LocalPostgres(tmp / "data", port=free_port())
            pg.start()
            await asyncio.to_thread(migrate.upgrade, pg.url)
            database_url = pg.app_url
        figures = await measure(database_url, settings, args.memories, args.queries)
        print(report(figures, model), flush=True)
        return figures
    finally:
        if fake is not None:
            await fake.stop()
        if pg is not None:
            pg.stop()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
