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

``web_fetch`` goes through the :class:`~activities.egress.EgressGuard`: the URL is checked before
the gateway is asked, and the final URL the gateway reports (``details.finalUrl``, else
``details.url``) after it answers; a refused URL raises ``EgressDenied`` and nothing of the page
reaches the model.

A command still running is polled every ``poll_interval`` seconds with a heartbeat in between
(Temporal delivers cancellation through heartbeats; a cancelled poll asks the gateway to kill
the session). The heartbeat carries the gateway session id, so a retried attempt resumes
polling that session instead of running the command a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.egress import EgressGuard
from activities.http_errors import retry_after, transport_error
from lucy.contracts import ErrorType, ToolRequest, ToolResult, truncate_output
from lucy.settings import ToolSettings

# Catalog name (what the model calls) -> gateway tool.
GATEWAY_TOOLS: dict[str, str] = {
    "exec": "exec",
    "read_file": "read",
    "write_file": "write",
    "edit_file": "edit",
    "web_fetch": "web_fetch",
}

DEFAULT_EXEC_TIMEOUT = 60.0  # seconds, when the model gives none (the catalog says so)
MAX_EXEC_TIMEOUT = 600.0  # well inside the exec activity's start-to-close timeout
EXEC_YIELD_MS = 10_000  # the gateway answers `running` after this long
POLL_INTERVAL = 1.0
_HTTP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
_MESSAGE_LIMIT = 500

T = TypeVar("T")


def _reject(message: str) -> NoReturn:
    raise ApplicationError(message, type=ErrorType.TOOL_REJECTED, non_retryable=True)


