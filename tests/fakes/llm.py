"""A fake OpenAI-compatible chat-completions server (OpenRouter's wire protocol).

``POST /api/v1/chat/completions`` with ``Authorization: Bearer <key>``. Scripted answers
are consumed in order; with none left it echoes the last user message. Errors are returned
the way providers return them: ``{"error": {"message", "code"}}`` with the HTTP status and,
for 429, ``Retry-After``.

A request with ``stream: true`` is answered as OpenAI and OpenRouter stream: server-sent
events (``data: {chunk}``), a ``: OPENROUTER PROCESSING`` comment first, content and tool call
deltas, the finish reason, the usage in a last chunk without choices (when
``stream_options.include_usage`` or OpenRouter's ``usage.include`` asks for it), then
``data: [DONE]``. The first token comes after ``first_token_delay`` seconds and the rest at
``tokens_per_s`` (0: at once; a request that does not stream gets its whole answer after the
same time); a token is about 4 characters unless the script gives
``chunks``. ``drop_after`` closes the connection after that many content chunks (a provider or
network failure mid-answer); ``stall_after`` stops sending after that many (the answer never
ends: the worker reading it is killed in the test). ``streaming = False`` answers every request with plain JSON
(a provider that does not stream).

``POST /api/v1/embeddings`` answers as OpenAI's embeddings endpoint, with deterministic vectors
(:mod:`tests.fakes.embeddings`); its requests are kept in ``embedding_requests``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import serve
from tests.fakes.embeddings import vector


@dataclass
class Scripted:
    status: int = 200
    content: str | None = None
    retry_after: float | None = None
    prompt_tokens: int = 12
    completion_tokens: int = 7
    cost: float | None = 0.00042
    delay: float = 0.0  # seconds before answering (a slow model)
    # ``[(name, arguments_json_text), ...]``: the answer is an assistant turn calling these tools
    tool_calls: list[tuple[str, str]] | None = None
    # Which requests may take this answer: None = any task request; "classify" = the intent
    # classification (``response_format: json_object``); another string = that model only.
    match: str | None = None
    chunks: list[str] | None = None  # the content's stream chunks (default: ~4 characters each)
    drop_after: int | None = None  # close the connection after this many content chunks
    stall_after: int | None = None  # stop sending (for good) after this many content chunks
    # Only a request whose first user message contains this text may take this answer (tasks
    # running at once, e.g. a parent and its sub-tasks, each get their own script).
    user_contains: str | None = None


@dataclass
class FakeLlm:
    api_key: str = "sk-or-fake-key-123456"
    requests: list[dict[str, Any]] = field(default_factory=list)
    embedding_requests: list[dict[str, Any]] = field(default_factory=list)
    script: list[Scripted] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    port: int = 0
    streaming: bool = True
    first_token_delay: float = 0.0
    tokens_per_s: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    @property
    def task_requests(self) -> list[dict[str, Any]]:
        """The requests of the agent loop, without the intent classifications."""
        return [r for r in self.requests if not _is_classification(r)]

    def reset(self) -> None:
        self.requests.clear()
        self.embedding_requests.clear()
        self.script.clear()

    def then(self, **kwargs: Any) -> FakeLlm:
        self.script.append(Scripted(**kwargs))
        return self

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/chat/completions", self._completions)
        app.router.add_post("/api/v1/embeddings", self._embeddings)
        self._runner, self.port = await serve(app, port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _take(self, body: dict[str, Any]) -> Scripted:
        """The first scripted answer this request may take; otherwise a default answer (an echo,
        or for an intent classification ``{"intent": "chat"}``)."""
        classify = _is_classification(body)
        for index, step in enumerate(self.script):
            if step.user_contains is not None and step.user_contains not in _first_user(body):
                continue
            if step.match is None and not classify:
                return self.script.pop(index)
            if step.match == "classify" and classify:
                return self.script.pop(index)
            if step.match not in (None, "classify") and step.match == body.get("model"):
                return self.script.pop(index)
        if classify:
            return Scripted(content='{"intent": "chat", "reason": "default"}', cost=0.00001)
        return Scripted()

    async def _embeddings(self, request: web.Request) -> web.Response:
        """OpenAI's ``POST /embeddings``: ``input`` (a string or a list) → one vector each."""
        body = await request.json()
        self.embedding_requests.append(body)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "No auth credentials found")
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return _error(400, "input must be a string or a list of strings")
        data = [{"object": "embedding", "index": i, "embedding": vector(t)} for i, t in enumerate(texts)]
        tokens = sum(len(t) // 4 + 1 for t in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model", ""),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "No auth credentials found")
        step = self._take(body)
        if step.delay:
            await asyncio.sleep(step.delay)
        if step.status != 200:
            headers = {"Retry-After": str(step.retry_after)} if step.retry_after is not None else {}
            messages = {
                400: "Bad request",
                401: "User not found.",
                402: "Insufficient credits",
                429: "Rate limit exceeded",
            }
            return _error(step.status, messages.get(step.status, "Internal server error"), headers)
        user_text = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
        content: str | None = step.content if step.content is not None else f"You asked: {user_text}"
        message: dict[str, Any] = {"role": "assistant", "content": content}
        finish = "stop"
        if step.tool_calls:
            message["content"] = step.content  # usually null next to tool calls
            message["tool_calls"] = [
                {
                    "id": f"call_{next(self._ids)}",
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
                for name, arguments in step.tool_calls
            ]
            finish = "tool_calls"
        usage: dict[str, Any] = {
            "prompt_tokens": step.prompt_tokens,
            "completion_tokens": step.completion_tokens,
            "total_tokens": step.prompt_tokens + step.completion_tokens,
        }
        if step.cost is not None:
            usage["cost"] = step.cost
        if body.get("stream") and self.streaming:
            return await self._stream(request, body, step, message, finish, usage)
        if self.tokens_per_s and not _is_classification(body):  # the same model, not streamed
            tokens = -(-len(message.get("content") or "") // 4)
            await asyncio.sleep(self.first_token_delay + max(tokens - 1, 0) / self.tokens_per_s)
        return web.json_response(
            {
                "id": f"gen-{next(self._ids)}",
                "object": "chat.completion",
                "created": 1700000000,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": finish,
                    }
                ],
                "usage": usage,
            }
        )

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        step: Scripted,
        message: dict[str, Any],
        finish: str,
        usage: dict[str, Any],
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        ident = f"gen-{next(self._ids)}"

        async def send(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            chunk = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await response.write(b": OPENROUTER PROCESSING\n\n")
        await send({"role": "assistant", "content": ""})
        content = message.get("content") or ""
        pieces = (
            step.chunks
            if step.chunks is not None
            else [content[i : i + 4] for i in range(0, len(content), 4)]
        )
        await asyncio.sleep(self.first_token_delay)
        for index, piece in enumerate(pieces):
            if step.drop_after is not None and index >= step.drop_after:
                assert request.transport is not None
                request.transport.close()  # the connection drops mid-answer
                return response
            if step.stall_after is not None and index >= step.stall_after:
                await asyncio.sleep(3600)  # a model (or a worker) that never finishes this answer
            if index and self.tokens_per_s:
                await asyncio.sleep(1 / self.tokens_per_s)
            await send({"content": piece})
        for index, call in enumerate(message.get("tool_calls") or []):
            function = call["function"]
            await send(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": function["name"], "arguments": ""},
                        }
                    ]
                }
            )
            await send({"tool_calls": [{"index": index, "function": {"arguments": function["arguments"]}}]})
        await send({}, finish)
        if (body.get("stream_options") or {}).get("include_usage") or (body.get("usage") or {}).get(
            "include"
        ):
            tail = {
                "id": ident,
                "object": "chat.completion.chunk",
                "model": body["model"],
                "choices": [],
                "usage": usage,
            }
            await response.write(f"data: {json.dumps(tail)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _first_user(body: dict[str, Any]) -> str:
    return next(
        (str(m.get("content") or "") for m in body.get("messages", []) if m.get("role") == "user"), ""
    )


def _is_classification(body: dict[str, Any]) -> bool:
    return (body.get("response_format") or {}).get("type") == "json_object"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "code": status}}, status=status, headers=headers)
