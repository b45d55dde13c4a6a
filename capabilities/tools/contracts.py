"""One tool execution: what the workflow asks an activity to run, and what comes back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolRequest:
    """One tool execution. ``tool`` is the catalog name the model used (``exec``,
    ``read_file``, ``browser``...); ``arguments`` are already parsed and validated as JSON.
    ``state`` carries small per-task tool state between calls (the browser's tab id and url)."""

    workflow_id: str
    step: int
    tool: str
    arguments: dict[str, Any]
    workspace_id: str = ""
    slack_channel_id: str = ""
    thread_ts: str = ""
    state: dict[str, str] = field(default_factory=dict)
    # Who the task works for (Slack user id): per-user tool identities (Composio entity,
    # browser profile) are derived from it on the worker, never chosen by the model.
    slack_user_id: str = ""


@dataclass(frozen=True)
class ToolResult:
    """What the model sees (``output``, truncated so the history stays small) and the updated
    per-task tool ``state``. ``ok=False`` is a failure the model should hear about (a command
    that exited non-zero); infrastructure errors are raised as ``ApplicationError`` instead."""

    output: str
    ok: bool = True
    truncated: bool = False
    state: dict[str, str] = field(default_factory=dict)


TOOL_OUTPUT_LIMIT = 6_000  # characters of tool output kept in the workflow history


def truncate_output(text: str, limit: int = TOOL_OUTPUT_LIMIT) -> tuple[str, bool]:
    """Head and tail of a long tool output, with a marker saying how much was left out."""
    if len(text) <= limit:
        return text, False
    half = limit // 2
    omitted = len(text) - 2 * half
    return f"{text[:half]}\n[… {omitted} characters omitted …]\n{text[-half:]}", True