def _gateway_message(response: httpx.Response) -> str:
    """The gateway's own error message (``error.message``), shortened."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:_MESSAGE_LIMIT]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or err.get("type") or "")[:_MESSAGE_LIMIT]
    return str(err or "")[:_MESSAGE_LIMIT]


# --------------------------------------------------------------------------- argument checks


def _required_str(args: dict[str, Any], name: str, tool: str) -> str:
    value = args.get(name)
    if not isinstance(value, str):
        kind = "missing" if value is None else f"a {type(value).__name__}"
        _reject(f"{tool} needs the argument {name!r} as a string (it is {kind})")
    if not value.strip():
        _reject(f"{tool}: the argument {name!r} must not be empty")
    return value


def _optional_str(args: dict[str, Any], name: str, tool: str) -> str | None:
    value = args.get(name)
    if value is not None and not isinstance(value, str):
        _reject(f"{tool}: the argument {name!r} must be a string, got {type(value).__name__}")
    return value or None


def _number_arg(args: dict[str, Any], name: str, tool: str) -> float | None:
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        _reject(f"{tool}: the argument {name!r} must be a positive number, got {value!r}")
    return float(value)


def _gateway_args(tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """Validate the model's arguments for ``tool`` and translate them to the gateway's."""
    if tool == "exec":
        out: dict[str, Any] = {"command": _required_str(args, "command", tool)}
        workdir = _optional_str(args, "workdir", tool)
        if workdir:
            out["workdir"] = workdir
        timeout = _number_arg(args, "timeout", tool) or DEFAULT_EXEC_TIMEOUT
        out["timeout"] = min(timeout, MAX_EXEC_TIMEOUT)
        out["yieldMs"] = EXEC_YIELD_MS
        return out
    if tool == "read_file":
        return {"path": _required_str(args, "path", tool)}
    if tool == "write_file":
        path = _required_str(args, "path", tool)
        content = args.get("content")
        if not isinstance(content, str):
            _reject(f"{tool} needs the argument 'content' (a string)")
        return {"path": path, "content": content}
    if tool == "edit_file":
        path = _required_str(args, "path", tool)
        old_text = args.get("old_text")
        new_text = args.get("new_text")
        if not isinstance(old_text, str) or not old_text:
            _reject(f"{tool} needs the argument 'old_text' (the exact text to replace)")
        if not isinstance(new_text, str):
            _reject(f"{tool} needs the argument 'new_text' (a string, may be empty)")
        return {"path": path, "oldText": old_text, "newText": new_text}
    if tool == "web_fetch":
        url = _required_str(args, "url", tool)
        if not url.startswith(("http://", "https://")):
            _reject(f"{tool}: the url must start with http:// or https://")
        out = {"url": url, "extractMode": "markdown"}
        max_chars = _number_arg(args, "max_chars", tool)
        if max_chars is not None:
            out["maxChars"] = int(max_chars)
        return out
    _reject(f"unknown gateway tool {tool!r}; known: {', '.join(sorted(GATEWAY_TOOLS))}")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class _Result:
    """The parts of an OpenClaw ``AgentToolResult`` that matter here."""

    text: str
    details: dict[str, Any]

    @property
    def status(self) -> str | None:
        status = self.details.get("status")
        return status if isinstance(status, str) else None

    @property
    def aggregated(self) -> str | None:
        value = self.details.get("aggregated")
        return value if isinstance(value, str) else None


def _parse_result(body: Any) -> _Result:
    if not isinstance(body, dict) or body.get("ok") is not True:
        raise ApplicationError(
            "the gateway answered with something that is not a tool result",
            type=ErrorType.TOOL_REJECTED,
            non_retryable=True,
        )
    result = body.get("result")
    if isinstance(result, str):
        return _Result(result, {})
    if not isinstance(result, dict):
        return _Result("" if result is None else str(result), {})
    parts: list[str] = []
    for item in result.get("content") or []:
        if isinstance(item, dict) and item.get("type") == "text" and isinstance(item.get("text"), str):
            parts.append(item["text"])
        elif isinstance(item, dict) and item.get("type") == "image":
            parts.append("[image omitted]")
    details = result.get("details")
    return _Result("\n".join(parts), details if isinstance(details, dict) else {})


def _exit_label(details: dict[str, Any]) -> str:
    code = details.get("exitCode")
    label = f"exit code {code}" if isinstance(code, int) else "no exit code"
    if details.get("timedOut"):
        label += ", timed out"
    signal = details.get("exitSignal")
    if signal:
        label += f", signal {signal}"
    return label


def _finished_exec(result: _Result, *, fallback_output: str = "") -> tuple[str, bool]:
    """Output and ok flag of a finished command (``completed`` or ``failed``)."""
    output = result.aggregated if result.aggregated is not None else (fallback_output or result.text)
    output = output.rstrip() or "(no output)"
    if result.status == "completed":
        return output, True
    # The text is the reason ("Command exited with code 2"), after the output for a poll.
    reason = result.text.strip().rsplit("\n\n", 1)[-1].strip()
    footer = f"[command failed: {_exit_label(result.details)}]"
    if reason and reason not in output:
        footer = f"{reason}\n{footer}"
    return f"{output}\n\n{footer}", False


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
    async def invoke(self, request: ToolRequest) -> ToolResult:
        """Run one catalog tool (``exec``, ``read_file``, ``write_file``, ``edit_file``,
        ``web_fetch``) on the gateway and return what the model should see."""
        if request.tool not in GATEWAY_TOOLS:
            _reject(f"unknown gateway tool {request.tool!r}; known: {', '.join(sorted(GATEWAY_TOOLS))}")
        if not isinstance(request.arguments, dict):
            _reject(f"{request.tool}: arguments must be a JSON object")
        args = _gateway_args(request.tool, request.arguments)
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
        if resumed is not None:
            # A previous attempt started the command and heartbeated its session: poll it.
            session_id, chunks = resumed, [""]
        else:
            result = await self._heartbeating(self._call(tool, "exec", args))
            if result.status != "running":
                return self._exec_outcome(result)
            session_id = str(result.details.get("sessionId") or "")
            if not session_id:
                return f"{result.text}\n[the gateway gave no session id to follow]", False
            chunks = [_tail(result.details)]
        try:
            while True:
                activity.heartbeat(session_id)
                if time.monotonic() >= deadline:
                    output = "".join(chunks).rstrip() or "(no output yet)"
                    return (
                        f"{output}\n\n[still running after {timeout:g} s (gateway session {session_id}); "
                        "output so far is shown above]",
                        False,
                    )
                await asyncio.sleep(self._poll_interval)
                activity.heartbeat(session_id)
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
                    return _finished_exec(poll, fallback_output="".join(chunks))
                # e.g. "No session found for ..." (the session expired on the gateway).
                return f"{poll.text or 'the gateway lost track of the command'}", False
        except asyncio.CancelledError:
            await self._kill(tool, session_id)
            raise

    def _exec_outcome(self, result: _Result) -> tuple[str, bool]:
        if result.status in ("completed", "failed"):
            return _finished_exec(result)
        # approval-pending or anything else the gateway may answer: the model hears it as is.
        status = result.status or "unknown"
        return f"{result.text or '(no output)'}\n[gateway status: {status}]", False

    async def _kill(self, tool: str, session_id: str) -> None:
        """Best effort: ask the gateway to stop a command whose activity was cancelled."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self._call(tool, "process", {"action": "kill", "sessionId": session_id}), timeout=5.0
            )

    async def _heartbeating(self, call: Awaitable[T]) -> T:
        """Await ``call`` while heartbeating every poll interval, so a long request can be cancelled."""
        task = asyncio.ensure_future(call)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self._poll_interval)
                if done:
                    return task.result()
                activity.heartbeat()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})

    # ----------------------------------------------------------------- plain tools

    async def _web_fetch(self, args: dict[str, Any]) -> str:
        """Fetch a page the egress guard allows, and return it only if the URL the gateway
        finally reached (after redirects) is allowed too."""
        url = str(args["url"])
        await self._egress.require(url)
        result = await self._call("web_fetch", "web_fetch", args)
        final = result.details.get("finalUrl") or result.details.get("url")
        if isinstance(final, str) and final:
            await self._egress.require_reported(final, reached_from=url)
        return self._plain_output("web_fetch", result)

    @staticmethod
    def _plain_output(tool: str, result: _Result) -> str:
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

    async def _call(self, tool: str, gateway_tool: str, args: dict[str, Any]) -> _Result:
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
                return _parse_result(response.json())
            except ValueError:
                raise ApplicationError(
                    "the gateway answered with something that is not JSON",
                    type=ErrorType.TOOL_REJECTED,
                    non_retryable=True,
                ) from None
        message = _scrub(_gateway_message(response), secret)
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
