"""Reading a streamed chat completion (OpenAI-style server-sent events), for
:mod:`capabilities.task.activities.llm`.

``data: {chunk}`` lines with ``choices[0].delta`` (text, tool call pieces by index), comments
(``: OPENROUTER PROCESSING``) as keep-alives, the usage (and OpenRouter's cost) in the final
chunk, ``data: [DONE]`` at the end. Text goes to the Slack stream as it arrives.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

from capabilities.budgets.rules import reported_cost
from capabilities.task.activities.slack_stream import SlackStream
from lucy.contracts.errors import ErrorType
from lucy.contracts.llm import LlmResponse, ToolCall


async def read_events(
    response: httpx.Response, requested_model: str, stream: SlackStream, usage: dict[str, Any]
) -> tuple[LlmResponse, float | None]:
    """Read an OpenAI-style SSE stream (``data: {chunk}`` lines, ``data: [DONE]`` at the end,
    ``:`` comments as keep-alives); text deltas go to ``stream``; tool call deltas are put back
    together by index; usage comes in the final chunk and is kept in ``usage`` as it arrives
    (a stream cut off after it is still settled to it)."""
    model = requested_model
    finish: str | None = None
    calls: dict[int, dict[str, str]] = {}
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, ": keep-alive" comments, event names
        data = line[5:].strip()
        if data == "[DONE]":
            break
        try:
            chunk = json.loads(data)
        except ValueError:
            raise ApplicationError(
                "LLM stream sent something that is not JSON", type=ErrorType.LLM_BAD_RESPONSE
            ) from None
        if not isinstance(chunk, dict):
            continue
        if chunk.get("error"):  # OpenRouter reports an upstream failure mid-stream this way
            err = chunk["error"]
            message = err.get("message") if isinstance(err, dict) else err
            raise ApplicationError(f"LLM stream failed: {str(message)[:200]}", type=ErrorType.LLM_RETRYABLE)
        model = str(chunk.get("model") or model)
        if isinstance(chunk.get("usage"), dict):
            usage.clear()
            usage.update(chunk["usage"])
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            for raw in delta.get("tool_calls") or []:
                entry = calls.setdefault(int(raw.get("index") or 0), {"id": "", "name": "", "arguments": ""})
                function = raw.get("function") or {}
                entry["id"] = entry["id"] or str(raw.get("id") or "")
                entry["name"] += str(function.get("name") or "")
                entry["arguments"] += str(function.get("arguments") or "")
            if delta.get("content"):
                await stream.add(str(delta["content"]))
            finish = choice.get("finish_reason") or finish
    reported = reported_cost(usage)
    tool_calls = [
        ToolCall(id=c["id"] or f"call_{i}", name=c["name"], arguments=c["arguments"] or "{}")
        for i, c in sorted(calls.items())
        if c["name"]
    ]
    result = LlmResponse(
        content=stream.text.raw,
        tool_calls=tool_calls,
        model=model,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cost_usd=reported or 0.0,
        finish_reason=finish,
    )
    return result, reported
