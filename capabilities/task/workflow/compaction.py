"""Keeping the model's context small: pure functions over the conversation."""

from __future__ import annotations

import dataclasses

from capabilities.tools.contracts import truncate_output
from lucy.contracts.llm import ChatMessage

CONTEXT_TRIM_CHARS = 8_000
CONTEXT_BUDGET_CHARS = 100_000  # beyond this, the oldest tool outputs are dropped from the prompt
REMOVED = "[output removed to keep the context small]"


def compact(messages: list[ChatMessage], budget: int = CONTEXT_BUDGET_CHARS) -> list[ChatMessage]:
    """Drop the oldest tool outputs (keeping the messages, so calls stay paired) until the
    conversation fits the budget."""
    total = sum(len(m.content) for m in messages)
    out = list(messages)
    for i, m in enumerate(out):
        if total <= budget:
            break
        if m.role == "tool" and len(m.content) > 100:
            total -= len(m.content) - len(REMOVED)
            out[i] = dataclasses.replace(m, content=REMOVED)
    return out


def trim_for_retry(messages: list[ChatMessage]) -> list[ChatMessage]:
    """A 400-proof version of a conversation: the system prompt, the request (shortened) and the
    latest tool results as plain text, so no tool message is left without its call."""
    system = [m for m in messages if m.role == "system"][:1]
    request = next((m for m in messages if m.role == "user"), ChatMessage(role="user", content=""))
    shortened, _ = truncate_output(request.content, CONTEXT_TRIM_CHARS)
    results = [m.content for m in messages if m.role == "tool"][-2:]
    trimmed = [*system, ChatMessage(role="user", content=shortened)]
    if results:
        notes = "\n\n".join(truncate_output(r, 2_000)[0] for r in results)
        trimmed.append(
            ChatMessage(role="user", content=f"(Earlier steps were left out. Latest results:)\n{notes}")
        )
    return trimmed
