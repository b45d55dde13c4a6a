"""Hybrid recall end to end: with an embeddings endpoint configured (the fake's
``POST /api/v1/embeddings``), ``remember`` stores the memory's embedding and a later task whose
request is misspelt (no word full-text search can match) still starts with the memory."""

from __future__ import annotations

import json
import uuid

import pytest
from pydantic import SecretStr

from lucy.settings import Settings
from tests.conftest import Lucy, new_team
from tests.fakes.llm import FakeLlm
from tests.memory.test_memory_e2e import memory_rows, run_task, system_prompt


@pytest.fixture
def settings(settings: Settings, fake_llm: FakeLlm) -> Settings:
    """The suite's settings, with the fake's embeddings endpoint configured."""
    llm = settings.llm.model_copy(
        update={
            "memory_embeddings_base_url": fake_llm.base_url,
            "memory_embeddings_api_key": SecretStr(fake_llm.api_key),
        }
    )
    return settings.model_copy(update={"llm": llm})


async def test_a_misspelt_request_still_recalls_the_memory_through_its_embedding(
    lucy: Lucy, fake_llm: FakeLlm
):
    team = new_team()
    fact = f"expense reports are due by the fifth, code {uuid.uuid4().hex[:6]}"
    fake_llm.then(
        content="Noting.", tool_calls=[("remember", json.dumps({"text": fact, "scope": "channel"}))]
    )
    fake_llm.then(content="Noted.")
    await run_task(lucy, team, f"remember for this channel: {fact}")
    (row,) = await memory_rows(lucy.engine, team)
    assert row["embedding"] and len(row["embedding"]) == 256  # the fake's dimensions
    assert [r["input"] for r in fake_llm.embedding_requests][-1] == [fact]

    fake_llm.reset()
    await run_task(lucy, team, "expence deadlin?", user="U0BOB")  # no lexeme in common
    assert fact in system_prompt(fake_llm.task_requests[0])
    assert fake_llm.embedding_requests  # the request was embedded for recall


async def test_a_task_in_a_workspace_without_memories_embeds_nothing(lucy: Lucy, fake_llm: FakeLlm):
    """Recall at task start asks the embeddings endpoint only when there is something to find."""
    fake_llm.reset()
    fake_llm.then(content="Hello.")
    await run_task(lucy, new_team(), "what is on the calendar today?")
    assert fake_llm.task_requests  # the task ran and answered
    assert fake_llm.embedding_requests == []
