"""Slack's assistant threads, for :class:`app.devtools.console.backend.SlackBackend`:
``assistant.threads.setStatus`` and ``assistant.threads.setTitle`` as Slack answers them.

They apply to a thread of a direct message with the app (an assistant thread): elsewhere Slack
answers ``invalid_thread_ts``; ``assistant_refusal`` makes every call answer that error (a
token or workspace without the AI-app feature: ``not_allowed_token_type``...). The last status
of each thread is in ``statuses`` (an empty status clears it), every status set in
``status_log``, titles in ``titles``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class AssistantMixin:
    statuses: dict[tuple[str, str], str] = field(default_factory=dict)  # (channel, thread) -> status
    status_log: list[tuple[str, str, str]] = field(default_factory=list)  # (channel, thread, status)
    titles: dict[tuple[str, str], str] = field(default_factory=dict)
    assistant_refusal: str | None = None

    def reset_assistant(self) -> None:
        self.statuses.clear()
        self.status_log.clear()
        self.titles.clear()
        self.assistant_refusal = None

    def _assistant_thread(self, p: dict[str, Any]) -> tuple[tuple[str, str] | None, str | None]:
        channel, thread = str(p.get("channel_id") or ""), str(p.get("thread_ts") or "")
        if not channel or not thread:
            return None, "invalid_arguments"
        if self.assistant_refusal:
            return None, self.assistant_refusal
        if not channel.startswith("D"):
            return None, "invalid_thread_ts"  # not an assistant thread
        return (channel, thread), None

    def _m_assistant_threads_setStatus(self, p: dict[str, Any]) -> dict[str, Any]:
        key, error = self._assistant_thread(p)
        if key is None:
            return {"ok": False, "error": error}
        status = str(p.get("status") or "")
        self.statuses[key] = status
        self.status_log.append((*key, status))
        return {"ok": True}

    def _m_assistant_threads_setTitle(self, p: dict[str, Any]) -> dict[str, Any]:
        key, error = self._assistant_thread(p)
        if key is None:
            return {"ok": False, "error": error}
        if not p.get("title"):
            return {"ok": False, "error": "invalid_arguments"}
        self.titles[key] = str(p["title"])
        return {"ok": True}
