"""The gateway and browser tool activities, run for real (ActivityEnvironment) against local
fakes speaking OpenClaw's ``/tools/invoke`` and CamoFox's tabs API.

The egress guard resolves through a fixed table (:data:`DNS`), never real DNS: the test sites
are public names with public addresses. The fakes listen on 127.0.0.1, but they are the tool
*servers*, not the URLs the tools open, so the guard never sees their address."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from capabilities.tools.activities.browser import BrowserActivities
from capabilities.tools.activities.camofox import PAGE_CHANGED
from capabilities.tools.activities.gateway import GatewayActivities
from capabilities.tools.activities.liveness import BEAT_EVERY_S
from capabilities.tools.contracts import TOOL_OUTPUT_LIMIT, ToolRequest, ToolResult
from capabilities.tools.egress import EGRESS_DENIED, EgressGuard, StaticResolver
from lucy.contracts.errors import ErrorType
from lucy.settings import ToolSettings
from tests.fakes.camofox import FakeCamoFox, Page
from tests.fakes.gateway import FakeGateway

POLL = 0.05  # seconds between exec polls in these tests
PUBLIC = "93.184.215.14"
DNS = {
    "example.com": [PUBLIC],
    "example.org": [PUBLIC],
    "rebind.example.net": ["10.0.0.5"],  # a public name pointing inside (DNS rebinding style)
}
GUARD = EgressGuard(StaticResolver(DNS))


@pytest.fixture(scope="module")
async def _gateway_server() -> AsyncIterator[FakeGateway]:
    fake = FakeGateway()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(scope="module")
async def _camofox_server() -> AsyncIterator[FakeCamoFox]:
    fake = FakeCamoFox()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def gateway(_gateway_server: FakeGateway) -> FakeGateway:
    _gateway_server.reset()
    return _gateway_server


@pytest.fixture
def camofox(_camofox_server: FakeCamoFox) -> FakeCamoFox:
    _camofox_server.reset()
    return _camofox_server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def tool_settings(gateway: FakeGateway, camofox: FakeCamoFox | None = None, **overrides: Any) -> ToolSettings:
    values: dict[str, Any] = {
        "openclaw_base_url": gateway.base_url,
        "openclaw_api_key": SecretStr(gateway.api_key),
        "camofox_url": camofox.base_url if camofox else "http://127.0.0.1:9",
        "camofox_api_key": None,
    }
    values.update(overrides)
    return ToolSettings(**values)


def req(
    tool: str, state: dict[str, str] | None = None, *, user: str = "U-ANA", **arguments: Any
) -> ToolRequest:
    return ToolRequest(
        workflow_id="lucy-task-T1-C1-1700000000.000100",
        step=3,
        tool=tool,
        arguments=arguments,
        workspace_id="ws-1",
        state=state or {},
        slack_user_id=user,
    )


async def run_gateway(
    http: httpx.AsyncClient,
    settings: ToolSettings,
    request: ToolRequest,
    env: ActivityEnvironment | None = None,
) -> ToolResult:
    acts = GatewayActivities(http, settings, egress=GUARD, poll_interval=POLL)
    return await (env or ActivityEnvironment()).run(acts.invoke, request)


async def gateway_error(
    http: httpx.AsyncClient, settings: ToolSettings, request: ToolRequest
) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await run_gateway(http, settings, request)
    return info.value


# --------------------------------------------------------------------------- exec


async def test_exec_completed_returns_the_output(http: httpx.AsyncClient, gateway: FakeGateway):
    gateway.then_exec(output="total 8\ndrwxr-xr-x  lucy  .\n")
    result = await run_gateway(http, tool_settings(gateway), req("exec", command="ls -la", workdir="/srv"))
    assert result.ok is True
    assert result.output == "total 8\ndrwxr-xr-x  lucy  ."
    assert result.truncated is False
    assert gateway.commands() == ["ls -la"]
    sent = gateway.requests[0]
    assert sent["authorization"] == f"Bearer {gateway.api_key}"
    assert sent["body"]["tool"] == "exec"
    args = sent["body"]["args"]
    assert args["workdir"] == "/srv"
    assert args["timeout"] > 0  # always bounded: a backgrounded command has no timeout otherwise


async def test_exec_failure_is_reported_to_the_model_with_the_exit_code(
    http: httpx.AsyncClient, gateway: FakeGateway
):
    gateway.then_exec(status="failed", output="grep: nothing.txt: No such file or directory", exit_code=2)
    result = await run_gateway(http, tool_settings(gateway), req("exec", command="grep x nothing.txt"))
    assert result.ok is False
    assert result.output.count("No such file or directory") == 1
    assert "exit code 2" in result.output


async def test_a_running_command_is_polled_until_it_completes_with_heartbeats(
    http: httpx.AsyncClient, gateway: FakeGateway
):
    gateway.then_exec(status="running", chunks=["step 1\n", "step 2\n", "done\n"], polls_until_done=2)
    env = ActivityEnvironment()
    beats: list[tuple[Any, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    result = await run_gateway(http, tool_settings(gateway), req("exec", command="make build"), env)
    assert result.ok is True
    assert result.output == "step 1\nstep 2\ndone"
    polls = gateway.invoked("process")
    assert [p["action"] for p in polls] == ["poll", "poll"]
    session_id = polls[0]["sessionId"]
    assert session_id.startswith("sess-")
    assert len(beats) >= 2
    assert beats[-1] == (session_id,)  # the session id is heartbeated so a retry can resume it
    assert gateway.commands() == ["make build"]


async def test_background_beats_between_polls_keep_the_session_id(
    http: httpx.AsyncClient, gateway: FakeGateway
):
    """Polls further apart than the liveness beats: Temporal keeps only the newest heartbeat,
    so every beat after the session started must carry its id (never an empty one)."""
    gateway.then_exec(status="running", chunks=["a\n", "b\n"], polls_until_done=2)
    env = ActivityEnvironment()
    beats: list[tuple[Any, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    acts = GatewayActivities(http, tool_settings(gateway), egress=GUARD, poll_interval=2.2 * BEAT_EVERY_S)
    result = await env.run(acts.invoke, req("exec", command="make slow"))
    assert result.ok is True
    session_id = gateway.invoked("process")[0]["sessionId"]
    first = beats.index((session_id,))
    assert len(beats) - first >= 5  # the liveness beater beat between the polls too
    assert set(beats[first:]) == {(session_id,)}


async def test_a_worker_that_dies_mid_command_is_resumed_and_the_command_runs_once(gateway: FakeGateway):
    """Attempt 1 starts a long command, then its worker dies between two polls (nothing is
    recorded after that); attempt 2 gets the last recorded heartbeat details, follows the same
    session and the command has run once."""
    gateway.then_exec(status="running", chunks=["1\n", "2\n", "3\n"], polls_until_done=3)
    recorded: list[tuple[Any, ...]] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: recorded.append(details)
    doomed = httpx.AsyncClient()
    acts = GatewayActivities(doomed, tool_settings(gateway), egress=GUARD, poll_interval=2.5 * BEAT_EVERY_S)
    attempt1 = asyncio.create_task(env.run(acts.invoke, req("exec", command="migrate.sh")))
    await asyncio.sleep(3.5 * BEAT_EVERY_S)  # after the first poll and a liveness beat or two
    env.on_heartbeat = lambda *details: None  # the worker is gone: Temporal records nothing more
    await doomed.aclose()  # not even the kill on the way out reaches the gateway
    attempt1.cancel()
    with contextlib.suppress(BaseException):
        await attempt1
    assert gateway.killed == []
    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(retry.info, attempt=2, heartbeat_details=list(recorded[-1]))
    async with httpx.AsyncClient() as http:
        acts = GatewayActivities(http, tool_settings(gateway), egress=GUARD, poll_interval=POLL)
        result = await retry.run(acts.invoke, req("exec", command="migrate.sh"))
    assert result.ok is True
    assert gateway.commands() == ["migrate.sh"]  # run once
    assert result.output == "1\n2\n3"


async def test_a_failed_background_command_reports_its_exit_code(
    http: httpx.AsyncClient, gateway: FakeGateway
):
    gateway.then_exec(
        status="running",
        chunks=["compiling\n", "error: boom\n"],
        polls_until_done=1,
        final_status="failed",
        exit_code=1,
    )
    result = await run_gateway(http, tool_settings(gateway), req("exec", command="make"))
    assert result.ok is False
    assert "error: boom" in result.output
    assert "exit code 1" in result.output


async def test_a_command_still_running_at_its_timeout_returns_what_it_has(
    http: httpx.AsyncClient, gateway: FakeGateway
):
    gateway.then_exec(status="running", chunks=["tick\n"] * 100, polls_until_done=None)
    started = time.monotonic()
    result = await run_gateway(http, tool_settings(gateway), req("exec", command="tail -f log", timeout=0.3))
    assert time.monotonic() - started < 3
    assert result.ok is False
    assert "still running" in result.output
    assert result.output.startswith("tick\ntick")
    assert gateway.invoked("exec")[0]["timeout"] == pytest.approx(0.3)


async def test_cancelling_a_polled_command_reaches_the_activity_and_kills_the_session(
    http: httpx.AsyncClient, gateway: FakeGateway
):
    gateway.then_exec(status="running", chunks=[], polls_until_done=None)
    env = ActivityEnvironment()
    run = asyncio.ensure_future(
        run_gateway(http, tool_settings(gateway), req("exec", command="sleep 600"), env)
    )
    await asyncio.wait_for(gateway.polled.wait(), 3)  # the activity is in its poll loop
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(run, 3)
    session_id = gateway.invoked("process")[0]["sessionId"]
    assert gateway.killed == [session_id]
    assert gateway.commands() == ["sleep 600"]  # received exactly once


async def test_cancelling_during_a_slow_exec_request_reaches_the_activity(
    http: httpx.AsyncClient, gateway: FakeGateway
):
    gateway.then_exec(output="late", delay=5.0)
    env = ActivityEnvironment()
    beats: list[tuple[Any, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    run = asyncio.ensure_future(run_gateway(http, tool_settings(gateway), req("exec", command="slow"), env))
    await asyncio.sleep(0.3)
    env.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(run, 3)
    assert time.monotonic() - started < 1
    assert beats  # heartbeats flowed while the request was in flight
    assert gateway.commands() == ["slow"]


async def test_a_retried_attempt_resumes_the_heartbeated_session_instead_of_rerunning(
    http: httpx.AsyncClient, gateway: FakeGateway
):
    session_id = gateway.start_session("deploy.sh", chunks=["deployed\n"], polls_until_done=1)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=[session_id])
    result = await run_gateway(http, tool_settings(gateway), req("exec", command="deploy.sh"), env)
    assert result.ok is True
    assert result.output == "deployed"
    assert gateway.commands() == []
    assert gateway.invoked("process") == [{"action": "poll", "sessionId": session_id}]


async def test_large_output_is_truncated(http: httpx.AsyncClient, gateway: FakeGateway):
    big = "HEAD" + "x" * 50_000 + "TAIL"
    gateway.then_exec(output=big)
    result = await run_gateway(http, tool_settings(gateway), req("exec", command="cat big"))
    assert result.truncated is True
    assert len(result.output) < TOOL_OUTPUT_LIMIT + 100
    assert result.output.startswith("HEAD") and result.output.endswith("TAIL")
    assert "characters omitted" in result.output


# --------------------------------------------------------------------------- errors


async def test_a_tool_the_gateway_does_not_allow_is_blocked(http: httpx.AsyncClient, gateway: FakeGateway):
    gateway.blocked.add("exec")
    err = await gateway_error(http, tool_settings(gateway), req("exec", command="rm -rf /tmp/x"))
    assert err.type == ErrorType.TOOL_BLOCKED
    assert err.non_retryable is True
    assert err.message == "the gateway does not allow the tool exec"


async def test_a_bad_token_is_rejected_without_leaking_it(http: httpx.AsyncClient, gateway: FakeGateway):
    wrong = "oc-wrong-token-should-never-be-shown"
    err = await gateway_error(
        http, tool_settings(gateway, openclaw_api_key=SecretStr(wrong)), req("exec", command="id")
    )
    assert err.type == ErrorType.TOOL_REJECTED
    assert err.non_retryable is True
    assert "401" in err.message and "token" in err.message
    assert wrong not in str(err) and wrong not in repr(err.details) and wrong not in repr(err.__cause__)
    assert gateway.requests[0]["authorization"] == f"Bearer {wrong}"


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (503, 2), (429, 7)])
async def test_server_errors_and_rate_limits_are_retryable(
    http: httpx.AsyncClient, gateway: FakeGateway, status: int, retry_after: int | None
):
    gateway.fail(status, retry_after=retry_after)
    err = await gateway_error(http, tool_settings(gateway), req("read_file", path="/etc/hostname"))
    assert err.type == ErrorType.TOOL_RETRYABLE
    assert err.non_retryable is False
    assert err.next_retry_delay == (timedelta(seconds=retry_after) if retry_after else None)
    assert str(status) in err.message


async def test_an_unreachable_gateway_is_retryable(http: httpx.AsyncClient, gateway: FakeGateway):
    err = await gateway_error(
        http, tool_settings(gateway, openclaw_base_url="http://127.0.0.1:9"), req("exec", command="id")
    )
    assert err.type == ErrorType.TOOL_RETRYABLE
    assert err.non_retryable is False


async def test_no_token_means_not_configured(http: httpx.AsyncClient, gateway: FakeGateway):
    err = await gateway_error(http, tool_settings(gateway, openclaw_api_key=None), req("exec", command="id"))
    assert err.type == ErrorType.TOOL_NOT_CONFIGURED
    assert err.non_retryable is True
    assert gateway.requests == []


@pytest.mark.parametrize(
    ("tool", "arguments", "mentions"),
    [
        ("exec", {}, "command"),
        ("exec", {"command": "ls", "timeout": "soon"}, "timeout"),
        ("read_file", {"path": 42}, "path"),
        ("write_file", {"path": "/tmp/a"}, "content"),
        ("edit_file", {"path": "/tmp/a", "new_text": "b"}, "old_text"),
        ("web_fetch", {"url": "file:///etc/passwd"}, "http"),
        ("format_disk", {}, "unknown"),
    ],
)
async def test_bad_arguments_are_rejected_before_reaching_the_gateway(
    http: httpx.AsyncClient, gateway: FakeGateway, tool: str, arguments: dict[str, Any], mentions: str
):
    err = await gateway_error(http, tool_settings(gateway), req(tool, **arguments))
    assert err.type == ErrorType.TOOL_REJECTED
    assert err.non_retryable is True
    assert mentions in err.message
    assert gateway.requests == []


# --------------------------------------------------------------------------- files and web


async def test_write_read_edit_round_trip(http: httpx.AsyncClient, gateway: FakeGateway):
    settings = tool_settings(gateway)
    written = await run_gateway(
        http, settings, req("write_file", path="/work/notes.md", content="hello world\n")
    )
    assert written.ok and "12 bytes" in written.output
    assert (
        await run_gateway(http, settings, req("read_file", path="/work/notes.md"))
    ).output == "hello world\n"
    edited = await run_gateway(
        http, settings, req("edit_file", path="/work/notes.md", old_text="world", new_text="Lucy")
    )
    assert edited.ok and "replaced" in edited.output
    assert (
        await run_gateway(http, settings, req("read_file", path="/work/notes.md"))
    ).output == "hello Lucy\n"
    assert gateway.invoked("edit") == [{"path": "/work/notes.md", "oldText": "world", "newText": "Lucy"}]

    err = await gateway_error(
        http, settings, req("edit_file", path="/work/notes.md", old_text="absent", new_text="x")
    )
    assert err.type == ErrorType.TOOL_REJECTED
    assert "Could not find the exact text" in err.message
    err = await gateway_error(http, settings, req("read_file", path="/nope"))
    assert "ENOENT" in err.message


async def test_web_fetch_returns_the_page_text(http: httpx.AsyncClient, gateway: FakeGateway):
    gateway.pages["https://example.com/article"] = ("An article", "First paragraph. " * 50)
    result = await run_gateway(
        http, tool_settings(gateway), req("web_fetch", url="https://example.com/article", max_chars=100)
    )
    assert result.ok is True
    assert result.output.startswith("# An article\nURL: https://example.com/article\n\nFirst paragraph.")
    assert len(result.output.split("\n\n", 1)[1]) == 100
    assert gateway.invoked("web_fetch")[0]["maxChars"] == 100


# --------------------------------------------------------------------------- browser


async def browse(
    http: httpx.AsyncClient,
    camofox: FakeCamoFox,
    state: dict[str, str] | None = None,
    *,
    user: str = "U-ANA",
    **arguments: Any,
) -> ToolResult:
    settings = ToolSettings(camofox_url=camofox.base_url, camofox_api_key=None)
    return await ActivityEnvironment().run(
        BrowserActivities(http, settings, egress=GUARD).browse, req("browser", state, user=user, **arguments)
    )


async def test_open_snapshot_click_type_close(http: httpx.AsyncClient, camofox: FakeCamoFox):
    opened = await browse(http, camofox, action="open", url="https://example.com/")
    assert opened.ok
    tab_id = opened.state["tab_id"]
    assert opened.state["url"] == "https://example.com/"
    assert '- link "Docs" [e1]' in opened.output
    assert camofox.opened == [
        {
            "userId": "ws-1:U-ANA",
            "sessionKey": "lucy-task-T1-C1-1700000000.000100",
            "url": "https://example.com/",
        }
    ]

    snap = await browse(http, camofox, opened.state, action="snapshot")
    assert snap.ok and '- textbox "Search" [e2]' in snap.output
    assert snap.state == opened.state

    clicked = await browse(http, camofox, snap.state, action="click", ref="e1")
    assert clicked.ok
    assert camofox.clicks == [(tab_id, "e1")]
    assert clicked.state == {"tab_id": tab_id, "url": "https://example.com/docs"}
    assert '- heading "Docs"' in clicked.output

    typed = await browse(http, camofox, clicked.state, action="type", ref="e2", text="temporal", submit=True)
    assert typed.ok
    assert camofox.typed == [{"tab": tab_id, "ref": "e2", "text": "temporal", "pressEnter": True}]
    assert typed.state["url"] == "https://example.com/docs?q=temporal"
    assert 'Results for "temporal"' in typed.output

    closed = await browse(http, camofox, typed.state, action="close")
    assert closed.ok and closed.state == {}
    assert camofox.closed == [tab_id]
    assert camofox.tabs == {}


async def test_a_page_change_returns_a_fresh_snapshot(http: httpx.AsyncClient, camofox: FakeCamoFox):
    opened = await browse(http, camofox, action="open", url="https://example.com/")
    camofox.page_changed_on_next_click()
    result = await browse(http, camofox, opened.state, action="click", ref="e1")
    assert result.ok is False
    assert result.output.startswith(PAGE_CHANGED)
    assert '- link "Docs" [e1]' in result.output
    assert camofox.clicks == []
    assert result.state == opened.state


async def test_a_stale_ref_returns_a_fresh_snapshot(http: httpx.AsyncClient, camofox: FakeCamoFox):
    opened = await browse(http, camofox, action="open", url="https://example.com/")
    result = await browse(http, camofox, opened.state, action="click", ref="e9")
    assert result.ok is False
    assert result.output.startswith(PAGE_CHANGED)
    assert "Unknown ref: e9" in result.output


async def test_a_gone_tab_is_reopened_at_the_last_url(http: httpx.AsyncClient, camofox: FakeCamoFox):
    opened = await browse(http, camofox, action="open", url="https://example.com/")
    moved = await browse(http, camofox, opened.state, action="navigate", url="https://example.com/docs")
    old_tab = moved.state["tab_id"]
    camofox.tab_gone_on_next_call()
    result = await browse(http, camofox, moved.state, action="snapshot")
    assert result.ok is True
    assert result.state["tab_id"] != old_tab
    assert result.state["url"] == "https://example.com/docs"
    assert camofox.opened[-1]["url"] == "https://example.com/docs"
    assert '- heading "Docs"' in result.output
    assert set(camofox.tabs) == {result.state["tab_id"]}


async def test_a_click_on_a_gone_tab_reopens_it_and_does_not_click_blind(
    http: httpx.AsyncClient, camofox: FakeCamoFox
):
    opened = await browse(http, camofox, action="open", url="https://example.com/")
    camofox.tabs.clear()  # reaped after inactivity: CamoFox answers 404 Tab not found
    result = await browse(http, camofox, opened.state, action="click", ref="e1")
    assert result.ok is False
    assert result.state["tab_id"] != opened.state["tab_id"]
    assert result.state["url"] == "https://example.com/"
    assert "reopened https://example.com/" in result.output and '- link "Docs" [e1]' in result.output
    assert camofox.clicks == []


async def test_browser_server_errors_are_retryable(http: httpx.AsyncClient, camofox: FakeCamoFox):
    opened = await browse(http, camofox, action="open", url="https://example.com/")
    camofox.fail_next(500, action="snapshot", retry_after=3)
    with pytest.raises(ApplicationError) as info:
        await browse(http, camofox, opened.state, action="snapshot")
    assert info.value.type == ErrorType.TOOL_RETRYABLE
    assert info.value.non_retryable is False
    assert info.value.next_retry_delay == timedelta(seconds=3)


@pytest.mark.parametrize(
    ("arguments", "mentions"),
    [
        ({"action": "click"}, "ref"),
        ({"action": "type", "ref": "e2"}, "text"),
        ({"action": "open"}, "url"),
        ({"action": "scroll"}, "action"),
        ({"action": "snapshot"}, "no browser tab is open"),
    ],
)
async def test_bad_browser_requests_are_rejected(
    http: httpx.AsyncClient, camofox: FakeCamoFox, arguments: dict[str, Any], mentions: str
):
    with pytest.raises(ApplicationError) as info:
        await browse(http, camofox, **arguments)
    assert info.value.type == ErrorType.TOOL_REJECTED
    assert info.value.non_retryable is True
    assert mentions in info.value.message
    assert camofox.requests == []


async def test_snapshot_without_a_tab_opens_one_when_given_a_url(
    http: httpx.AsyncClient, camofox: FakeCamoFox
):
    result = await browse(http, camofox, action="snapshot", url="https://example.com/docs")
    assert result.ok is True
    assert result.state["url"] == "https://example.com/docs"
    assert '- heading "Docs"' in result.output


async def test_the_browser_access_key_is_sent_and_a_wrong_one_rejected(
    http: httpx.AsyncClient, camofox: FakeCamoFox
):
    camofox.access_key = "camofox-access-key-123"
    settings = ToolSettings(camofox_url=camofox.base_url, camofox_api_key=SecretStr("camofox-access-key-123"))
    acts = BrowserActivities(http, settings, egress=GUARD)
    ok = await ActivityEnvironment().run(
        acts.browse, req("browser", action="open", url="https://example.com/")
    )
    assert ok.ok and ok.state["tab_id"]
    bad = BrowserActivities(
        http, ToolSettings(camofox_url=camofox.base_url, camofox_api_key=SecretStr("nope-key")), egress=GUARD
    )
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(bad.browse, req("browser", action="open", url="https://example.com/"))
    assert info.value.type == ErrorType.TOOL_REJECTED
    assert "nope-key" not in str(info.value)


# --------------------------------------------------------------------------- egress (SSRF)


INTERNAL_URLS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://127.0.0.1:8233/namespaces/default/workflows",
    "http://0x7f000001/",
    "http://[::1]:5432/",
    "http://temporal-ui:8080/namespaces/default/workflows",
    "http://postgres:5432/",
    "http://metadata.google.internal/",
    "https://rebind.example.net/admin",
    "http://user:secret@example.com/",
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
async def test_web_fetch_of_an_internal_url_never_reaches_the_gateway(
    http: httpx.AsyncClient, gateway: FakeGateway, url: str
):
    err = await gateway_error(http, tool_settings(gateway), req("web_fetch", url=url))
    assert err.type == EGRESS_DENIED
    assert err.non_retryable is True
    assert err.message.startswith("Lucy may not open ")
    assert "secret" not in err.message
    assert gateway.requests == []


async def test_web_fetch_of_an_unresolvable_name_is_refused(http: httpx.AsyncClient, gateway: FakeGateway):
    err = await gateway_error(http, tool_settings(gateway), req("web_fetch", url="https://nope.example.com/"))
    assert err.type == EGRESS_DENIED
    assert err.message == "Lucy may not open https://nope.example.com/: could not resolve nope.example.com"
    assert gateway.requests == []


async def test_web_fetch_that_was_redirected_inside_returns_nothing_of_the_page(
    http: httpx.AsyncClient, gateway: FakeGateway
):
    gateway.redirects["https://example.com/go"] = "http://10.0.0.7/admin"
    gateway.pages["http://10.0.0.7/admin"] = ("Admin", "root password: hunter2")
    err = await gateway_error(http, tool_settings(gateway), req("web_fetch", url="https://example.com/go"))
    assert err.type == EGRESS_DENIED
    assert err.non_retryable is True
    assert err.message == (
        "Lucy may not open http://10.0.0.7/admin (reached from https://example.com/go): it resolves "
        "to a private or internal address (10.0.0.7)"
    )
    assert "hunter2" not in str(err) and "hunter2" not in repr(err.details)
    assert len(gateway.invoked("web_fetch")) == 1  # the gateway fetched; the model hears nothing of it


async def test_web_fetch_redirected_to_another_public_page_returns_it(
    http: httpx.AsyncClient, gateway: FakeGateway
):
    gateway.redirects["https://example.com/old"] = "https://example.org/new"
    gateway.pages["https://example.org/new"] = ("New home", "Moved here.")
    result = await run_gateway(http, tool_settings(gateway), req("web_fetch", url="https://example.com/old"))
    assert result.ok
    assert result.output == "# New home\nURL: https://example.org/new\n\nMoved here."


@pytest.mark.parametrize("url", INTERNAL_URLS)
async def test_the_browser_never_opens_an_internal_url(
    http: httpx.AsyncClient, camofox: FakeCamoFox, url: str
):
    with pytest.raises(ApplicationError) as info:
        await browse(http, camofox, action="open", url=url)
    assert info.value.type == EGRESS_DENIED
    assert info.value.non_retryable is True
    assert camofox.requests == []


async def test_navigating_an_open_tab_to_an_internal_url_leaves_the_tab_alone(
    http: httpx.AsyncClient, camofox: FakeCamoFox
):
    opened = await browse(http, camofox, action="open", url="https://example.com/")
    before = len(camofox.requests)
    with pytest.raises(ApplicationError) as info:
        await browse(http, camofox, opened.state, action="navigate", url="http://temporal-ui:8080/")
    assert info.value.type == EGRESS_DENIED
    assert "temporal-ui is an internal name" in info.value.message
    assert len(camofox.requests) == before
    assert set(camofox.tabs) == {opened.state["tab_id"]}


async def test_a_click_that_lands_inside_closes_the_tab_and_returns_no_snapshot(
    http: httpx.AsyncClient, camofox: FakeCamoFox
):
    opened = await browse(http, camofox, action="open", url="https://example.com/")
    tab_id = opened.state["tab_id"]
    camofox.redirects["https://example.com/docs"] = "http://169.254.169.254/latest/meta-data/"
    with pytest.raises(ApplicationError) as info:
        await browse(http, camofox, opened.state, action="click", ref="e1")
    err = info.value
    assert err.type == EGRESS_DENIED
    assert err.message == (
        "Lucy may not open http://169.254.169.254/latest/meta-data/ (reached from https://example.com/): "
        "it resolves to a private or internal address (169.254.169.254)"
    )
    assert camofox.clicks == [(tab_id, "e1")]
    assert camofox.closed == [tab_id] and camofox.tabs == {}
    assert [r["action"] for r in camofox.requests[-2:]] == ["click", "close"]  # no snapshot taken


async def test_a_link_to_a_compose_service_is_refused_after_the_click(
    http: httpx.AsyncClient, camofox: FakeCamoFox
):
    camofox.pages["https://example.com/"].elements[0].href = "http://temporal-ui:8080/"
    opened = await browse(http, camofox, action="open", url="https://example.com/")
    with pytest.raises(ApplicationError) as info:
        await browse(http, camofox, opened.state, action="click", ref="e1")
    assert info.value.type == EGRESS_DENIED
    assert "temporal-ui is an internal name" in info.value.message
    assert camofox.tabs == {}


async def test_an_open_redirected_inside_closes_the_tab_before_any_snapshot(
    http: httpx.AsyncClient, camofox: FakeCamoFox
):
    camofox.redirects["https://example.com/"] = "http://192.168.1.1/"
    with pytest.raises(ApplicationError) as info:
        await browse(http, camofox, action="open", url="https://example.com/")
    assert info.value.type == EGRESS_DENIED
    assert "(192.168.1.1)" in info.value.message
    assert [r["action"] for r in camofox.requests] == ["open", "close"]
    assert camofox.tabs == {}


async def test_a_search_submitted_by_type_that_lands_inside_is_refused(
    http: httpx.AsyncClient, camofox: FakeCamoFox
):
    opened = await browse(http, camofox, action="open", url="https://example.com/")
    camofox.redirects["https://example.com/?q=x"] = "http://[::1]:8233/"
    with pytest.raises(ApplicationError) as info:
        await browse(http, camofox, opened.state, action="type", ref="e2", text="x", submit=True)
    assert info.value.type == EGRESS_DENIED
    assert "(::1)" in info.value.message
    assert camofox.tabs == {}


async def test_a_snapshot_of_a_page_that_moved_inside_on_its_own_is_refused(
    http: httpx.AsyncClient, camofox: FakeCamoFox
):
    opened = await browse(http, camofox, action="open", url="https://example.com/")
    camofox.tabs[opened.state["tab_id"]].url = "http://10.1.2.3/"  # a script moved the page
    camofox.pages["http://10.1.2.3/"] = Page("Router admin")
    with pytest.raises(ApplicationError) as info:
        await browse(http, camofox, opened.state, action="snapshot")
    assert info.value.type == EGRESS_DENIED
    assert "Router admin" not in str(info.value)
    assert camofox.closed == [opened.state["tab_id"]]


# --------------------------------------------------------------------------- browser profiles


async def test_each_requester_gets_their_own_browser_profile(http: httpx.AsyncClient, camofox: FakeCamoFox):
    ana = await browse(http, camofox, action="open", url="https://example.com/", user="U-ANA")
    bob = await browse(http, camofox, action="open", url="https://example.com/", user="U-BOB")
    assert [o["userId"] for o in camofox.opened] == ["ws-1:U-ANA", "ws-1:U-BOB"]
    # Bob's task can never act in Ana's browser context: her tab is not his.
    stolen = await browse(http, camofox, ana.state, action="click", ref="e1", user="U-BOB")
    assert stolen.ok is False and camofox.clicks == []
    assert stolen.state["tab_id"] not in (ana.state["tab_id"], bob.state["tab_id"])
    assert camofox.tabs[stolen.state["tab_id"]].user_id == "ws-1:U-BOB"


async def test_a_task_without_a_requester_gets_a_profile_of_its_own(
    http: httpx.AsyncClient, camofox: FakeCamoFox
):
    await browse(http, camofox, action="open", url="https://example.com/", user="")
    assert camofox.opened[0]["userId"] == "ws-1:task:lucy-task-T1-C1-1700000000.000100"
