"""Memory, end to end through the real ingress, worker and workflow, the fake Slack and LLM:
remember in one thread, recall in a later one (with id, scope, author and source link), forget
with ``/lucy memory forget``, and then nothing is recalled and no copy is left anywhere in the
database. A ``me`` memory is never recalled for another person."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from capabilities.memory.contracts import MEMORY_UPKEEP_WORKFLOW_NAME, MemoryUpkeepInput, MemoryUpkeepReport
from lucy.contracts.ids import task_workflow_id
from tests.conftest import Lucy, mention_event, new_team, record_history
from tests.fakes.llm import FakeLlm

MARK = f"qx{uuid.uuid4().hex[:10]}"  # a word no other test writes: found only where this fact went
FACT = f"our deploys happen on Tuesdays after the standup in room {MARK}"


async def run_task(
    lucy: Lucy, team: str, words: str, *, user: str = "U0ALICE", channel: str = "C0GENERAL"
) -> str:
    event = mention_event(team=team, text=words, user=user, channel=channel)
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    assert (await lucy.post_event(event)).status_code == 200
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), timeout=60)
    assert result["status"] == "completed", result
    return workflow_id


def system_prompt(request: dict[str, Any]) -> str:
    return str(request["messages"][0]["content"])


async def memory_rows(engine: AsyncEngine, team: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT m.* FROM memories m JOIN workspaces w ON w.id = m.workspace_id "
                "WHERE w.slack_team_id = :t ORDER BY m.created_at"
            ),
            {"t": team},
        )
        return [dict(r._mapping) for r in rows]


async def copies_anywhere(engine: AsyncEngine, needle: str) -> list[str]:
    """Every (table.column) of the public schema whose text holds ``needle`` (case aside)."""
    async with engine.connect() as conn:
        columns = (
            await conn.execute(
                text(
                    "SELECT c.table_name, c.column_name FROM information_schema.columns c "
                    "JOIN information_schema.tables t ON t.table_schema = c.table_schema "
                    "AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE' "
                    "WHERE c.table_schema = 'public' AND c.data_type IN "
                    "('text', 'character varying', 'jsonb', 'json', 'tsvector', 'ARRAY', 'USER-DEFINED')"
                )
            )
        ).all()
        found = []
        for table, column in columns:
            hits = await conn.execute(
                text(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE :n'), {"n": f"%{needle}%"}
            )
            if hits.scalar_one():
                found.append(f"{table}.{column}")
        return found


async def test_remember_recall_in_a_later_thread_forget_then_nothing(lucy: Lucy, fake_llm: FakeLlm):
    team = new_team()
    fake_llm.then(
        content="Noting that.", tool_calls=[("remember", json.dumps({"text": FACT, "scope": "me"}))]
    )
    fake_llm.then(content="I'll remember that.")
    first = await run_task(lucy, team, f"please remember that {FACT}")
    (row,) = await memory_rows(lucy.engine, team)
    assert (row["scope"], row["scope_key"], row["text"], row["author_slack_id"]) == (
        "me",
        "U0ALICE",
        FACT,
        "U0ALICE",
    )
    assert row["source_workflow_id"] == first and row["source_ts"]

    fake_llm.reset()
    later = await run_task(lucy, team, "when do our deploys happen?")
    await record_history(lucy, later, "lucy_task_memory_recalled")
    prompt = system_prompt(fake_llm.task_requests[0])
    assert FACT in prompt
    link = f"https://slack.com/archives/C0GENERAL/p{row['source_ts'].replace('.', '')}"
    assert f"[memory {row['id']} · me · by <@U0ALICE> · {row['created_at']:%Y-%m-%d} · {link}]" in prompt

    listed = (await lucy.command("memory", team=team)).json()["text"]
    assert str(row["id"]) in listed and "Tuesdays" in listed and "<@U0ALICE>" in listed and link in listed

    before = await copies_anywhere(lucy.engine, MARK)
    assert {"memories.text", "memories.search", "tasks.request_text"} <= set(before), before
    refused = (await lucy.command(f"memory forget {row['id']}", team=team, user="U0BOB")).json()["text"]
    assert "isn't yours" in refused and await memory_rows(lucy.engine, team)
    done = (await lucy.command(f"memory forget {row['id']}", team=team)).json()["text"]
    assert "forgot" in done
    assert await memory_rows(lucy.engine, team) == []
    assert await copies_anywhere(lucy.engine, MARK) == []

    fake_llm.reset()
    await run_task(lucy, team, "when do our deploys happen?")
    assert "Tuesdays" not in system_prompt(fake_llm.task_requests[0])
    assert "I don't remember anything" in (await lucy.command("memory", team=team)).json()["text"]


async def test_a_me_memory_is_never_recalled_for_another_person(lucy: Lucy, fake_llm: FakeLlm):
    team = new_team()
    mine = "my parking spot is P-42"
    ours = "the channel's release train leaves on Fridays"
    fake_llm.then(content="Noting.", tool_calls=[("remember", json.dumps({"text": mine, "scope": "me"}))])
    fake_llm.then(
        content="Noting.", tool_calls=[("remember", json.dumps({"text": ours, "scope": "channel"}))]
    )
    fake_llm.then(content="Both noted.")
    await run_task(lucy, team, f"remember {mine}, and for the channel: {ours}")
    assert len(await memory_rows(lucy.engine, team)) == 2

    fake_llm.reset()
    await run_task(
        lucy, team, "where is my parking spot and when does the release train leave?", user="U0BOB"
    )
    prompt = system_prompt(fake_llm.task_requests[0])
    assert ours in prompt and mine not in prompt  # the channel's, never Alice's own
    listed = (await lucy.command("memory", team=team, user="U0BOB")).json()["text"]
    assert "Fridays" in listed and "P-42" not in listed

    fake_llm.reset()
    await run_task(lucy, team, "where is my parking spot?", user="U0ALICE", channel="C0OTHER")
    prompt = system_prompt(fake_llm.task_requests[0])
    assert mine in prompt and ours not in prompt  # hers everywhere; the channel's only there


async def test_forget_all_and_an_unknown_id_in_plain_words(lucy: Lucy, fake_llm: FakeLlm):
    team = new_team()
    fake_llm.then(
        content="Noting.", tool_calls=[("remember", json.dumps({"text": "tea, no sugar", "scope": "me"}))]
    )
    fake_llm.then(content="Noted.")
    workflow_id = await run_task(lucy, team, "remember: tea, no sugar")
    await record_history(lucy, workflow_id, "lucy_task_memory_remember")
    unknown = (await lucy.command(f"memory forget {uuid.uuid4()}", team=team)).json()["text"]
    assert "There is no memory" in unknown
    garbage = (await lucy.command("memory forget not-an-id", team=team)).json()["text"]
    assert "There is no memory" in garbage
    assert "Usage" in (await lucy.command("memory forget", team=team)).json()["text"]
    assert "forgot 1 of your memory" in (await lucy.command("memory forget all", team=team)).json()["text"]
    assert await memory_rows(lucy.engine, team) == []


async def test_forgetting_a_merged_memory_leaves_no_copy_in_either_source_task(lucy: Lucy, fake_llm: FakeLlm):
    team, mark = new_team(), f"qz{uuid.uuid4().hex[:10]}"
    said = [f"Standup moved to room {mark}", f"standup moved to room {mark.upper()}"]
    for text_ in said:  # two people's tasks remember the same thing, typed differently
        fake_llm.then(
            content="Noting.", tool_calls=[("remember", json.dumps({"text": text_, "scope": "channel"}))]
        )
        fake_llm.then(content="Noted.")
        await run_task(lucy, team, f"remember: {text_}")
    report = await lucy.client.execute_workflow(
        MEMORY_UPKEEP_WORKFLOW_NAME,
        MemoryUpkeepInput(),
        id=f"upkeep-{uuid.uuid4().hex[:8]}",
        task_queue=lucy.settings.temporal.temporal_task_queue,
        result_type=MemoryUpkeepReport,
    )
    assert report.merged >= 1
    (row,) = await memory_rows(lucy.engine, team)
    assert len(row["merged_workflow_ids"]) == 1 and row["text"] == said[0]
    assert {"memories.text", "tasks.request_text"} <= set(await copies_anywhere(lucy.engine, mark))

    assert "forgot" in (await lucy.command(f"memory forget {row['id']}", team=team)).json()["text"]
    assert await copies_anywhere(lucy.engine, mark) == []  # both tasks' requests scrubbed
