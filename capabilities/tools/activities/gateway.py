"""Remote shell and files through an OpenClaw gateway: ``POST {base_url}/tools/invoke``.

Wire protocol, as OpenClaw documents and implements it (``docs/gateway/tools-invoke-http-api.md``
and ``src/gateway/tools-invoke-http.ts`` in github.com/openclaw/openclaw):

* request: ``Authorization: Bearer <gateway token>`` and a JSON body
  ``{"tool": <name>, "action": <optional>, "args": {...}}``; ``action`` is merged into ``args``
  when the tool's schema has one (we send it in both places);
* ``200 {"ok": true, "result": <AgentToolResult>}`` where the tool result is
  ``{"content": [{"type": "text", "text": ...}], "details": {...}}``;
* ``400 {"ok": false, "error": {"type": "invalid_request" | "tool_error", "message"}}`` for a
  bad request or a tool that threw (file not found, edit text not found...);
* ``401`` bad token (``429`` + ``Retry-After`` when the gateway rate-limits auth failures);
* ``404 {"ok": false, "error": {"type": "not_found", "message": "Tool not available: <tool>"}}``
  when the tool does not exist or the gateway's tool policy does not allow it.

Tools (``src/agents/bash-tools.exec.ts``, ``bash-tools.process.ts``; the pi coding-agent file
tools; ``docs/tools/web-fetch.md``):

* ``exec {command, workdir?, timeout? (seconds), yieldMs?}``. ``details.status`` is
  ``completed`` (``exitCode``, ``aggregated`` output), ``failed`` (``exitCode``, ``aggregated``,
  ``timedOut``; the text is the reason) or ``running`` (``sessionId``): the command outlived the
  yield window and went on in the background. Without an explicit ``timeout`` a backgrounded
  command never times out, so one is always sent.
* ``process {action: poll | log | kill, sessionId}``: ``poll`` answers the new output as text and
  ``details {status: running | completed | failed, exitCode, aggregated}``.
* ``read {path}``, ``write {path, content}``, ``edit {path, oldText, newText}`` (the legacy
  single-edit form that pi's ``edit`` still accepts next to ``edits: [...]``).
* ``web_fetch {url, extractMode, maxChars?}``: ``details`` holds ``text`` (and ``title``...).

Errors become ``ApplicationError`` types the workflow matches on: 404 -> ``ToolBlocked``;
401/403 and 400/422 (and other 4xx) -> ``ToolRejected``; 408/429/5xx, timeouts and connection
errors -> ``ToolRetryable`` (``Retry-After`` becomes the next retry delay); no token ->
``ToolNotConfigured``. httpx makes no retries of its own: Temporal owns retries. The gateway
token never appears in a message, log or exception.

``web_fetch`` goes through the :class:`~capabilities.tools.egress.EgressGuard`: the URL is checked before
the gateway is asked, and the final URL the gateway reports (``details.finalUrl``, else
``details.url``) after it answers; a refused URL raises ``EgressDenied`` and nothing of the page
reaches the model.

A command still running is polled every ``poll_interval`` seconds with a heartbeat in between
(Temporal delivers cancellation through heartbeats; a cancelled poll asks the gateway to kill
the session). The heartbeat carries the gateway session id, so a retried attempt resumes
polling that session instead of running the command a second time. Before the command is sent
the heartbeat says so (``EXEC_SENT``): an attempt after a worker died between sending it and
reporting its result does not send it again, and tells the model it may have run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta
from typing import Any, TypeVar

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from capabilities.tools.activities.http_errors import (
    heartbeating,
    provider_message,
    retry_after,
    transport_error,
)
from capabilities.tools.activities.liveness import beat, beat_recorded, keeps_beating
from capabilities.tools.activities.openclaw import (
    GATEWAY_TOOLS,
    GatewayResult,
    finished_exec,
    gateway_args,
    parse_result,
    reject,
)
from capabilities.tools.contracts import ToolRequest, ToolResult, truncate_output
from capabilities.tools.deps import ToolDeps
from capabilities.tools.egress import EgressGuard
from capabilities.tools.spec import STRING, TOOL_HEARTBEAT, ToolSpec, high_risk, host_of, retry, schema
from lucy.contracts.errors import ErrorType
from lucy.settings import ToolSettings

_HTTP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# Heartbeated before a command leaves for the gateway (a session id replaces it once it runs).
EXEC_SENT = "exec-sent"
MAY_HAVE_RUN = (
    "[an earlier attempt sent this command to the gateway and stopped before its result came back: "
    "it may have run. It was not sent again; check before asking to run it again]"
)
POLL_INTERVAL = 1.0

T = TypeVar("T")


# --------------------------------------------------------------------------- activity


class GatewayActivities:
    """Shell, file and web-fetch tools on an OpenClaw gateway."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: ToolSettings,
        *,
        egress: EgressGuard,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self._http = http
        self._settings = settings
        self._egress = egress
        self._poll_interval = poll_interval

    @activity.defn(name="tools.gateway")
    @keeps_beating
    async def invoke(self, request: ToolRequest) -> ToolResult:
        """Run one catalog tool (``exec``, ``read_file``, ``write_file``, ``edit_file``,
        ``web_fetch``) on the gateway and return what the model should see."""
        if request.tool not in GATEWAY_TOOLS:
            reject(f"unknown gateway tool {request.tool!r}; known: {', '.join(sorted(GATEWAY_TOOLS))}")
        if not isinstance(request.arguments, dict):
            reject(f"{request.tool}: arguments must be a JSON object")
        args = gateway_args(request.tool, request.arguments)
        if self._settings.openclaw_api_key is None:
            raise ApplicationError(
                "the remote shell is not configured: set LUCY_OPENCLAW_BASE_URL and LUCY_OPENCLAW_API_KEY",
                type=ErrorType.TOOL_NOT_CONFIGURED,
                non_retryable=True,
            )
        if request.tool == "exec":
            output, ok = await self._exec(request.tool, args)
        elif request.tool == "web_fetch":
            output, ok = await self._web_fetch(args), True
        else:
            result = await self._call(request.tool, GATEWAY_TOOLS[request.tool], args)
            output, ok = self._plain_output(request.tool, result), True
        text, truncated = truncate_output(output)
        return ToolResult(output=text, ok=ok, truncated=truncated, state=dict(request.state))

    # ----------------------------------------------------------------- exec and polling

    async def _exec(self, tool: str, args: dict[str, Any]) -> tuple[str, bool]:
        timeout = float(args["timeout"])
        # A little grace past the timeout (which the gateway enforces too) to see it end.
        deadline = time.monotonic() + timeout + 2 * self._poll_interval
        resumed = _resumed_session()
        if resumed == EXEC_SENT:
            return MAY_HAVE_RUN, False
        if resumed is not None:
            # A previous attempt started the command and heartbeated its session: poll it.
            session_id, chunks = resumed, [""]
        else:
            result = await self._send_exec(tool, args)
            if result.status != "running":
                return self._exec_outcome(result)
            session_id = str(result.details.get("sessionId") or "")
            if not session_id:
                return f"{result.text}\n[the gateway gave no session id to follow]", False
            chunks = [_tail(result.details)]
        try:
            while True:
                beat(session_id)
                if time.monotonic() >= deadline:
                    output = "".join(chunks).rstrip() or "(no output yet)"
                    return (
                        f"{output}\n\n[still running after {timeout:g} s (gateway session {session_id}); "
                        "output so far is shown above]",
                        False,
                    )
                await asyncio.sleep(self._poll_interval)
                beat(session_id)
                poll = await self._call(tool, "process", {"action": "poll", "sessionId": session_id})
                if poll.status == "running":
                    if poll.aggregated is not None:
                        chunks = [poll.aggregated]
                    else:
                        chunks.append(_strip_poll_footer(poll.text))
                    continue
                if poll.status in ("completed", "failed") and (
                    poll.aggregated is not None or "exitCode" in poll.details
                ):
                    return finished_exec(poll, fallback_output="".join(chunks))
                # e.g. "No session found for ..." (the session expired on the gateway).
                return f"{poll.text or 'the gateway lost track of the command'}", False
        except asyncio.CancelledError:
            await self._kill(tool, session_id)
            raise

    async def _send_exec(self, tool: str, args: dict[str, Any]) -> GatewayResult:
        """Send the command once: heartbeat :data:`EXEC_SENT` first, so an attempt after this
        worker died (the command ran, its result never reached Temporal) does not run it again;
        an error answer from the gateway clears it (nothing ran: a retry may send it)."""
        await beat_recorded(EXEC_SENT)  # recorded by Temporal before the command leaves
        try:
            return await heartbeating(self._call(tool, "exec", args), every=self._poll_interval)
        except ApplicationError:
            beat("")
            raise

    def _exec_outcome(self, result: GatewayResult) -> tuple[str, bool]:
        if result.status in ("completed", "failed"):
            return finished_exec(result)
        # approval-pending or anything else the gateway may answer: the model hears it as is.
        status = result.status or "unknown"
        return f"{result.text or '(no output)'}\n[gateway status: {status}]", False

    async def _kill(self, tool: str, session_id: str) -> None:
        """Best effort: ask the gateway to stop a command whose activity was cancelled."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self._call(tool, "process", {"action": "kill", "sessionId": session_id}), timeout=5.0
            )

    # ----------------------------------------------------------------- plain tools

    async def _web_fetch(self, args: dict[str, Any]) -> str:
        return self._plain_output("web_fetch", await self.fetch(args))

    async def fetch(self, args: dict[str, Any]) -> GatewayResult:
        """Fetch a page the egress guard allows, and return it only if the URL the gateway
        finally reached (after redirects) is allowed too. Also the monitors' probe (not an
        activity of its own: :mod:`capabilities.proactive.activities.monitors` calls it)."""
        if self._settings.openclaw_api_key is None:
            raise ApplicationError(
                "the gateway is not configured: set LUCY_OPENCLAW_BASE_URL and LUCY_OPENCLAW_API_KEY",
                type=ErrorType.TOOL_NOT_CONFIGURED,
                non_retryable=True,
            )
        url = str(args["url"])
        await self._egress.require(url)
        result = await self._call("web_fetch", "web_fetch", args)
        final = result.details.get("finalUrl") or result.details.get("url")
        if isinstance(final, str) and final:
            await self._egress.require_reported(final, reached_from=url)
        return result

    @staticmethod
    def _plain_output(tool: str, result: GatewayResult) -> str:
        if tool == "web_fetch":
            text = result.details.get("text")
            if isinstance(text, str):
                title = result.details.get("title")
                url = result.details.get("finalUrl") or result.details.get("url")
                header = "\n".join(
                    line for line in (f"# {title}" if title else "", f"URL: {url}" if url else "") if line
                )
                return f"{header}\n\n{text}" if header else text
        return result.text or "(no output)"

    # ----------------------------------------------------------------- HTTP

    async def _call(self, tool: str, gateway_tool: str, args: dict[str, Any]) -> GatewayResult:
        key = self._settings.openclaw_api_key
        assert key is not None
        secret = key.get_secret_value()
        body: dict[str, Any] = {"tool": gateway_tool, "args": args}
        if "action" in args:
            body["action"] = args["action"]
        try:
            response = await self._http.post(
                f"{self._settings.openclaw_base_url}/tools/invoke",
                json=body,
                headers={"Authorization": f"Bearer {secret}"},
                timeout=_HTTP_TIMEOUT,
            )
        except httpx.TransportError as exc:  # timeouts included
            raise transport_error(exc, "the gateway") from None
        status = response.status_code
        if status == 200:
            try:
                return parse_result(response.json())
            except ValueError:
                raise ApplicationError(
                    "the gateway answered with something that is not JSON",
                    type=ErrorType.TOOL_REJECTED,
                    non_retryable=True,
                ) from None
        message = _scrub(provider_message(response, envelope="error", limit=500), secret)
        if status == 404:
            raise ApplicationError(
                f"the gateway does not allow the tool {tool}", type=ErrorType.TOOL_BLOCKED, non_retryable=True
            )
        if status in (401, 403):
            raise ApplicationError(
                f"the gateway refused Lucy's token (HTTP {status}); check LUCY_OPENCLAW_API_KEY",
                type=ErrorType.TOOL_REJECTED,
                non_retryable=True,
            )
        if status in (408, 429) or status >= 500:
            raise ApplicationError(
                f"the gateway is unavailable (HTTP {status}){': ' + message if message else ''}",
                type=ErrorType.TOOL_RETRYABLE,
                next_retry_delay=retry_after(response),
            )
        raise ApplicationError(
            f"{tool} failed: {message or f'HTTP {status}'}", type=ErrorType.TOOL_REJECTED, non_retryable=True
        )


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "[redacted]") if secret else text


def _tail(details: dict[str, Any]) -> str:
    tail = details.get("tail")
    return tail if isinstance(tail, str) else ""


def _strip_poll_footer(text: str) -> str:
    for footer in ("\n\nProcess still running.", "(no new output)"):
        text = text.replace(footer, "")
    return text


def _resumed_session() -> str | None:
    """The gateway session a previous attempt of this activity heartbeated, if any."""
    details = activity.info().heartbeat_details
    if details and isinstance(details[0], str) and details[0]:
        return details[0]
    return None


# --------------------------------------------------------------------------- the tools


def _build(deps: ToolDeps) -> GatewayActivities:
    return GatewayActivities(deps.http, deps.settings.tools, egress=deps.egress)


def _fetched_host(args: dict[str, Any]) -> str | None:
    return host_of(str(args.get("url") or ""))


def _gateway_tool(**spec: Any) -> ToolSpec:
    """A tool the OpenClaw gateway runs (file tools: a minute, five attempts, heartbeating)."""
    file_tool = {"timeout": timedelta(seconds=60), "heartbeat": TOOL_HEARTBEAT, "retry": retry(5)}
    return ToolSpec(
        activity=GatewayActivities.invoke,
        build=_build,
        requires=("openclaw_api_key",),
        **{**file_tool, **spec},
    )


EXEC = _gateway_tool(
    name="exec",
    description="Run a shell command on Lucy's workspace machine (OpenClaw gateway). "
    "Returns the combined output and exit code.",
    parameters=schema(
        {
            "command": STRING,
            "workdir": STRING,
            "timeout": {"type": "integer", "description": "seconds, default 60"},
        },
        ("command",),
    ),
    timeout=timedelta(minutes=15),
    heartbeat=TOOL_HEARTBEAT,
    retry=retry(3),
    label="gateway exec",
    label_arg="command",
    risk=high_risk,
)
READ_FILE = _gateway_tool(
    name="read_file",
    description="Read a text file on Lucy's workspace machine.",
    parameters=schema({"path": STRING}, ("path",)),
    label="gateway read",
    label_arg="path",
)
WRITE_FILE = _gateway_tool(
    name="write_file",
    description="Create or overwrite a text file on Lucy's workspace machine.",
    parameters=schema({"path": STRING, "content": STRING}, ("path", "content")),
    label="gateway write",
    label_arg="path",
    risk=high_risk,
)
EDIT_FILE = _gateway_tool(
    name="edit_file",
    description="Replace exact text in a file on Lucy's workspace machine.",
    parameters=schema(
        {"path": STRING, "old_text": STRING, "new_text": STRING}, ("path", "old_text", "new_text")
    ),
    label="gateway edit",
    label_arg="path",
    risk=high_risk,
)
WEB_FETCH = _gateway_tool(
    name="web_fetch",
    description="Fetch a web page and return its readable text.",
    parameters=schema({"url": STRING, "max_chars": {"type": "integer"}}, ("url",)),
    timeout=timedelta(seconds=90),
    heartbeat=TOOL_HEARTBEAT,
    retry=retry(4),
    label="web fetch",
    label_arg="url",
    egress_host=_fetched_host,
)
