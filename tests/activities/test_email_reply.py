"""``email.reply`` and the attachment reader through the real ``agentmail`` SDK against the fake
AgentMail (its wire protocol, its errors), in Temporal's ActivityEnvironment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from capabilities.email.activities.attachments import read_attachments
from capabilities.email.activities.reply import EmailReplyActivities
from capabilities.email.contracts import EmailAttachment, EmailOrigin, EmailReplyRequest
from lucy.contracts.errors import ErrorType
from lucy.settings import ToolSettings
from tests.fakes.agentmail import FakeAgentMail, message_received

INBOX = "acme@agentmail.to"


@pytest.fixture
def agentmail(fake_agentmail: FakeAgentMail) -> FakeAgentMail:
    return fake_agentmail


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def settings(fake: FakeAgentMail, **overrides: Any) -> ToolSettings:
    values: dict[str, Any] = {
        "agentmail_api_key": SecretStr(fake.api_key),
        "agentmail_base_url": fake.base_url,
    }
    return ToolSettings(**{**values, **overrides})


def received(fake: FakeAgentMail) -> dict[str, Any]:
    event = message_received(inbox_id=INBOX, thread_id="thr_1", message_id="<m1@example.com>")
    fake.receive(event)
    return event


def reply(**overrides: Any) -> EmailReplyRequest:
    values: dict[str, Any] = {
        "workflow_id": "wf-1",
        "workspace_id": "ws",
        "inbox_id": INBOX,
        "message_id": "<m1@example.com>",
        "to": "bob@example.com",
        "text": "Here it is. api_key=sk-abcdefghijklmnopqrstuvwxyz0123 <script>x</script>",
        "idempotency_key": "key-1",
    }
    return EmailReplyRequest(**{**values, **overrides})


async def test_a_reply_is_sent_in_the_thread_once_per_key(http, agentmail: FakeAgentMail):
    received(agentmail)
    acts = EmailReplyActivities(settings(agentmail), http)
    first = await ActivityEnvironment().run(acts.reply, reply())
    again = await ActivityEnvironment().run(acts.reply, reply())  # a retry after a lost response
    assert first == again and first.thread_id == "thr_1"
    [sent] = agentmail.replies
    assert sent.body["to"] == ["bob@example.com"] and "sk-abcdef" not in sent.body["text"]
    assert sent.idempotency_key == "key-1"
    html = sent.body["html"]
    assert html.startswith("<p>Here it is.") and "sk-abcdef" not in html and "&lt;script&gt;" in html
    headers = agentmail.requests[-1]["headers"]
    assert headers["Authorization"] == f"Bearer {agentmail.api_key}"


async def _error(acts: EmailReplyActivities, request: EmailReplyRequest) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(acts.reply, request)
    return caught.value


async def test_agentmail_errors_map_onto_lucys_error_types(http, agentmail: FakeAgentMail):
    received(agentmail)
    acts = EmailReplyActivities(settings(agentmail), http)
    agentmail.fail(429, retry_after=7, name="RateLimitError")
    limited = await _error(acts, reply())
    assert limited.type == ErrorType.TOOL_RETRYABLE and not limited.non_retryable
    assert limited.next_retry_delay == timedelta(seconds=7)
    agentmail.fail(503)
    assert (await _error(acts, reply())).type == ErrorType.TOOL_RETRYABLE
    unknown = await _error(acts, reply(message_id="<nope@example.com>"))
    assert unknown.type == ErrorType.TOOL_REJECTED and unknown.non_retryable and "404" in unknown.message
    invalid = await _error(acts, reply(to="bob@example.com", idempotency_key="key-2", text="  "))
    assert invalid.type == ErrorType.TOOL_REJECTED and "empty" in invalid.message
    await ActivityEnvironment().run(acts.reply, reply(idempotency_key="key-3"))
    conflict = await _error(acts, reply(idempotency_key="key-3", text="Something else"))
    assert conflict.type == ErrorType.TOOL_RETRYABLE and "409" in conflict.message
    bad_key = EmailReplyActivities(settings(agentmail, agentmail_api_key=SecretStr("am_wrong")), http)
    refused = await _error(bad_key, reply(idempotency_key="key-4"))
    assert refused.type == ErrorType.TOOL_NOT_CONFIGURED and "am_wrong" not in refused.message
    no_key = EmailReplyActivities(settings(agentmail, agentmail_api_key=None), http)
    assert (await _error(no_key, reply())).type == ErrorType.TOOL_NOT_CONFIGURED
    assert len(agentmail.replies) == 1


async def test_unreadable_attachments_are_said_not_fatal(http, agentmail: FakeAgentMail):
    event = received(agentmail)
    agentmail.attach(event, "a.txt", b"hello", "text/plain")
    origin = EmailOrigin(
        inbox_id=INBOX,
        thread_id="thr_1",
        message_id="<m1@example.com>",
        sender="bob@example.com",
        attachments=[
            EmailAttachment(
                attachment_id=event["message"]["attachments"][0]["attachment_id"], filename="a.txt"
            ),
            EmailAttachment(attachment_id="att_gone", filename="gone.txt", content_type="text/plain"),
        ],
    )
    said = [m.content for m in await read_attachments(settings(agentmail), http, origin)]
    assert "hello" in said[0] and "could not be read (NotFoundError)" in said[1]
    assert await read_attachments(settings(agentmail, agentmail_api_key=None), http, origin) == []


async def test_attachment_reading_is_bounded_in_time_and_size_and_never_fatal(http, agentmail: FakeAgentMail):
    from capabilities.email.activities.attachments import MAX_FILE_BYTES, MAX_TEXT_CHARS

    event = received(agentmail)
    agentmail.attach(event, "big.txt", b"x" * (MAX_FILE_BYTES * 5), "text/plain")
    agentmail.attach(event, "nourl.txt", b"hello", "text/plain", download_url=False)
    agentmail.attach(event, "slow.txt", b"late", "text/plain", delay=5.0)
    agentmail.attach(event, "after.txt", b"never reached", "text/plain")
    origin = EmailOrigin(
        inbox_id=INBOX,
        thread_id="thr_1",
        message_id="<m1@example.com>",
        sender="bob@example.com",
        attachments=[
            EmailAttachment(
                attachment_id=a["attachment_id"],
                filename=a["filename"],
                content_type="text/plain",
                size=a["size"],
            )
            for a in event["message"]["attachments"]
        ],
    )
    big = settings(agentmail, email_attachment_max_bytes=10_000_000)
    said = [m.content for m in await read_attachments(big, http, origin, timeout_s=1.0)]
    assert len(said) == 4
    assert "x" * MAX_TEXT_CHARS in said[0] and "x" * (MAX_TEXT_CHARS + 1) not in said[0]
    assert f"cut: {MAX_FILE_BYTES - MAX_TEXT_CHARS} more characters" in said[0]  # no more was fetched
    assert "'nourl.txt'" in said[1] and "could not be read" in said[1]
    assert "'slow.txt'" in said[2] and "could not be read in time" in said[2]
    assert "'after.txt'" in said[3] and "could not be read in time" in said[3]


async def test_attachments_past_the_text_budget_are_not_read(http, agentmail: FakeAgentMail):
    from capabilities.email.activities.attachments import MAX_TEXT_CHARS, MAX_TOTAL_CHARS

    event = received(agentmail)
    files = MAX_TOTAL_CHARS // MAX_TEXT_CHARS + 1
    for n in range(files):
        agentmail.attach(event, f"f{n}.txt", b"y" * MAX_TEXT_CHARS, "text/plain")
    origin = EmailOrigin(
        inbox_id=INBOX,
        thread_id="thr_1",
        message_id="<m1@example.com>",
        sender="bob@example.com",
        attachments=[
            EmailAttachment(
                attachment_id=a["attachment_id"], filename=a["filename"], content_type="text/plain"
            )
            for a in event["message"]["attachments"]
        ],
    )
    agentmail.downloads.clear()
    said = [m.content for m in await read_attachments(settings(agentmail), http, origin)]
    assert "text limit is spent" in said[-1] and all("says:" in s for s in said[:-1])
    assert len(agentmail.downloads) == files - 1  # the last one is not fetched at all


async def test_the_approver_sees_exactly_what_is_sent_even_past_the_length_limit(
    http, agentmail: FakeAgentMail
):
    from capabilities.email.activities.reply import MAX_REPLY_CHARS
    from capabilities.email.workflow import reply_text

    shown = reply_text("word " * MAX_REPLY_CHARS)  # what the approval shows
    assert len(shown) < MAX_REPLY_CHARS + 20 and shown.endswith("[… cut]")
    received(agentmail)
    acts = EmailReplyActivities(settings(agentmail), http)
    await ActivityEnvironment().run(acts.reply, reply(text=shown, idempotency_key="key-long"))
    [sent] = agentmail.replies
    assert sent.body["text"] == shown
