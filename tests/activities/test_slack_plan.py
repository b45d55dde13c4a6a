"""The progress message as a live plan (``slack.post_message`` / ``slack.update_message`` with a
progress view, plans on), for real: ActivityEnvironment and the fake Slack speaking
``chat.*Stream`` with chunks. A retried start reuses its stream; Slack refusing the stream gives
the plain progress message; a plan that is no longer live is updated in place; a rate limit is
Temporal's to retry."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from capabilities.task.activities.slack import SlackActivities
from lucy.contracts.errors import ErrorType
from lucy.contracts.slack import PlanStep, PostMessageRequest, ProgressView, UpdateMessageRequest
from tests.fakes.slack import FakeSlack

CHANNEL, THREAD = "C0GENERAL", "1700000000.000001"


def _env(attempt: int = 1, details: Any = None) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt, heartbeat_details=list(details or []))
    return env


def _acts(slack: FakeSlack) -> SlackActivities:
    client = AsyncWebClient(token=slack.token, base_url=slack.api_url, retry_handlers=[])
    return SlackActivities(client, plans=True)


def _view(status: str = "in_progress", *, final: bool = False) -> ProgressView:
    return ProgressView(
        kind="done" if final else "running",
        workflow_id="wf-1",
        cancellable=not final,
        detail="gateway exec: ls",
        steps=2,
        plan=[PlanStep(id="call_1", title="gateway exec: ls", status=status)],
        recipient_user_id="U0ALICE",
        recipient_team_id="T1",
    )


def _post(view: ProgressView) -> PostMessageRequest:
    return PostMessageRequest(
        channel=CHANNEL, text="", idempotency_key="k-progress", thread_ts=THREAD, format=False, progress=view
    )


async def test_a_plan_is_started_appended_and_stopped(fake_slack: FakeSlack):
    acts = _acts(fake_slack)
    posted = await _env().run(acts.post_message, _post(_view()))
    update = UpdateMessageRequest(
        channel=CHANNEL, ts=posted.ts, text="", progress=_view("complete", final=True)
    )
    assert await _env().run(acts.update_message, update)
    (start,) = fake_slack.calls_to("chat.startStream")
    assert start.params["task_display_mode"] == "plan" and start.params["recipient_user_id"] == "U0ALICE"
    assert fake_slack.calls_to("chat.stopStream") and not fake_slack.calls_to("chat.postMessage")
    message = fake_slack.find(CHANNEL, posted.ts)
    assert message is not None and message["plan"]["title"] == "Done in 2 step(s)"
    assert message["plan"]["tasks"]["call_1"]["status"] == "complete"


async def test_a_retried_start_reuses_the_stream_its_first_attempt_began(fake_slack: FakeSlack):
    acts = _acts(fake_slack)
    first = await _env().run(acts.post_message, _post(_view()))
    again = await _env(attempt=2, details=[{"plan_ts": first.ts}]).run(acts.post_message, _post(_view()))
    assert again.ts == first.ts
    assert len(fake_slack.calls_to("chat.startStream")) == 1


async def test_a_refused_stream_gives_the_plain_progress_message_updated_in_place(fake_slack: FakeSlack):
    fake_slack.stream_refusal = "not_allowed_token_type"
    acts = _acts(fake_slack)
    posted = await _env().run(acts.post_message, _post(_view()))
    message = fake_slack.find(CHANNEL, posted.ts)
    assert message is not None and message["text"] == "Running gateway exec: ls"
    assert "lucy_cancel" in str(message["blocks"])  # today's message, Cancel button and all
    update = UpdateMessageRequest(
        channel=CHANNEL, ts=posted.ts, text="", progress=_view("complete", final=True)
    )
    assert await _env().run(acts.update_message, update)
    assert not fake_slack.calls_to("chat.appendStream") and not fake_slack.calls_to("chat.stopStream")
    assert fake_slack.updates[-1]["text"] == "Done in 2 step(s)."


async def test_a_plan_no_longer_live_is_updated_in_place(fake_slack: FakeSlack):
    acts = _acts(fake_slack)
    posted = await _env().run(acts.post_message, _post(_view("pending")))
    fake_slack.stream_idle_s = 0.0  # it expired while someone decided
    for status in ("in_progress", "complete"):
        update = UpdateMessageRequest(channel=CHANNEL, ts=posted.ts, text="", progress=_view(status))
        assert await _env().run(acts.update_message, update)
    assert len(fake_slack.calls_to("chat.appendStream")) == 1  # refused once, then remembered
    assert [u["text"] for u in fake_slack.updates] == ["Running gateway exec: ls"] * 2


async def test_a_rate_limited_append_is_retried_by_temporal(fake_slack: FakeSlack):
    acts = _acts(fake_slack)
    posted = await _env().run(acts.post_message, _post(_view()))
    fake_slack.fail("chat.appendStream", status=429, retry_after=3)
    update = UpdateMessageRequest(channel=CHANNEL, ts=posted.ts, text="", progress=_view("complete"))
    with pytest.raises(ApplicationError) as raised:
        await _env().run(acts.update_message, update)
    assert raised.value.type == ErrorType.SLACK_RETRYABLE and raised.value.next_retry_delay is not None
    assert await _env().run(acts.update_message, update)  # the retry lands in the plan
    assert not fake_slack.updates
