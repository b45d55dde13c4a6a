"""The OpenAI chat-completions wire format: the request body, the completion read back, and
what an unsuccessful answer means (:mod:`capabilities.task.activities.llm`'s errors)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

from capabilities.budgets.rules import reported_cost
from capabilities.tools.activities.http_errors import retry_after
from lucy.contracts.errors import ErrorType
from lucy.contracts.llm import ChatMessage, LlmRequest, LlmResponse, ToolCall


def completion_payload(request: LlmRequest, model: str, base_url: str) -> dict[str, Any]:
    """The request body, before its ``max_tokens`` (set from the budget hold) and streaming."""
    payload: dict[str, Any] = {"model": model, "messages": [wire_message(m) for m in request.messages]}
    if request.tools:
        payload["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
            }
            for t in request.tools
        ]
    if request.json_object:
        payload["response_format"] = {"type": "json_object"}
    if request.temperature is not None:
        payload["temperature"] = request.temperature
    if "openrouter.ai" in base_url:
        payload["usage"] = {"include": True}  # OpenRouter then reports the cost of the call
    return payload


_NON_RETRYABLE = {
    400: ErrorType.LLM_REJECTED,
    401: ErrorType.LLM_UNAUTHORIZED,
    402: ErrorType.LLM_PAYMENT_REQUIRED,
    403: ErrorType.LLM_UNAUTHORIZED,
    404: ErrorType.LLM_REJECTED,
    422: ErrorType.LLM_REJECTED,
}


def _provider_message(response: httpx.Response) -> str:
    """The provider's own error message, shortened; never the request (which holds no key anyway)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return str(err.get("message", ""))[:200]
    return str(err or body)[:200]


def timed_out(exc: Exception) -> ApplicationError:
    return ApplicationError(f"LLM call timed out ({exc.__class__.__name__})", type=ErrorType.LLM_RETRYABLE)


def unreachable(exc: Exception) -> ApplicationError:
    return ApplicationError(
        f"LLM endpoint unreachable ({exc.__class__.__name__})", type=ErrorType.LLM_RETRYABLE
    )


def check_status(response: httpx.Response) -> None:
    """Raise the error an unsuccessful HTTP status means."""
    status = response.status_code
    if status in _NON_RETRYABLE:
        raise ApplicationError(
            f"LLM refused the request: HTTP {status}: {_provider_message(response)}",
            type=_NON_RETRYABLE[status],
            non_retryable=True,
        )
    if status == 429 or status >= 500 or status == 408:
        raise ApplicationError(
            f"LLM unavailable: HTTP {status}: {_provider_message(response)}",
            type=ErrorType.LLM_RETRYABLE,
            next_retry_delay=retry_after(response),
        )
    if status >= 300:
        raise ApplicationError(f"LLM answered HTTP {status}", type=ErrorType.LLM_REJECTED, non_retryable=True)


def wire_message(message: ChatMessage) -> dict[str, Any]:
    """A chat message in the OpenAI wire format (assistant tool calls and tool results included)."""
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id is not None:
        wire["tool_call_id"] = message.tool_call_id
    return wire


def parse_completion(response: httpx.Response, requested_model: str) -> tuple[LlmResponse, float | None]:
    """The completion, and the cost the provider reported (None when it reported none)."""
    try:
        body = response.json()
        choice = body["choices"][0]
        message = choice["message"]
        content = message.get("content") or ""
    except (ValueError, KeyError, IndexError, TypeError):
        # Some providers answer 200 with an error object (OpenRouter does for upstream errors).
        raise ApplicationError(
            "LLM answered with something that is not a chat completion", type=ErrorType.LLM_BAD_RESPONSE
        ) from None
    calls: list[ToolCall] = []
    for index, raw in enumerate(message.get("tool_calls") or []):
        function = raw.get("function") if isinstance(raw, dict) else None
        if not isinstance(function, dict) or not function.get("name"):
            continue  # nothing callable in it; the model will be asked again if it answered nothing
        arguments = function.get("arguments")
        calls.append(
            ToolCall(
                id=str(raw.get("id") or f"call_{index}"),
                name=str(function["name"]),
                # Kept as the model's raw text: malformed JSON is the workflow's to answer.
                arguments=arguments if isinstance(arguments, str) else json.dumps(arguments or {}),
            )
        )
    usage = body.get("usage") or {}
    reported = reported_cost(usage)
    response_ = LlmResponse(
        content=content,
        tool_calls=calls,
        model=str(body.get("model") or requested_model),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cost_usd=reported or 0.0,
        finish_reason=choice.get("finish_reason"),
    )
    return response_, reported
