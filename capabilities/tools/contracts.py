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
    # Who approved this call (Slack user id), when a person did: the audit of a workspace's
    # own tools (MCP) records it next to the call.
    approved_by: str = ""


@dataclass(frozen=True)
class WorkspaceTool:
    """A tool that only one workspace has (an MCP server's tool), as the task learns it from
    ``context.prepare``: checked and capped by the worker, so the workflow only builds its spec.

    ``name`` is what the model sees (``mcp__<server>__<tool>``); ``server`` and ``tool`` what
    the worker calls; ``risk`` is ``low`` or ``high`` (the server's read-only hint, or the
    admin's override); ``read_only`` decides the retries."""

    name: str
    description: str
    parameters: dict[str, Any]
    server: str
    tool: str
    risk: str = "high"
    read_only: bool = False


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
