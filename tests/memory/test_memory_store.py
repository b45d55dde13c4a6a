"""The memory store on the real PostgreSQL, as ``lucy_app`` (row-level security on): full-text
and hybrid retrieval find a misspelt question's memory only when the embeddings take part; the
recall benchmark runs on a small part of its labelled set."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import httpx
import pytest
from pydantic import SecretStr

from app.devservers import LocalPostgres
from capabilities.budgets.rules import estimate_prompt_tokens
from capabilities.memory import repository as memories
from capabilities.memory.activities.recall import starting_memories
from capabilities.memory.contracts import MemoryScope
from capabilities.task.contracts.task import TaskInput
from lucy.db.repositories.tenants import upsert_workspace
from lucy.db.session import create_sessionmaker
from lucy.settings import LlmSettings
from tests.fakes.embeddings import vector
from tests.fakes.llm import FakeLlm
from tests.fixtures.bench import load_bench


async def _no_pgvector(session: object) -> bool:
    return False


def new_memory(
    text: str, scope: MemoryScope = MemoryScope.CHANNEL, *, expires: datetime | None = None
) -> memories.NewMemory:
    """A memory of Alice's in #general, with the fake's embedding (``expires``: its expiry)."""
    return memories.NewMemory(
        scope=scope,
        text=text,
        author_slack_id="U0ALICE",
        source_channel_id="C0GENERAL",
        source_ts="1.1",
        source_workflow_id="",
        source_key=uuid.uuid4().hex,
        embedding=vector(text),
        expires_at=expires,
    )


@pytest.mark.parametrize("pgvector", [True, False], ids=["cosine-in-sql", "cosine-in-python"])
async def test_hybrid_finds_what_full_text_misses_and_a_retry_writes_once(
    engine, monkeypatch: pytest.MonkeyPatch, pgvector: bool
):
    if not pgvector:  # a server without the vector extension (the test database has it)
        monkeypatch.setattr(memories, "has_pgvector", _no_pgvector)
    sessions = create_sessionmaker(engine)
    viewer = memories.Viewer("U0ALICE", "C0GENERAL")
    async with sessions() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=f"T{uuid.uuid4().hex[:10]}")
        assert await memories.has_pgvector(session) == pgvector
        once = new_memory("Expense reports are due by the 5th of the following month")
        first, created = await memories.add(session, workspace_id, once)
        again, created_again = await memories.add(session, workspace_id, once)  # the activity retried
        assert (again, created, created_again) == (first, True, False)
        for text in ("Payroll runs on the 25th", "The standup is at 10:00", "Lunch is at noon"):
            await memories.add(session, workspace_id, new_memory(text))
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
    bench = load_bench("memory_recall.py")
    settings = LlmSettings(
        memory_embeddings_base_url=fake_llm.base_url, memory_embeddings_api_key=SecretStr(fake_llm.api_key)
    )
    figures = await bench.measure(postgres.app_url, settings, 30, 8)
    assert (figures.memories, figures.queries) == (30, 8)
    assert 0.0 < figures.full_text <= 1.0 and 0.0 < figures.hybrid <= 1.0
    assert "recall@5 hybrid" in bench.report(figures, "fake")
    assert fake_llm.embedding_requests  # the hybrid figure went through the embeddings endpoint


async def test_a_task_starts_with_the_relevant_memories_within_the_token_cap(engine):
    sessions = create_sessionmaker(engine)
    team = f"T{uuid.uuid4().hex[:10]}"
    async with sessions() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        for n in range(12):
            await memories.add(
                session, workspace_id, new_memory(f"deploy rule {n}: the deploy window is slot {n}")
            )
        await memories.add(
            session, workspace_id, new_memory("deploy secrets for everyone", MemoryScope.WORKSPACE)
        )
        await memories.add(session, workspace_id, new_memory("lunch is at noon"))
        await session.commit()
    task = TaskInput(
        workspace_id=str(workspace_id),
        user_id="",
        channel_id="",
        slack_team_id=team,
        slack_user_id="U0BOB",
        slack_channel_id="C0GENERAL",
        thread_ts="2.2",
        message_ts="2.2",
        text="what is our deploy window?",
    )
    async with httpx.AsyncClient() as http:
        roomy = await starting_memories(
            sessions, http, LlmSettings(memory_recall_max_tokens=5000), task, guest=False
        )
        tight = await starting_memories(
            sessions, http, LlmSettings(memory_recall_max_tokens=120), task, guest=False
        )
        guest = await starting_memories(
            sessions, http, LlmSettings(memory_recall_max_tokens=5000), task, guest=True
        )
        off = await starting_memories(
            sessions, http, LlmSettings(memory_recall_max_tokens=0), task, guest=False
        )
    lines = roomy.text.splitlines()
    assert len(lines) == 13 and "lunch" not in roomy.text and roomy.from_others  # Alice wrote them, Bob asks
    assert all(
        re.match(
            r"\[memory [0-9a-f-]{36} · (channel|workspace) · by <@U0ALICE> · \d{4}-\d{2}-\d{2} · https://slack.com/archives/C0GENERAL/p11\] ",
            line,
        )
        for line in lines
    )
    kept = tight.text.splitlines()
    assert 0 < len(kept) < len(lines) and estimate_prompt_tokens(kept) <= 120
    assert "everyone" in roomy.text and "everyone" not in guest.text  # a guest: no workspace memories
    assert off.text == "" and not off.from_others
