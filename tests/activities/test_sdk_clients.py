"""The official SDKs (agentmail, composio_client) against the local fakes: the SDK is what speaks
(its headers, its paths), its own retries are off (one request per attempt, Temporal retries),
and its errors become Lucy's error types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from capabilities.email.activities.agentmail_sdk import NO_RETRIES, agentmail_client, map_agentmail_error
from capabilities.email.agentmail import agentmail_environment
from capabilities.tools.activities.composio import ComposioActivities, composio_origin
from capabilities.tools.activities.email import EmailActivities
from capabilities.tools.contracts import ToolRequest
from lucy.contracts.errors import ErrorType
from lucy.settings import ToolSettings
from tests.fakes.agentmail import FakeAgentMail
from tests.fakes.composio import FakeComposio


@pytest.fixture(scope="module")
async def servers() -> AsyncIterator[tuple[FakeAgentMail, FakeComposio]]:
    mail, composio = FakeAgentMail(), FakeComposio()
    await mail.start()
    await composio.start()
    yield mail, composio
    await mail.stop()
    await composio.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def _request(tool: str, **arguments: Any) -> ToolRequest:
    return ToolRequest(
        workflow_id="lucy-task-T1-C0SDK-1700000000.000009",
        step=2,
        tool=tool,
        arguments=arguments,
        workspace_id="ws-sdk",
        slack_channel_id="C0SDK",
        thread_ts="1700000000.000009",
        slack_user_id="U0ALICE",
    )


async def _fails(coro: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await coro
    return caught.value


def _mail_settings(fake: FakeAgentMail) -> ToolSettings:
    return ToolSettings.model_validate(
        {"agentmail_api_key": fake.api_key, "agentmail_base_url": fake.base_url, "agentmail_enabled": True}
    )


def test_environment_keeps_the_documented_base_url():
    prod = agentmail_environment("https://api.agentmail.to/v0")
    assert (prod.http, prod.websockets) == ("https://api.agentmail.to", "wss://ws.agentmail.to")
    local = agentmail_environment("http://127.0.0.1:4010/v0")
    assert (local.http, local.websockets) == ("http://127.0.0.1:4010", "ws://127.0.0.1:4010")
    assert composio_origin("https://backend.composio.dev/api/v3") == "https://backend.composio.dev"


async def test_agentmail_send_goes_through_the_sdk_once_per_attempt(servers, http):
    mail, _ = servers
    mail.reset()
    acts = EmailActivities(http, _mail_settings(mail))
    send = _request("send_email", to="ana@example.com", subject="Hi", text="Hello")
    mail.fail(503, message="upstream down")
    err = await _fails(ActivityEnvironment().run(acts.send, send))
    assert err.type == ErrorType.TOOL_RETRYABLE and not err.non_retryable and "503" in err.message
    assert len(mail.requests) == 1  # the SDK did not retry on its own
    mail.fail(429, retry_after=9, name="RateLimitError", message="slow down")
    err = await _fails(ActivityEnvironment().run(acts.send, send))
    assert err.type == ErrorType.TOOL_RETRYABLE and err.next_retry_delay == timedelta(seconds=9)
    assert len(mail.requests) == 2 and mail.sent == []
    result = await ActivityEnvironment().run(acts.send, send)
    assert result.ok and len(mail.sent) == 1
    headers = mail.requests[-1]["headers"]
    assert (
        headers["X-Fern-SDK-Name"] == "agentmail"
        and headers["Idempotency-Key"] == mail.sent[0].idempotency_key
    )
    # The three attempts carried the same key: a lost response is answered from AgentMail's record.
    assert len({r["headers"]["Idempotency-Key"] for r in mail.requests}) == 1


async def test_agentmail_factory_and_error_mapping_for_other_callers(servers, http):
    mail, _ = servers
    mail.reset()
    settings = SimpleNamespace(tools=_mail_settings(mail))  # a Settings-like object: its tools group
    client = agentmail_client(settings, http=http)
    sent = await client.inboxes.messages.send(
        "lucy@agentmail.to", to=["bob@example.com"], subject="s", text="t", request_options=NO_RETRIES
    )
    assert sent.message_id and mail.sent[0].body["to"] == ["bob@example.com"]
    with pytest.raises(Exception) as caught:
        await client.inboxes.messages.send(
            "nobody@agentmail.to", to=["b@c.de"], text="t", request_options=NO_RETRIES
        )
    err = map_agentmail_error(caught.value, what="AgentMail reply")
    assert err.type == ErrorType.TOOL_REJECTED and err.non_retryable and "not found" in err.message
    err = map_agentmail_error(caught.value, not_found="no inbox")
    assert err.type == ErrorType.TOOL_NOT_CONFIGURED
    with pytest.raises(ApplicationError) as refused:
        agentmail_client(ToolSettings.model_validate({"agentmail_enabled": True}))
    assert refused.value.type == ErrorType.TOOL_NOT_CONFIGURED


async def test_composio_goes_through_the_sdk_once_per_attempt(servers, http):
    _, composio = servers
    composio.reset()
    settings = ToolSettings.model_validate(
        {"composio_api_key": composio.api_key, "composio_base_url": composio.base_url}
    )
    acts = ComposioActivities(http, settings)
    call = _request("composio_execute", action="GITHUB_LIST_REPOS")
    composio.fail(500, message="internal")
    err = await _fails(ActivityEnvironment().run(acts.execute, call))
    assert err.type == ErrorType.TOOL_RETRYABLE and "500" in err.message and "internal" in err.message
    assert len(composio.calls) == 1  # max_retries=0: Temporal retries, not the client
    composio.fail(429, retry_after=4, message="Rate limit exceeded")
    err = await _fails(ActivityEnvironment().run(acts.execute, call))
    assert err.type == ErrorType.TOOL_RETRYABLE and err.next_retry_delay == timedelta(seconds=4)
    assert len(composio.calls) == 2
    composio.fail(400, message="Validation error while processing request")
    err = await _fails(ActivityEnvironment().run(acts.execute, call))
    assert err.type == ErrorType.TOOL_REJECTED and err.non_retryable and "Validation error" in err.message
    result = await ActivityEnvironment().run(acts.execute, call)
    assert result.ok and composio.calls[-1].body == {"arguments": {}, "user_id": "lucy:ws-sdk:U0ALICE"}
