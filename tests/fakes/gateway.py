"""A fake OpenClaw gateway: ``POST /tools/invoke`` as OpenClaw's gateway answers it.

``Authorization: Bearer <token>`` (401 otherwise); ``{"tool", "action"?, "args"}`` in;
``200 {"ok": true, "result": {"content": [{"type": "text", "text"}], "details"}}`` out;
``404 {"ok": false, "error": {"type": "not_found", "message": "Tool not available: <tool>"}}``
for a blocked or unknown tool; ``400 {"ok": false, "error": {"type": "tool_error", ...}}`` when
a tool throws. Tools: ``exec`` (scripted results: completed, failed, or running then finished
through ``process`` poll), ``process`` (poll, log, kill), ``read``/``write``/``edit`` on an
in-memory dict of files, ``web_fetch`` on scripted pages (``redirects`` send a url elsewhere: the
answer's ``finalUrl`` is where it landed). Faults: one-shot HTTP statuses with
``Retry-After``, and a delay before an exec answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import serve

KNOWN_TOOLS = {"exec", "process", "read", "write", "edit", "web_fetch"}


@dataclass
class ExecScript:
    """What the next ``exec`` does. ``status`` ``running`` backgrounds the command: each poll
    then delivers the next of ``chunks`` until ``polls_until_done`` polls have run, then it
    finishes as ``final_status`` (``completed`` or ``failed``) with ``exit_code``;
    ``polls_until_done=None`` never finishes."""

    status: str = "completed"  # completed | failed | running
    output: str | None = None  # default: "ran: <command>"
    exit_code: int = 0
    timed_out: bool = False
    delay: float = 0.0  # seconds before the gateway answers
    chunks: list[str] = field(default_factory=list)
    polls_until_done: int | None = 2
    final_status: str = "completed"


@dataclass
class _Session:
    id: str
    command: str
    chunks: list[str]
    polls_until_done: int | None
    final_status: str
    exit_code: int
    polls: int = 0
    aggregated: str = ""
    killed: bool = False
    finished: bool = False


@dataclass
class Fault:
    status: int
    retry_after: float | None = None
    tool: str | None = None  # only for this gateway tool


@dataclass
class FakeGateway:
    api_key: str = "oc-gateway-token-0123456789abcdef"
    requests: list[dict[str, Any]] = field(default_factory=list)
    blocked: set[str] = field(default_factory=set)
    files: dict[str, str] = field(default_factory=dict)
    pages: dict[str, tuple[str, str]] = field(default_factory=dict)  # url -> (title, text)
    redirects: dict[str, str] = field(default_factory=dict)  # url -> where web_fetch lands
    script: list[ExecScript] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    sessions: dict[str, _Session] = field(default_factory=dict)
    killed: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    polled: asyncio.Event = field(default_factory=asyncio.Event)  # set by every process poll
    _wake: asyncio.Event = field(default_factory=asyncio.Event)  # ends scripted delays early
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self._release_delays()
        self.requests.clear()
        self.blocked.clear()
        self.files.clear()
        self.pages.clear()
        self.redirects.clear()
        self.script.clear()
        self.faults.clear()
        self.sessions.clear()
        self.killed.clear()
        self.polled.clear()

    def then_exec(self, **kwargs: Any) -> FakeGateway:
        self.script.append(ExecScript(**kwargs))
        return self

    def fail(self, status: int, *, retry_after: float | None = None, tool: str | None = None) -> FakeGateway:
        self.faults.append(Fault(status, retry_after, tool))
        return self

    def start_session(
        self, command: str, *, chunks: list[str], polls_until_done: int | None = 1, exit_code: int = 0
    ) -> str:
        """A command already running in the background (as a previous attempt left it)."""
        session = _Session(
            id=f"sess-{next(self._ids)}",
            command=command,
            chunks=list(chunks),
            polls_until_done=polls_until_done,
            final_status="completed" if exit_code == 0 else "failed",
            exit_code=exit_code,
        )
        self.sessions[session.id] = session
        return session.id

    def invoked(self, tool: str) -> list[dict[str, Any]]:
        """The ``args`` of every invoke of ``tool`` that passed authentication."""
        return [
            r["body"].get("args") or {}
            for r in self.requests
            if r["authorized"] and r["body"].get("tool") == tool
        ]

    def commands(self) -> list[str]:
        return [args.get("command", "") for args in self.invoked("exec")]

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/tools/invoke", self._invoke)
        self._runner, self.port = await serve(app, port)

    def release(self) -> None:
        """Let every held exec answer now (a scripted ``delay`` ends early)."""
        self._release_delays()

    def _release_delays(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    async def stop(self) -> None:
        self._release_delays()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ HTTP

    async def _invoke(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "invalid_request", "Invalid JSON body")
        authorized = request.headers.get("Authorization") == f"Bearer {self.api_key}"
        self.requests.append(
            {"body": body, "authorized": authorized, "authorization": request.headers.get("Authorization")}
        )
        if not authorized:
            return web.json_response(
                {"error": {"message": "Unauthorized", "type": "unauthorized"}}, status=401
            )
        tool = str(body.get("tool") or "").strip()
        if not tool:
            return _error(400, "invalid_request", "tools.invoke requires body.tool")
        for fault in list(self.faults):
            if fault.tool in (None, tool):
                self.faults.remove(fault)
                headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                return _error(fault.status, "internal", "Internal Server Error", headers)
        if tool in self.blocked or tool not in KNOWN_TOOLS:
            return _error(404, "not_found", f"Tool not available: {tool}")
        args = body.get("args") if isinstance(body.get("args"), dict) else {}
        if isinstance(body.get("action"), str) and "action" not in args:
            args = {**args, "action": body["action"]}
        try:
            result = await getattr(self, f"_tool_{tool}")(args)
        except ToolError as exc:
            return _error(400, "tool_error", str(exc))
        return web.json_response({"ok": True, "result": result})

    # ------------------------------------------------------------------ tools

    async def _tool_exec(self, args: dict[str, Any]) -> dict[str, Any]:
        command = args.get("command")
        if not command:
            raise ToolError("Provide a command to start.")
        step = self.script.pop(0) if self.script else ExecScript()
        if step.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), step.delay)
        output = step.output if step.output is not None else f"ran: {command}"
        cwd = args.get("workdir") or "/home/lucy"
        if step.status == "completed":
            return _text(
                output or "(no output)",
                status="completed",
                exitCode=0,
                durationMs=12,
                aggregated=output,
                cwd=cwd,
            )
        if step.status == "failed":
            reason = "Command timed out" if step.timed_out else f"Command exited with code {step.exit_code}"
            return _text(
                f"{output}\n\n{reason}" if output else reason,
                status="failed",
                exitCode=step.exit_code,
                durationMs=12,
                aggregated=output,
                timedOut=step.timed_out,
                cwd=cwd,
            )
        session = _Session(
            id=f"sess-{next(self._ids)}",
            command=str(command),
            chunks=list(step.chunks),
            polls_until_done=step.polls_until_done,
            final_status=step.final_status,
            exit_code=step.exit_code,
        )
        first = session.chunks.pop(0) if session.chunks else ""
        session.aggregated = first
        self.sessions[session.id] = session
        return {
            "content": [
                {
                    "type": "text",
                    "text": f"Command still running (session {session.id}, pid 4242). "
                    "Use process (list/poll/log/write/kill/clear/remove) for follow-up.",
                }
            ],
            "details": {
                "status": "running",
                "sessionId": session.id,
                "pid": 4242,
                "startedAt": 1700000000000,
                "cwd": cwd,
                "tail": first,
            },
        }

    async def _tool_process(self, args: dict[str, Any]) -> dict[str, Any]:
        action = args.get("action")
        session_id = args.get("sessionId")
        if not session_id:
            return _text("sessionId is required for this action.", status="failed")
        session = self.sessions.get(str(session_id))
        if session is None or session.killed:
            return _text(f"No session found for {session_id}", status="failed")
        if action == "kill":
            session.killed = True
            self.killed.append(session.id)
            return _text(f"Termination requested for session {session.id}.", status="completed")
        if action == "log":
            status = session.final_status if session.finished else "running"
            return _text(session.aggregated or "(no output yet)", status=status, sessionId=session.id)
        if action != "poll":
            return _text(f"Unknown action {action}", status="failed")
        session.polls += 1
        self.polled.set()
        new = session.chunks.pop(0) if session.chunks else ""
        session.aggregated += new
        if session.polls_until_done is None or session.polls < session.polls_until_done:
            return _text(
                (new.strip() or "(no new output)") + "\n\nProcess still running.",
                status="running",
                sessionId=session.id,
                aggregated=session.aggregated,
                name=session.command[:40],
            )
        session.finished = True
        label = f"code {session.exit_code}"
        return _text(
            (new.strip() or "(no new output)") + f"\n\nProcess exited with {label}.",
            status=session.final_status,
            sessionId=session.id,
            exitCode=session.exit_code,
            aggregated=session.aggregated,
            name=session.command[:40],
        )

    async def _tool_read(self, args: dict[str, Any]) -> dict[str, Any]:
        path = _path(args)
        if path not in self.files:
            raise ToolError(f"ENOENT: no such file or directory, access '{path}'")
        return {"content": [{"type": "text", "text": self.files[path]}]}

    async def _tool_write(self, args: dict[str, Any]) -> dict[str, Any]:
        path = _path(args)
        content = args.get("content")
        if not isinstance(content, str):
            raise ToolError("write requires content")
        self.files[path] = content
        return {
            "content": [
                {"type": "text", "text": f"Successfully wrote {len(content.encode())} bytes to {path}"}
            ]
        }

    async def _tool_edit(self, args: dict[str, Any]) -> dict[str, Any]:
        path = _path(args)
        old, new = args.get("oldText"), args.get("newText")
        if not isinstance(old, str) or not isinstance(new, str):
            raise ToolError("edit requires oldText and newText")
        if path not in self.files:
            raise ToolError(f"File not found: {path}")
        current = self.files[path]
        count = current.count(old)
        if count == 0:
            raise ToolError(
                f"Could not find the exact text in {path}. The old text must match exactly "
                "including all whitespace and newlines."
            )
        if count > 1:
            raise ToolError(f"Found {count} occurrences of the text in {path}. The text must be unique.")
        self.files[path] = current.replace(old, new, 1)
        return {
            "content": [{"type": "text", "text": f"Successfully replaced text in {path}."}],
            "details": {},
        }

    async def _tool_web_fetch(self, args: dict[str, Any]) -> dict[str, Any]:
        url = args.get("url")
        final = self.redirects.get(url, url) if isinstance(url, str) else url
        if not isinstance(final, str) or final not in self.pages:
            raise ToolError("Web fetch failed (404): Not Found")
        title, text = self.pages[final]
        max_chars = args.get("maxChars")
        truncated = isinstance(max_chars, int) and len(text) > max_chars
        if truncated:
            text = text[:max_chars]
        payload = {
            "url": url,
            "finalUrl": final,
            "status": 200,
            "contentType": "text/html",
            "title": title,
            "extractMode": args.get("extractMode", "markdown"),
            "extractor": "readability",
            "truncated": truncated,
            "length": len(text),
            "fetchedAt": "2026-01-01T00:00:00.000Z",
            "tookMs": 5,
            "text": text,
        }
        return {"content": [{"type": "text", "text": json.dumps(payload)}], "details": payload}


class ToolError(Exception):
    """A tool that throws: the gateway answers 400 ``tool_error``."""


def _path(args: dict[str, Any]) -> str:
    path = args.get("path") or args.get("file_path")
    if not isinstance(path, str) or not path:
        raise ToolError("path is required")
    return path


def _text(text: str, **details: Any) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "details": details}


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"ok": False, "error": {"type": kind, "message": message}}, status=status, headers=headers
    )
