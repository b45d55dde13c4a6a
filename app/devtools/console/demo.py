"""The demo model and the demo gateway: what ``lucy dev`` talks to when no LLM and no OpenClaw
gateway are configured, so the console shows the whole loop with no account anywhere. Both are
labelled as demos in every answer, and both speak the real wire protocols (OpenAI chat
completions with ``tool_calls`` and ``usage``; OpenClaw ``POST /tools/invoke``).

The demo model is a tiny script, not a model: ``run <command>`` asks for the ``exec`` tool (so
the task waits for an approval), a request that mentions a file or CSV asks for ``create_file``,
a tool result is summarised, anything else gets an echo with these hints. The demo gateway
**never executes anything**: ``exec`` answers what it would have run, files live in memory and
``web_fetch`` returns a placeholder page.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

DEMO_MODEL_KEY = "sk-demo-console-model"
DEMO_GATEWAY_KEY = "oc-demo-console-gateway-0000"
HINTS = "Try `run uptime` (a step that needs an approval) or `make a csv of our team` (a file)."
_ids = itertools.count(1)


def _user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return str(message["content"])
    return ""


def demo_answer(body: dict[str, Any]) -> dict[str, Any]:
    """The assistant message (and finish reason) the demo model gives for one request."""
    messages = body.get("messages") or []
    tools = {t.get("function", {}).get("name") for t in body.get("tools") or []}
    text = _user_text(messages).strip()
    request = re.sub(r"^(<@\w+>\s*)+", "", text)
    if (body.get("response_format") or {}).get("type") == "json_object":
        intent = "tool_use" if request.lower().startswith("run ") else "chat"
        return {"role": "assistant", "content": json.dumps({"intent": intent, "reason": "demo model"})}
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        output = str(last.get("content") or "")[:1500]
        return {
            "role": "assistant",
            "content": f"(demo model) Here is what the tool answered:\n```\n{output}\n```",
        }
    if request.lower().startswith("run ") and "exec" in tools:
        return _call("exec", {"command": request[4:].strip()})
    if re.search(r"\b(csv|file|spreadsheet)\b", request, re.IGNORECASE) and "create_file" in tools:
        rows = [["name", "role"], ["Alice", "member"], ["Bob", "admin"], ["Carol", "guest"]]
        return _call(
            "create_file", {"format": "csv", "filename": "team.csv", "title": "Our team", "rows": rows}
        )
    return {
        "role": "assistant",
        "content": f"(demo model, no LLM configured: a scripted answer) You asked: {request}\n{HINTS}",
    }


def _call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    call = {
        "id": f"call_demo_{next(_ids)}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def _text(text: str, **details: Any) -> dict[str, Any]:
    return {"ok": True, "result": {"content": [{"type": "text", "text": text}], "details": details}}


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat completion carrying the demo's answer to ``body``."""
    message = demo_answer(body)
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cost": 0.0}
    choice = {
        "index": 0,
        "message": message,
        "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
    }
    return {
        "id": f"gen-demo-{next(_ids)}",
        "object": "chat.completion",
        "created": 1700000000,
        "model": body.get("model") or "demo",
        "choices": [choice],
        "usage": usage,
    }


def _tool_answer(files: dict[str, str], tool: str, args: dict[str, Any]) -> JSONResponse:
    """What the demo gateway answers for one tool call; nothing is executed or fetched."""
    if tool == "exec":
        command = str(args.get("command") or "")
        text = f"(demo gateway: nothing was executed) $ {command}\nthis is where its output would be"
        return JSONResponse(
            _text(text, status="completed", exitCode=0, durationMs=1, aggregated=text, cwd="/demo")
        )
    if tool == "write":
        files[str(args.get("path"))] = str(args.get("content") or "")
        return JSONResponse(_text(f"(demo gateway) wrote {args.get('path')}"))
    if tool == "read":
        return JSONResponse(_text(files.get(str(args.get("path")), "(demo gateway) no such file")))
    if tool == "web_fetch":
        url = str(args.get("url") or "")
        return JSONResponse(
            _text("(demo gateway) a placeholder page: nothing was fetched", url=url, finalUrl=url)
        )
    return JSONResponse(
        {"ok": False, "error": {"type": "not_found", "message": f"Tool not available: {tool}"}},
        status_code=404,
    )


def demo_router(prefix: str = "/console/demo") -> APIRouter:
    """``{prefix}/llm/v1/chat/completions`` and ``{prefix}/gateway/tools/invoke``."""
    router = APIRouter(prefix=prefix, include_in_schema=False)
    files: dict[str, str] = {}

    @router.post("/llm/v1/chat/completions")
    async def completions(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {DEMO_MODEL_KEY}":
            return JSONResponse(
                {"error": {"message": "No auth credentials found", "code": 401}}, status_code=401
            )
        return JSONResponse(_completion(await request.json()))

    @router.post("/gateway/tools/invoke")
    async def invoke(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {DEMO_GATEWAY_KEY}":
            return JSONResponse(
                {"error": {"message": "Unauthorized", "type": "unauthorized"}}, status_code=401
            )
        body = await request.json()
        args = body.get("args") if isinstance(body.get("args"), dict) else {}
        return _tool_answer(files, str(body.get("tool") or ""), args)

    return router
