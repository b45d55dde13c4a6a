"""Composio, email, Slack history and file tools, run for real against local fake servers
(Composio v3, AgentMail v0, Slack Web API) through Temporal's ActivityEnvironment."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from capabilities.tools.activities.composio import ComposioActivities
from capabilities.tools.activities.documents import markdown_to_html
from capabilities.tools.activities.email import EmailActivities
from capabilities.tools.activities.files import FileActivities
from capabilities.tools.activities.slack_history import SlackHistoryActivities
from capabilities.tools.contracts import ToolRequest
from lucy.contracts.errors import ErrorType
from lucy.settings import ToolSettings
from tests.fakes.agentmail import FakeAgentMail
from tests.fakes.composio import FakeComposio
from tests.fakes.slack import FakeSlack

CHANNEL = "C0REPORTS"
THREAD = "1700000000.000001"


@pytest.fixture(scope="module")
async def _composio() -> AsyncIterator[FakeComposio]:
    server = FakeComposio()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def composio(_composio: FakeComposio) -> FakeComposio:
    _composio.reset()
    return _composio


@pytest.fixture
def agentmail(fake_agentmail: FakeAgentMail) -> FakeAgentMail:
    return fake_agentmail


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def slack(fake_slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake_slack.token, base_url=fake_slack.api_url, timeout=5, retry_handlers=[])


def tool_settings(**overrides: Any) -> ToolSettings:
    return ToolSettings.model_validate(overrides)


def request(tool: str, step: int = 3, **arguments: Any) -> ToolRequest:
    return ToolRequest(
        workflow_id="lucy-task-T1-C0REPORTS-1700000000.000001",
        step=step,
        tool=tool,
        arguments=arguments,
        workspace_id="ws-123",
        slack_channel_id=CHANNEL,
        thread_ts=THREAD,
        slack_user_id="U0ALICE",
    )


def env(attempt: int = 1) -> ActivityEnvironment:
    e = ActivityEnvironment()
    e.info = dataclasses.replace(e.info, attempt=attempt)
    return e


async def fails(coro: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await coro
    return caught.value


# --------------------------------------------------------------------------- Composio


def composio_acts(http: httpx.AsyncClient, fake: FakeComposio, key: str | None = None) -> ComposioActivities:
    settings = tool_settings(composio_api_key=key or fake.api_key, composio_base_url=fake.base_url)
    return ComposioActivities(http, settings)


async def test_composio_acts_as_the_requester_never_a_colleague(http, composio: FakeComposio):
    composio.results["GITHUB_CREATE_ISSUE"] = {
        "data": {"number": 42, "html_url": "https://github.com/o/r/issues/42"}
    }
    acts = composio_acts(http, composio)
    result = await env().run(
        acts.execute,
        request(
            "composio_execute",
            action="github_create_issue",
            arguments={"owner": "o", "repo": "r", "title": "Bug"},
        ),
    )
    assert result.ok and '"number": 42' in result.output and not result.truncated
    [call] = composio.calls
    assert call.slug == "GITHUB_CREATE_ISSUE" and call.api_key == composio.api_key
    # One Composio user per person (workspace + Slack user); the account is resolved by Composio.
    assert call.body == {
        "arguments": {"owner": "o", "repo": "r", "title": "Bug"},
        "user_id": "lucy:ws-123:U0ALICE",
    }
    bob = dataclasses.replace(
        request("composio_execute", action="GITHUB_CREATE_ISSUE"), slack_user_id="U0BOB"
    )
    await env().run(acts.execute, bob)
    assert composio.calls[-1].body["user_id"] == "lucy:ws-123:U0BOB"


async def test_composio_refuses_a_connected_account_chosen_by_the_model(http, composio: FakeComposio):
    err = await fails(
        env().run(
            composio_acts(http, composio).execute,
            request("composio_execute", action="GMAIL_SEND_EMAIL", connected_account_id="ca_colleague"),
        )
    )
    assert err.type == ErrorType.TOOL_REJECTED and err.non_retryable
    assert "connected_account_id" in err.message and composio.calls == []
    nobody = dataclasses.replace(request("composio_execute", action="GMAIL_SEND_EMAIL"), slack_user_id="")
    err = await fails(env().run(composio_acts(http, composio).execute, nobody))
    assert err.type == ErrorType.TOOL_REJECTED and composio.calls == []


async def test_composio_unsuccessful_action_is_reported_to_the_model(http, composio: FakeComposio):
    composio.results["GITHUB_CREATE_ISSUE"] = {"successful": False, "error": "Repository o/r not found"}
    result = await env().run(
        composio_acts(http, composio).execute, request("composio_execute", action="GITHUB_CREATE_ISSUE")
    )
    assert result.ok is False
    assert "Repository o/r not found" in result.output and "GITHUB_CREATE_ISSUE" in result.output


async def test_composio_large_output_is_truncated(http, composio: FakeComposio):
    composio.results["GMAIL_FETCH_EMAILS"] = {"data": {"messages": ["x" * 100 for _ in range(200)]}}
    result = await env().run(
        composio_acts(http, composio).execute, request("composio_execute", action="GMAIL_FETCH_EMAILS")
    )
    assert result.truncated and len(result.output) < 6_200 and "characters omitted" in result.output


async def test_composio_wrong_key_is_not_configured_and_never_echoed(http, composio: FakeComposio):
    err = await fails(
        env().run(
            composio_acts(http, composio, key="ak_wrong_secret_999").execute,
            request("composio_execute", action="SLACK_SEND_MESSAGE"),
        )
    )
    assert err.type == ErrorType.TOOL_NOT_CONFIGURED and err.non_retryable
    assert "401" in err.message and "ak_wrong_secret_999" not in str(err)
    assert composio.calls[0].api_key == "ak_wrong_secret_999"


async def test_composio_rate_limit_and_server_errors_are_retryable(http, composio: FakeComposio):
    acts = composio_acts(http, composio)
    composio.fail(429, retry_after=7, message="Rate limit exceeded")
    err = await fails(env().run(acts.execute, request("composio_execute", action="GITHUB_LIST_REPOS")))
    assert err.type == ErrorType.TOOL_RETRYABLE and not err.non_retryable
    assert err.next_retry_delay == timedelta(seconds=7) and "Rate limit exceeded" in err.message
    composio.fail(502)
    err = await fails(env().run(acts.execute, request("composio_execute", action="GITHUB_LIST_REPOS")))
    assert err.type == ErrorType.TOOL_RETRYABLE and err.next_retry_delay is None


async def test_composio_unknown_or_malformed_action_is_rejected(http, composio: FakeComposio):
    acts = composio_acts(http, composio)
    err = await fails(env().run(acts.execute, request("composio_execute", action="create an issue please")))
    assert err.type == ErrorType.TOOL_REJECTED and err.non_retryable and "slug" in err.message
    err = await fails(env().run(acts.execute, request("composio_execute", action="GITHUB_X", arguments=[1])))
    assert err.type == ErrorType.TOOL_REJECTED and "arguments" in err.message
    assert composio.calls == []
    composio.known_slugs = {"GITHUB_CREATE_ISSUE"}
    err = await fails(env().run(acts.execute, request("composio_execute", action="GITHUB_NOPE")))
    assert err.type == ErrorType.TOOL_REJECTED and "GITHUB_NOPE" in err.message and "not found" in err.message


async def test_composio_without_key_is_not_configured(http, composio: FakeComposio):
    acts = ComposioActivities(http, tool_settings(composio_base_url=composio.base_url))
    err = await fails(env().run(acts.execute, request("composio_execute", action="GITHUB_CREATE_ISSUE")))
    assert err.type == ErrorType.TOOL_NOT_CONFIGURED and err.non_retryable
    assert "LUCY_COMPOSIO_API_KEY" in err.message and composio.calls == []


async def test_composio_unreachable_is_retryable(http):
    acts = ComposioActivities(
        http, tool_settings(composio_api_key="ak_x", composio_base_url="http://127.0.0.1:9/api/v3")
    )
    err = await fails(env().run(acts.execute, request("composio_execute", action="GITHUB_CREATE_ISSUE")))
    assert err.type == ErrorType.TOOL_RETRYABLE and "unreachable" in err.message


# --------------------------------------------------------------------------- email


def email_acts(http: httpx.AsyncClient, fake: FakeAgentMail, **overrides: Any) -> EmailActivities:
    settings: dict[str, Any] = {
        "agentmail_api_key": fake.api_key,
        "agentmail_base_url": fake.base_url,
        "agentmail_enabled": True,
        "agentmail_domain": "agentmail.to",
    }
    settings.update(overrides)
    return EmailActivities(http, tool_settings(**settings))


async def test_email_is_sent_from_lucys_inbox_once_per_step(http, agentmail: FakeAgentMail):
    acts = email_acts(http, agentmail)
    send = request(
        "send_email",
        to="ana@example.com, Bob <bob@example.org>",
        subject="Weekly\nreport",
        text="Hello",
        html="<p>Hello</p>",
    )
    result = await env().run(acts.send, send)
    assert result.ok and "<msg-" in result.output and "ana@example.com" in result.output
    [sent] = agentmail.sent
    assert sent.inbox_id == "lucy@agentmail.to"
    assert sent.body == {
        "to": ["ana@example.com", "Bob <bob@example.org>"],
        "subject": "Weekly report",
        "text": "Hello",
        "html": "<p>Hello</p>",
    }
    assert sent.idempotency_key
    # A retry of the same step (its response was lost) carries the same key: sent once.
    again = await env(attempt=2).run(acts.send, send)
    assert len(agentmail.sent) == 1 and again.output == result.output
    # The next step is another email.
    await env().run(acts.send, dataclasses.replace(send, step=4))
    assert len(agentmail.sent) == 2 and agentmail.sent[1].idempotency_key != sent.idempotency_key


async def test_email_disabled_or_without_key_is_not_configured(http, agentmail: FakeAgentMail):
    send = request("send_email", to="ana@example.com", subject="s", text="t")
    for acts in (
        email_acts(http, agentmail, agentmail_enabled=False),
        email_acts(http, agentmail, agentmail_api_key=None),
    ):
        err = await fails(env().run(acts.send, send))
        assert err.type == ErrorType.TOOL_NOT_CONFIGURED and err.non_retryable
    assert agentmail.requests == []


async def test_email_refusals_are_rejected_and_limits_retryable(http, agentmail: FakeAgentMail):
    acts = email_acts(http, agentmail)
    send = request("send_email", to="ana@example.com", subject="s", text="t")
    agentmail.fail(422, name="UnprocessableError", message="Recipient is on the suppression list")
    err = await fails(env().run(acts.send, send))
    assert err.type == ErrorType.TOOL_REJECTED and err.non_retryable
    assert "422" in err.message and "suppression list" in err.message
    agentmail.fail(429, retry_after=5, name="RateLimitError", message="Too many requests")
    err = await fails(env().run(acts.send, send))
    assert err.type == ErrorType.TOOL_RETRYABLE and err.next_retry_delay == timedelta(seconds=5)
    agentmail.fail(500)
    err = await fails(env().run(acts.send, send))
    assert err.type == ErrorType.TOOL_RETRYABLE
    assert agentmail.sent == []


async def test_email_bad_arguments_and_bad_key(http, agentmail: FakeAgentMail):
    acts = email_acts(http, agentmail)
    for args, words in (
        ({"to": "not-an-address", "subject": "s", "text": "t"}, "not an email address"),
        ({"to": "a@b.co", "subject": " ", "text": "t"}, "subject"),
        ({"to": "a@b.co", "subject": "s"}, "text"),
        ({"to": ["a@b.co", 3], "subject": "s", "text": "t"}, "'to'"),
    ):
        err = await fails(env().run(acts.send, request("send_email", **args)))
        assert err.type == ErrorType.TOOL_REJECTED and words in err.message, (args, err.message)
    assert agentmail.requests == []
    err = await fails(
        env().run(
            email_acts(http, agentmail, agentmail_api_key=SecretStr("am_wrong_key_777")).send,
            request("send_email", to="a@b.co", subject="s", text="t"),
        )
    )
    assert err.type == ErrorType.TOOL_NOT_CONFIGURED and "am_wrong_key_777" not in str(err)


async def test_email_to_an_inbox_that_does_not_exist(http, agentmail: FakeAgentMail):
    acts = email_acts(http, agentmail, agentmail_domain="mail.example.com")
    err = await fails(env().run(acts.send, request("send_email", to="a@b.co", subject="s", text="t")))
    assert err.type == ErrorType.TOOL_NOT_CONFIGURED and "lucy@mail.example.com" in err.message
    assert agentmail.requests[0]["inbox_id"] == "lucy@mail.example.com"


# --------------------------------------------------------------------------- Slack history


def seed_conversation(fake: FakeSlack) -> dict[str, str]:
    ts = {}
    ts["parent"] = fake.add_message(CHANNEL, "Can someone send the Q3 budget?", user="U0ALICE")
    ts["reply1"] = fake.add_message(
        CHANNEL, "The BUDGET draft is in the drive", user="U0BOB", thread_ts=ts["parent"]
    )
    ts["reply2"] = fake.add_message(CHANNEL, "thanks!", user="U0ALICE", thread_ts=ts["parent"])
    ts["other"] = fake.add_message(CHANNEL, "Lunch at noon? budget is tight", user="U0CAROL")
    ts["elsewhere"] = fake.add_message("C0OTHER", "budget budget budget", user="U0DAVE")
    return ts


async def test_slack_history_searches_the_thread(fake_slack: FakeSlack, slack: AsyncWebClient):
    ts = seed_conversation(fake_slack)
    acts = SlackHistoryActivities(slack)
    req = dataclasses.replace(
        request("slack_history", query="budget", scope="thread"), thread_ts=ts["parent"]
    )
    result = await env().run(acts.search, req)
    lines = result.output.splitlines()
    assert lines[0] == "2 message(s) from this thread matching 'budget':"
    assert lines[1].endswith("U0ALICE: Can someone send the Q3 budget?")
    assert lines[2].endswith("U0BOB: The BUDGET draft is in the drive")
    assert lines[1].startswith("[2023-11-14 22:") and " UTC] " in lines[1]  # ts 17000000xx as UTC
    assert "Lunch" not in result.output and "thanks" not in result.output
    [call] = fake_slack.calls_to("conversations.replies")
    assert call.params["channel"] == CHANNEL and call.params["ts"] == ts["parent"]


async def test_slack_history_searches_the_channel_newest_first_within_limit(
    fake_slack: FakeSlack, slack: AsyncWebClient
):
    seed_conversation(fake_slack)
    acts = SlackHistoryActivities(slack)
    result = await env().run(acts.search, request("slack_history", query="Budget IS", limit=1))
    assert result.output.splitlines()[1:] == [result.output.splitlines()[1]]
    assert result.output.splitlines()[1].endswith("U0CAROL: Lunch at noon? budget is tight")
    everything = await env().run(acts.search, request("slack_history"))
    assert everything.output.startswith("4 message(s) from this channel:")
    assert "budget budget budget" not in everything.output  # another channel
    none = await env().run(acts.search, request("slack_history", query="invoice"))
    assert none.output.startswith("No messages matching 'invoice' in this channel")


async def test_slack_history_errors(fake_slack: FakeSlack, slack: AsyncWebClient):
    acts = SlackHistoryActivities(slack)
    fake_slack.fail("conversations.history", status=429, retry_after=3)
    err = await fails(env().run(acts.search, request("slack_history")))
    assert err.type == ErrorType.TOOL_RETRYABLE and err.next_retry_delay == timedelta(seconds=3)
    fake_slack.fail("conversations.history", error="not_in_channel")
    err = await fails(env().run(acts.search, request("slack_history")))
    assert err.type == ErrorType.TOOL_REJECTED and err.non_retryable and "not_in_channel" in err.message
    err = await fails(env().run(acts.search, request("slack_history", limit=500)))
    assert err.type == ErrorType.TOOL_REJECTED and "limit" in err.message
    err = await fails(
        env().run(acts.search, dataclasses.replace(request("slack_history", scope="thread"), thread_ts=""))
    )
    assert err.type == ErrorType.TOOL_REJECTED and "thread" in err.message
    err = await fails(env().run(SlackHistoryActivities(None).search, request("slack_history")))
    assert err.type == ErrorType.TOOL_NOT_CONFIGURED


# --------------------------------------------------------------------------- files


def shared_one(fake: FakeSlack) -> dict[str, Any]:
    [shared] = fake.shared_files()
    assert shared["channel"] == CHANNEL and shared["thread_ts"] == THREAD
    return shared


async def test_csv_is_built_and_uploaded_to_the_thread(fake_slack: FakeSlack, slack: AsyncWebClient):
    rows = [["name", "amount", "note"], ["Ana", 12.5, '=HYPERLINK("http://x")'], ["Bob", -3, None]]
    result = await env().run(
        FileActivities(slack).create, request("create_file", format="csv", filename="q3/report", rows=rows)
    )
    assert result.ok and result.output == "Uploaded report.csv (2 rows) to the thread"
    shared = shared_one(fake_slack)
    assert result.state == {"file_id": shared["id"]}
    assert (
        shared["title"] == "report.csv"
        and shared["name"].startswith("report-")
        and shared["name"].endswith(".csv")
    )
    parsed = list(csv.reader(io.StringIO(shared["content"].decode("utf-8"))))
    assert parsed == [
        ["name", "amount", "note"],
        ["Ana", "12.5", '\'=HYPERLINK("http://x")'],
        ["Bob", "-3", ""],
    ]
    # The share is a message of the thread, as Slack shows it.
    thread = fake_slack._thread(CHANNEL, THREAD, False)
    assert [f["id"] for m in thread for f in m.get("files", [])] == [shared["id"]]


async def test_xlsx_has_a_bold_header_and_typed_cells(fake_slack: FakeSlack, slack: AsyncWebClient):
    rows = [
        ["Region", "Revenue", "Formula?"],
        ["EMEA", 1200, "=SUM(B2:B3)"],
        ["APAC", 950.5, "ok"],
        ["US", 3, ""],
    ]
    result = await env().run(
        FileActivities(slack).create,
        request("create_file", format="xlsx", filename="sales.xlsx", title="Q3 sales", rows=rows),
    )
    assert result.output == "Uploaded sales.xlsx (3 rows) to the thread"
    shared = shared_one(fake_slack)
    assert shared["title"] == "Q3 sales"
    ws = load_workbook(io.BytesIO(shared["content"])).active
    assert ws is not None
    assert [c.value for c in ws[1]] == ["Region", "Revenue", "Formula?"]
    assert all(c.font.bold for c in ws[1]) and not ws["A2"].font.bold
    assert ws["B2"].value == 1200 and ws["B3"].value == 950.5
    assert ws["C2"].value == "=SUM(B2:B3)" and ws["C2"].data_type == "s"  # text, not a formula
    assert ws.freeze_panes == "A2" and ws.title == "Q3 sales"
    assert ws.column_dimensions["A"].width >= 8


async def test_pdf_is_rendered_without_fetching_urls(fake_slack: FakeSlack, slack: AsyncWebClient):
    content = (
        "# Findings\n\nRevenue grew **12%**.\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "<script>x</script>"
    )
    result = await env().run(
        FileActivities(slack).create,
        request("create_file", format="pdf", filename="findings", content=content),
    )
    assert result.output == "Uploaded findings.pdf (1 page) to the thread"
    assert shared_one(fake_slack)["content"].startswith(b"%PDF")
    # Simple HTML from the model: an image pointing at a URL is never fetched.
    fake_slack.reset()
    html_content = f'<h1>Hi</h1><p>x</p><img src="{fake_slack.api_url}auth.test">'
    result = await env().run(
        FileActivities(slack).create,
        request("create_file", step=9, format="pdf", filename="hi.pdf", title="Hi", content=html_content),
    )
    assert shared_one(fake_slack)["content"].startswith(b"%PDF")
    assert fake_slack.calls_to("auth.test") == []


def test_markdown_is_escaped():
    out = markdown_to_html("# T <b>\n\nuse `x<y` and **bold** <script>alert(1)</script>\n\n1. a\n2. b")
    assert "<h1>T &lt;b&gt;</h1>" in out and "<code>x&lt;y</code>" in out and "<strong>bold</strong>" in out
    assert "<script>" not in out and "<ol><li>a</li><li>b</li></ol>" in out.replace("\n", "")


async def test_a_retry_after_a_lost_response_does_not_upload_twice(
    fake_slack: FakeSlack, slack: AsyncWebClient
):
    acts = FileActivities(slack)
    req = request("create_file", format="csv", filename="data.csv", rows=[["a"], ["1"]])
    # The share happens, but its response is lost.
    fake_slack.fail("files.completeUploadExternal", status=500, apply_then_fail=True)
    err = await fails(env().run(acts.create, req))
    assert err.type == ErrorType.TOOL_RETRYABLE
    first = shared_one(fake_slack)
    result = await env(attempt=2).run(acts.create, req)
    assert result.state == {"file_id": first["id"]} and len(fake_slack.shared_files()) == 1
    assert len(fake_slack.calls_to("files.getUploadURLExternal")) == 1
    # Another step's file of the same name is not mistaken for this one: it is uploaded.
    other = await env(attempt=2).run(acts.create, dataclasses.replace(req, step=req.step + 1))
    assert other.state["file_id"] != first["id"] and len(fake_slack.shared_files()) == 2


async def test_a_failed_byte_upload_is_retryable(fake_slack: FakeSlack, slack: AsyncWebClient):
    fake_slack.fail("upload", status=503)
    err = await fails(
        env().run(
            FileActivities(slack).create, request("create_file", format="csv", filename="a", rows=[["x"]])
        )
    )
    assert err.type == ErrorType.TOOL_RETRYABLE and "http" not in err.message
    assert fake_slack.shared_files() == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ({"format": "docx", "filename": "a"}, "format"),
        ({"format": "csv", "filename": "a"}, "rows"),
        ({"format": "csv", "filename": "a", "rows": ["not a row"]}, "row 0"),
        ({"format": "xlsx", "filename": "a", "rows": [[{"x": 1}]]}, "not text or a number"),
        ({"format": "pdf", "filename": "a", "rows": [["x"]]}, "content"),
        ({"format": "csv", "filename": "", "rows": [["x"]]}, "filename"),
        ({"format": "csv", "filename": "big", "rows": [["x" * 30_000] for _ in range(200)]}, "MB"),
    ],
)
async def test_bad_file_arguments_are_rejected(
    fake_slack: FakeSlack, slack: AsyncWebClient, args: dict[str, Any], words: str
):
    err = await fails(env().run(FileActivities(slack).create, request("create_file", **args)))
    assert err.type == ErrorType.TOOL_REJECTED and err.non_retryable and words in err.message, err.message
    assert fake_slack.calls == []


async def test_files_without_slack_are_not_configured():
    err = await fails(
        env().run(
            FileActivities(None).create, request("create_file", format="csv", filename="a", rows=[["x"]])
        )
    )
    assert err.type == ErrorType.TOOL_NOT_CONFIGURED


def test_markdown_to_html_takes_linear_time_on_unclosed_markup():
    """The PDF's Markdown-ish conversion ran in quadratic time on unclosed bold or italics (40 KB
    of ``**a `` took 12 s): the same hostile content must now take milliseconds per kilobyte."""
    import time

    for chunk in ("**a ", "*a ", "_a ", "`a ", "~~a "):
        text = chunk * 25_000  # 75-100 KB on one line
        started = time.perf_counter()
        markdown_to_html(text)
        per_kb = (time.perf_counter() - started) / (len(text) / 1024)
        assert per_kb < 0.02, f"{chunk!r}: {per_kb * 1000:.1f} ms per KB"
