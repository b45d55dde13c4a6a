"""What the MCP activities exchange with workflows (the workspace tool itself,
``WorkspaceTool``, is in ``capabilities.tools.contracts``: the task's context carries it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class McpRefreshRequest:
    """List again the servers whose catalog is older than ``stale_after_hours`` (at most
    ``most`` per workspace in one run)."""

    stale_after_hours: int = 6
    most: int = 20


@dataclass(frozen=True)
class McpRefreshResult:
    """Servers listed again, and those that could not be reached (they keep their last list)."""

    refreshed: int = 0
    unreachable: int = 0
