"""The demo LLM of ``python -m tests.fakes.serve`` and the scale-out bench: a tiny agent. A
request that starts with ``run `` asks for the ``exec`` tool with the rest of the text (so it
waits for an approval), a tool result is summarised, anything else is echoed.

Its own module, not ``tests.fakes.serve``: importing that submodule would shadow the package's
``serve`` function (``from tests.fakes import serve``) for every fake imported after it."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.llm import FakeLlm, Scripted


class DemoLlm(FakeLlm):
    def _take(self, body: dict[str, Any]) -> Scripted:
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        tools = {t["function"]["name"] for t in body.get("tools") or []}
        if body.get("response_format") or not messages:
            return super()._take(body)
        if last.get("role") == "tool":
            return Scripted(content=f"Here is what I got:\n```\n{last.get('content', '')[:1500]}\n```")
        text = str(last.get("content") or "")
        if text.startswith("run ") and "exec" in tools:
            return Scripted(content=None, tool_calls=[("exec", json.dumps({"command": text[4:]}))])
        return super()._take(body)
