"""The memory store on the real PostgreSQL, as ``lucy_app`` (row-level security on): full-text
and hybrid retrieval find a misspelt question's memory only when the embeddings take part; the
recall benchmark runs on a small part of its labelled set."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType

from pydantic import SecretStr

from app.devservers import LocalPostgres
from capabilities.memory import repository as memories
from capabilities.memory.contracts import MemoryScope
from lucy.db import repositories as repo
from lucy.db.session import create_sessionmaker
from lucy.settings import LlmSettings
from tests.fakes.embeddings import vector
from tests.fakes.llm import FakeLlm

BENCH = Path(__file__).resolve().parents[2] / "bench" / "memory_recall.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("memory_recall_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def _new(text: str, scope: MemoryScope = MemoryScope.CHANNEL) -> memories.NewMemory:
    return memories.NewMemory(
        scope=scope,
        text=text,
        author_slack_id="U0ALICE",
        source_channel_id="C0GENERAL",
        source_ts="1.1",
        source_workflow_id="",
        source_key=uuid.uuid4().hex,
        embedding=vector(text),
    )


async def test_hybrid_finds_what_full_text_misses_and_a_retry_writes_once(engine):
    sessions = create_sessionmaker(engine)
    viewer = memories.Viewer("U0ALICE", "C0GENERAL")
    async with sessions() as session:
        workspace_id = await repo.upsert_workspace(session=session, slack_team_id=f"T{uuid.uuid4().hex[:10]}")
        once = _new("Expense reports are due by the 5th of the following month")
        first, created = await memories.add(session, workspace_id, once)
        again, created_again = await memories.add(session, workspace_id, once)  # the activity retried
        assert (again, created, created_again) == (first, True, False)
        for text in ("Payroll runs on the 25th", "The standup is at 10:00", "Lunch is at noon"):
            await memories.add(session, workspace_id, _new(text))
        words = await memories.search(session, workspace_id, viewer, "expence deadline", limit=3)
        both = await memories.search(
            session, workspace_id, viewer, "expence deadline", limit=3, embedding=vector("expence deadline")
        )
        assert first not in [r.id for r in words]  # a misspelt word matches no lexeme
        assert both and both[0].id == first
        spelt = await memories.search(session, workspace_id, viewer, "when are expense reports due?", limit=3)
        assert [r.id for r in spelt] == [first]


async def test_the_recall_benchmark_runs_on_a_small_part_of_its_set(
    postgres: LocalPostgres, fake_llm: FakeLlm
):
    bench = _bench()
    settings = LlmSettings(
        memory_embeddings_base_url=fake_llm.base_url, memory_embeddings_api_key=SecretStr(fake_llm.api_key)
    )
    figures = await bench.measure(postgres.app_url, settings, 30, 8)
    assert (figures.memories, figures.queries) == (30, 8)
    assert 0.0 < figures.full_text <= 1.0 and 0.0 < figures.hybrid <= 1.0
    assert "recall@5 hybrid" in bench.report(figures, "fake")
    assert fake_llm.embedding_requests  # the hybrid figure went through the embeddings endpoint
