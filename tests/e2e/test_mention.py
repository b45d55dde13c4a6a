"""End to end through the real ingress: signed event -> workflow -> fake LLM -> fake Slack -> tasks row."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from decimal import Decimal

from sqlalchemy import select, text
from temporalio.client import WorkflowExecutionStatus

from lucy.contracts.ids import task_workflow_id
from lucy.db.models import Task, Workspace
from tests.conftest import Lucy, dm_event, mention_event, new_team, record_history, sign
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack


async def _task_row(lucy: Lucy, workflow_id: str) -> Task:
    async with lucy.engine.connect() as conn:
        row = (await conn.execute(select(Task).where(Task.workflow_id == workflow_id))).one()
    return row  # type: ignore[return-value]


async def _wait_result(lucy: Lucy, workflow_id: str) -> dict:
    handle = lucy.client.get_workflow_handle(workflow_id)
    result = await asyncio.wait_for(handle.result(), timeout=60)
    return result if isinstance(result, dict) else result.__dict__


async def test_mention_is_answered_in_thread_and_recorded(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    team = new_team()
    fake_llm.then(
        content="The capital of France is **Paris**.", prompt_tokens=31, completion_tokens=9, cost=0.0012
    )
    event = mention_event(team=team, text="what is the capital of France?")

    started = time.perf_counter()
    response = await lucy.post_event(event)
    ack_seconds = time.perf_counter() - started
    assert response.status_code == 200
    assert ack_seconds < 3.0, "Slack's 3 s limit"

    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    # The 200 came after Temporal accepted the start: the workflow exists now.
    desc = await lucy.client.get_workflow_handle(workflow_id).describe()
    assert desc.id == workflow_id

    result = await _wait_result(lucy, workflow_id)
    assert result["status"] == "completed"

    posts = fake_slack.posted(ev["channel"])
    assert len(posts) == 1
    assert posts[0]["thread_ts"] == ev["ts"]
    assert "Paris" in posts[0]["text"]
    # The LLM saw the request without the bot mention, after a system prompt.
    sent = fake_llm.requests[-1]
    assert sent["messages"][0]["role"] == "system"
    assert sent["messages"][-1] == {"role": "user", "content": "what is the capital of France?"}
    assert sent["model"] == lucy.settings.llm.model_tier_default

    # Two LLM calls: the intent classification on the fast tier (the fake answers "chat"), then
    # the answer on the default tier.
    classify = fake_llm.requests[-2]
    assert classify["model"] == lucy.settings.llm.model_tier_fast
    assert classify["response_format"] == {"type": "json_object"}
    row = await _task_row(lucy, workflow_id)
    assert row.status == "completed"
    assert (row.prompt_tokens, row.completion_tokens) == (12 + 31, 7 + 9)
    assert float(row.cost_usd) == 0.00121
    assert row.slack_thread_ts == ev["ts"]
    assert row.request_text == "what is the capital of France?"
    assert row.completed_at is not None
    # The LLM call is in cost_log (and its monthly aggregate), the outcome in audit_log: once each.
    async with lucy.engine.connect() as conn:
        cost = await conn.execute(
            text("SELECT count(*), sum(prompt_tokens), sum(cost_usd) FROM cost_log WHERE workspace_id = :w"),
            {"w": row.workspace_id},
        )
        assert tuple(cost.one()) == (2, 43, Decimal("0.001210"))
        monthly = await conn.execute(
            text("SELECT sum(calls) FROM cost_monthly WHERE workspace_id = :w"), {"w": row.workspace_id}
        )
        assert monthly.scalar_one() == 2
        steps = await conn.execute(
            text(
                "SELECT step_index, kind, name, status FROM task_steps WHERE task_id = :t ORDER BY step_index"
            ),
            {"t": row.id},
        )
        assert [tuple(r) for r in steps] == [
            (1, "llm_call", "classify", "completed"),
            (2, "llm_call", "default tier", "completed"),
        ]
        audit = await conn.execute(
            text("SELECT action FROM audit_log WHERE workflow_id = :w"), {"w": workflow_id}
        )
        assert audit.scalars().all() == ["task.completed"]

    desc = await lucy.client.get_workflow_handle(workflow_id).describe()
    sa = {k.name: v for k, v in ((p.key, p.value) for p in desc.typed_search_attributes)}
    assert sa["LucyStatus"] == "completed"
    assert sa["LucyWorkspace"] == team
    assert sa["LucyUser"] == "U0ALICE"
    assert sa["LucyChannel"] == ev["channel"]
    assert sa["LucyThread"] == ev["ts"]
    assert sa["LucySource"] == "mention"
    assert sa["LucyIntent"] == "chat"

    await record_history(lucy, workflow_id, "lucy_task_completed")


async def test_tenant_rows_are_upserted_once(lucy: Lucy, fake_slack: FakeSlack):
    team = new_team()
    for i in range(2):
        r = await lucy.post_event(mention_event(team=team, text=f"question {i}"))
        assert r.status_code == 200
    await fake_slack.wait_for_posts(2)
    async with lucy.engine.connect() as conn:
        workspaces = (await conn.execute(select(Workspace).where(Workspace.slack_team_id == team))).all()
        assert len(workspaces) == 1
        users = await conn.execute(
            text("SELECT count(*) FROM users WHERE workspace_id = :w"), {"w": workspaces[0].id}
        )
        assert users.scalar_one() == 1


async def test_redelivery_starts_one_workflow_and_posts_one_reply(lucy: Lucy, fake_slack: FakeSlack):
    team = new_team()
    event = mention_event(team=team, text="only once please")
    first = await lucy.post_event(event)
    assert first.status_code == 200
    # Slack redelivers (new event id is NOT used by Slack for retries, but we also survive it), and
    # several retries arrive concurrently.
    retries = [
        lucy.post_event(event, headers={"X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": "http_timeout"})
        for n in (1, 2, 3)
    ]
    redelivered_with_new_id = dict(event, event_id="EvDIFFERENT01")
    responses = await asyncio.gather(*retries, lucy.post_event(redelivered_with_new_id))
    assert [r.status_code for r in responses] == [200, 200, 200, 200]

    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    await _wait_result(lucy, workflow_id)
    query = f"WorkflowId = '{workflow_id}'"
    runs = [w async for w in lucy.client.list_workflows(query)]
    assert len(runs) == 1
    await asyncio.sleep(0.5)
    assert len(fake_slack.posted(ev["channel"])) == 1


async def test_concurrent_first_deliveries_start_one_workflow(lucy: Lucy, fake_slack: FakeSlack):
    team = new_team()
    event = mention_event(team=team, text="race")
    responses = await asyncio.gather(*(lucy.post_event(event) for _ in range(5)))
    assert {r.status_code for r in responses} == {200}
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    await _wait_result(lucy, workflow_id)
    await asyncio.sleep(0.3)
    assert len(fake_slack.posted(ev["channel"])) == 1


async def test_forged_and_stale_signatures_are_refused(lucy: Lucy, fake_slack: FakeSlack):
    team = new_team()
    event = mention_event(team=team, text="let me in")
    body = json.dumps(event).encode()
    forged = sign(body, secret="not-the-secret")
    stale = sign(body, timestamp=int(time.time()) - 6 * 60)
    for headers in (forged, stale, {}):
        r = await lucy.http.post(
            "/slack/events", content=body, headers={"Content-Type": "application/json", **headers}
        )
        assert r.status_code == 401
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    runs = [w async for w in lucy.client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    assert runs == []
    async with lucy.engine.connect() as conn:
        count = await conn.execute(
            text("SELECT count(*) FROM workspaces WHERE slack_team_id = :t"), {"t": team}
        )
        assert count.scalar_one() == 0


async def test_llm_500_twice_then_answer(lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm):
    team = new_team()
    fake_llm.then(status=500).then(status=502).then(content="third time lucky")
    event = mention_event(team=team, text="flaky?")
    assert (await lucy.post_event(event)).status_code == 200
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    result = await _wait_result(lucy, workflow_id)
    assert result["status"] == "completed"
    assert len(fake_llm.task_requests) == 3
    posts = fake_slack.posted(ev["channel"])
    assert [p["text"] for p in posts] == ["third time lucky"]
    assert (await _task_row(lucy, workflow_id)).status == "completed"


async def test_llm_401_fails_once_with_a_friendly_message(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    team = new_team()
    fake_llm.then(status=401)
    event = mention_event(team=team, text="are you there?")
    assert (await lucy.post_event(event)).status_code == 200
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    result = await _wait_result(lucy, workflow_id)
    assert result["status"] == "failed"
    assert result["error_type"] == "LlmUnauthorized"
    assert len(fake_llm.task_requests) == 1, "401 is not retried"
    posts = fake_slack.posted(ev["channel"])
    assert len(posts) == 1
    assert posts[0]["thread_ts"] == ev["ts"]
    assert posts[0]["text"].startswith("Sorry")
    assert fake_llm.api_key not in posts[0]["text"]
    row = await _task_row(lucy, workflow_id)
    assert row.status == "failed"
    assert row.error_type == "LlmUnauthorized"
    desc = await lucy.client.get_workflow_handle(workflow_id).describe()
    assert desc.status == WorkflowExecutionStatus.COMPLETED
    sa = {p.key.name: p.value for p in desc.typed_search_attributes}
    assert sa["LucyStatus"] == "failed"
    await record_history(lucy, workflow_id, "lucy_task_llm_unauthorized")


async def test_direct_message_is_answered_and_bot_messages_ignored(lucy: Lucy, fake_slack: FakeSlack):
    team = new_team()
    dm = dm_event(team=team, text="hi Lucy, one question")
    assert (await lucy.post_event(dm)).status_code == 200
    bot = dm_event(team=team, text="I am a bot", bot_id="B0OTHER")
    edit = dm_event(team=team, text="edited", subtype="message_changed")
    channel_chatter = dm_event(team=team, channel="C0RANDOM", text="just talking", channel_type="channel")
    for ignored in (bot, edit, channel_chatter):
        assert (await lucy.post_event(ignored)).status_code == 200
    posts = await fake_slack.wait_for_posts(1)
    await asyncio.sleep(0.5)
    assert len(fake_slack.posted()) == 1
    assert posts[0]["channel"] == "D0ALICE"
    assert posts[0]["thread_ts"] == dm["event"]["ts"]
    for ignored in (bot, edit, channel_chatter):
        ev = ignored["event"]
        wid = task_workflow_id(team, ev["channel"], ev["ts"])
        assert [w async for w in lucy.client.list_workflows(f"WorkflowId = '{wid}'")] == []


async def test_url_verification(lucy: Lucy):
    r = await lucy.post_event({"type": "url_verification", "challenge": "abc123", "token": "x"})
    assert r.status_code == 200
    assert r.json()["challenge"] == "abc123"


async def test_slack_post_is_idempotent_when_the_response_is_lost(lucy: Lucy, fake_slack: FakeSlack):
    """Slack stores the message but the response never arrives: the retry finds it, no second post."""
    team = new_team()
    fake_slack.fail("chat.postMessage", status=500, error="internal_error", apply_then_fail=True)
    event = mention_event(team=team, text="say it once")
    assert (await lucy.post_event(event)).status_code == 200
    ev = event["event"]
    result = await _wait_result(lucy, task_workflow_id(team, ev["channel"], ev["ts"]))
    assert result["status"] == "completed"
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert len(fake_slack.calls_to("conversations.replies")) == 1
    assert len(fake_slack.posted(ev["channel"])) == 1


async def test_slack_429_is_retried_after_retry_after(lucy: Lucy, fake_slack: FakeSlack):
    team = new_team()
    fake_slack.fail("chat.postMessage", status=429, retry_after=1)
    event = mention_event(team=team, text="busy slack")
    assert (await lucy.post_event(event)).status_code == 200
    ev = event["event"]
    result = await _wait_result(lucy, task_workflow_id(team, ev["channel"], ev["ts"]))
    assert result["status"] == "completed"
    calls = fake_slack.calls_to("chat.postMessage")
    assert len(calls) == 2
    assert len(fake_slack.posted(ev["channel"])) == 1


async def test_posts_in_one_channel_are_paced_and_survive_a_429_storm(lucy: Lucy, fake_slack: FakeSlack):
    team = new_team()
    fake_slack.fail("chat.postMessage", status=429, retry_after=1, times=3)
    events = [mention_event(team=team, channel="C0BUSY", text=f"storm {i}") for i in range(3)]
    for e in events:
        assert (await lucy.post_event(e)).status_code == 200
    for e in events:
        ev = e["event"]
        result = await _wait_result(lucy, task_workflow_id(team, ev["channel"], ev["ts"]))
        assert result["status"] == "completed"
    posts = fake_slack.posted("C0BUSY")
    assert sorted(p["text"] for p in posts) == [f"You asked: storm {i}" for i in range(3)], "no reply dropped"
    accepted = [c.at for c in fake_slack.calls_to("chat.postMessage")]
    gaps = [b - a for a, b in itertools.pairwise(accepted)]
    assert min(gaps) >= 0.1, gaps  # unpaced, three concurrent posts would land within milliseconds
