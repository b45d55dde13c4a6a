"""The OpenClaw gateway's tools-invoke protocol, as plain functions: the model's arguments
translated and checked for each gateway tool, and a tool result read back (see
:mod:`capabilities.tools.activities.gateway` for the wire protocol and the activity that speaks it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from temporalio.exceptions import ApplicationError

from lucy.contracts.errors import ErrorType

# Catalog name (what the model calls) -> gateway tool.
GATEWAY_TOOLS: dict[str, str] = {
    "exec": "exec",
    "read_file": "read",
    "write_file": "write",
    "edit_file": "edit",
    "web_fetch": "web_fetch",
}

DEFAULT_EXEC_TIMEOUT = 60.0  # seconds, when the model gives none (the catalog says so)
MAX_EXEC_TIMEOUT = 600.0  # well inside the exec activity's start-to-close timeout
EXEC_YIELD_MS = 10_000  # the gateway answers `running` after this long
_MESSAGE_LIMIT = 500


def reject(message: str) -> NoReturn:
    raise ApplicationError(message, type=ErrorType.TOOL_REJECTED, non_retryable=True)


# --------------------------------------------------------------------------- argument checks


def _required_str(args: dict[str, Any], name: str, tool: str) -> str:
    value = args.get(name)
    if not isinstance(value, str):
        kind = "missing" if value is None else f"a {type(value).__name__}"
        reject(f"{tool} needs the argument {name!r} as a string (it is {kind})")
    if not value.strip():
        reject(f"{tool}: the argument {name!r} must not be empty")
    return value


def _optional_str(args: dict[str, Any], name: str, tool: str) -> str | None:
    value = args.get(name)
    if value is not None and not isinstance(value, str):
        reject(f"{tool}: the argument {name!r} must be a string, got {type(value).__name__}")
    return value or None


def _number_arg(args: dict[str, Any], name: str, tool: str) -> float | None:
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        reject(f"{tool}: the argument {name!r} must be a positive number, got {value!r}")
    return float(value)


def gateway_args(tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """Validate the model's arguments for ``tool`` and translate them to the gateway's."""
    if tool == "exec":
        out: dict[str, Any] = {"command": _required_str(args, "command", tool)}
        workdir = _optional_str(args, "workdir", tool)
        if workdir:
            out["workdir"] = workdir
        timeout = _number_arg(args, "timeout", tool) or DEFAULT_EXEC_TIMEOUT
        out["timeout"] = min(timeout, MAX_EXEC_TIMEOUT)
        out["yieldMs"] = EXEC_YIELD_MS
        return out
    if tool == "read_file":
        return {"path": _required_str(args, "path", tool)}
    if tool == "write_file":
        path = _required_str(args, "path", tool)
        content = args.get("content")
        if not isinstance(content, str):
            reject(f"{tool} needs the argument 'content' (a string)")
        return {"path": path, "content": content}
    if tool == "edit_file":
        path = _required_str(args, "path", tool)
        old_text = args.get("old_text")
        new_text = args.get("new_text")
        if not isinstance(old_text, str) or not old_text:
            reject(f"{tool} needs the argument 'old_text' (the exact text to replace)")
        if not isinstance(new_text, str):
            reject(f"{tool} needs the argument 'new_text' (a string, may be empty)")
        return {"path": path, "oldText": old_text, "newText": new_text}
    if tool == "web_fetch":
        url = _required_str(args, "url", tool)
        if not url.startswith(("http://", "https://")):
            reject(f"{tool}: the url must start with http:// or https://")
        out = {"url": url, "extractMode": "markdown"}
        max_chars = _number_arg(args, "max_chars", tool)
        if max_chars is not None:
            out["maxChars"] = int(max_chars)
        return out
    reject(f"unknown gateway tool {tool!r}; known: {', '.join(sorted(GATEWAY_TOOLS))}")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class GatewayResult:
    """The parts of an OpenClaw ``AgentToolResult`` that matter here."""

    text: str
    details: dict[str, Any]

    @property
    def status(self) -> str | None:
        status = self.details.get("status")
        return status if isinstance(status, str) else None

    @property
    def aggregated(self) -> str | None:
        value = self.details.get("aggregated")
        return value if isinstance(value, str) else None


def parse_result(body: Any) -> GatewayResult:
    if not isinstance(body, dict) or body.get("ok") is not True:
        raise ApplicationError(
            "the gateway answered with something that is not a tool result",
            type=ErrorType.TOOL_REJECTED,
            non_retryable=True,
        )
    result = body.get("result")
    if isinstance(result, str):
        return GatewayResult(result, {})
    if not isinstance(result, dict):
        return GatewayResult("" if result is None else str(result), {})
    parts: list[str] = []
    for item in result.get("content") or []:
        if isinstance(item, dict) and item.get("type") == "text" and isinstance(item.get("text"), str):
            parts.append(item["text"])
        elif isinstance(item, dict) and item.get("type") == "image":
            parts.append("[image omitted]")
    details = result.get("details")
    return GatewayResult("\n".join(parts), details if isinstance(details, dict) else {})


def _exit_label(details: dict[str, Any]) -> str:
    code = details.get("exitCode")
    label = f"exit code {code}" if isinstance(code, int) else "no exit code"
    if details.get("timedOut"):
        label += ", timed out"
    signal = details.get("exitSignal")
    if signal:
        label += f", signal {signal}"
    return label


def finished_exec(result: GatewayResult, *, fallback_output: str = "") -> tuple[str, bool]:
    """Output and ok flag of a finished command (``completed`` or ``failed``)."""
    output = result.aggregated if result.aggregated is not None else (fallback_output or result.text)
    output = output.rstrip() or "(no output)"
    if result.status == "completed":
        return output, True
    # The text is the reason ("Command exited with code 2"), after the output for a poll.
    reason = result.text.strip().rsplit("\n\n", 1)[-1].strip()
    footer = f"[command failed: {_exit_label(result.details)}]"
    if reason and reason not in output:
        footer = f"{reason}\n{footer}"
    return f"{output}\n\n{footer}", False
