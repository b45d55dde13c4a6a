"""The tool circuit breaker: a tool the gateway blocks, or that keeps failing, is withdrawn for
the rest of the task (and the user is told). Pure functions over the task's state."""

from __future__ import annotations

from capabilities.task.contracts.task import TaskState
from capabilities.task.workflow import prompts
from lucy.contracts.errors import ErrorType

FAILURE_LIMIT = 3  # consecutive failures before a tool is unavailable for the task


def succeeded(state: TaskState, tool: str) -> None:
    state.tool_failures[tool] = 0


def failed(state: TaskState, tool: str, kind: str) -> None:
    """Count a failed call of ``tool`` (error type ``kind``) and withdraw the tool if it must go."""
    if kind == ErrorType.EGRESS_DENIED:
        # Not a failing tool but a refused address: the browser closed its tab.
        for key in ("tab_id", "url"):
            state.tool_state.pop(key, None)
        return
    if kind == ErrorType.TOOL_BLOCKED:
        state.notices.append(prompts.tool_blocked(tool))
        _withdraw(state, tool)
        return
    if kind == ErrorType.TOOL_NOT_CONFIGURED:
        _withdraw(state, tool)
        return
    failures = state.tool_failures.get(tool, 0) + 1
    state.tool_failures[tool] = failures
    if failures >= FAILURE_LIMIT and tool not in state.unavailable_tools:
        _withdraw(state, tool)
        state.notices.append(prompts.tool_withdrawn(tool, failures))


def _withdraw(state: TaskState, tool: str) -> None:
    if tool not in state.unavailable_tools:
        state.unavailable_tools.append(tool)
