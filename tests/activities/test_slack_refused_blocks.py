"""Blocks Slack refuses (``invalid_blocks``) never lose the message: ``slack.post_message`` and
``slack.update_message`` log which builder made them and send the text alone. For real:
ActivityEnvironment and the fake Slack, which checks blocks against Slack's limits as Slack does."""

from __future__ import annotations

import logging

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.testing import ActivityEnvironment

from capabilities.task.activities.slack import ChannelPacer, SlackActivities
from lucy.contracts.slack import PostMessageRequest, UpdateMessageRequest
from tests.fakes.slack import FakeSlack

CHANNEL, THREAD = "C0LIMITS", "1700000000.000001"
TOO_LONG = [{"type": "section", "text": {"type": "mrkdwn", "text": "&amp;" * 700}}]  # 3,500 characters
TOO_MANY = [{"type": "divider"}] * 51


def _acts(slack: FakeSlack) -> SlackActivities:
    client = AsyncWebClient(token=slack.token, base_url=slack.api_url, retry_handlers=[])
    return SlackActivities(client, ChannelPacer(0))


@pytest.mark.parametrize("blocks", [TOO_LONG, TOO_MANY], ids=["section-over-3000", "51-blocks"])
async def test_refused_blocks_are_posted_as_text_and_the_builder_is_logged(
    fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture, blocks: list
):
    request = PostMessageRequest(
        channel=CHANNEL,
        text="Approval needed: exec",
        idempotency_key="k-refused",
        thread_ts=THREAD,
        format=False,
        blocks=blocks,
        builder="approval_message",
    )
    with caplog.at_level(logging.WARNING):
        posted = await ActivityEnvironment().run(_acts(fake_slack).post_message, request)
    first, second = fake_slack.calls_to("chat.postMessage")
    assert first.params.get("blocks") and "blocks" not in second.params
    message = fake_slack.find(CHANNEL, posted.ts)
    assert message is not None and message["text"] == "Approval needed: exec" and "blocks" not in message
    assert message["metadata"]["event_payload"]["idempotency_key"] == "k-refused"
    refused = [r for r in caplog.records if "refused the blocks" in r.getMessage()]
    assert [getattr(r, "builder", None) for r in refused] == ["approval_message"]


async def test_a_refused_update_keeps_the_text_and_drops_the_old_blocks(
    fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
):
    buttons = [
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "a",
                    "value": "v",
                    "text": {"type": "plain_text", "text": "Approve"},
                }
            ],
        }
    ]
    first = fake_slack.add_message(CHANNEL, "Approval needed")
    message = fake_slack.find(CHANNEL, first)
    assert message is not None
    message["blocks"] = buttons
    update = UpdateMessageRequest(
        channel=CHANNEL, ts=first, text=":x: Rejected: exec", blocks=TOO_LONG, builder="decided_message"
    )
    with caplog.at_level(logging.WARNING):
        assert await ActivityEnvironment().run(_acts(fake_slack).update_message, update)
    assert message["text"] == ":x: Rejected: exec" and message["blocks"] == []  # no stale buttons
    assert [getattr(r, "builder", None) for r in caplog.records if "refused" in r.getMessage()] == [
        "decided_message"
    ]


async def test_other_slack_errors_are_not_retried_as_text(fake_slack: FakeSlack):
    fake_slack.fail("chat.postMessage", error="invalid_blocks")  # a refusal of a text-only post
    request = PostMessageRequest(channel=CHANNEL, text="hi", idempotency_key="k-plain", format=False)
    with pytest.raises(Exception, match="invalid_blocks"):
        await ActivityEnvironment().run(_acts(fake_slack).post_message, request)
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
