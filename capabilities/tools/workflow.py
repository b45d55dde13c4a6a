"""The model's arguments for a tool call, checked against the tool's schema before anything runs.

The tools themselves (schemas, activities, timeouts, risk) are declared once each, in
:mod:`capabilities.tools.activities.registry`; this module is the workflow's pure argument check.
"""

from __future__ import annotations

import json
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from capabilities.tools.spec import ToolSpec


def validate_arguments(tool: ToolSpec, raw: str) -> tuple[dict[str, Any] | None, str | None]:
    """Parse and check the model's arguments; returns (arguments, None) or (None, an explanation
    the model can act on)."""
    try:
        args = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        return None, (
            f"the arguments were not valid JSON ({exc.msg} at position {exc.pos}); "
            f"call {tool.name} again with a JSON object"
        )
    if not isinstance(args, dict):
        return None, f"the arguments must be a JSON object, not {type(args).__name__}"
    missing = [name for name in tool.required if args.get(name) in (None, "")]
    if missing:
        return None, f"missing required argument(s): {', '.join(missing)}"
    properties = tool.parameters.get("properties", {})
    for name, value in args.items():
        kind = properties.get(name, {}).get("type")
        if kind == "string" and not isinstance(value, str):
            return None, f"argument {name!r} must be a string"
        if kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
            return None, f"argument {name!r} must be an integer"
    for name, allowed in tool.enums.items():
        if name in args and args[name] not in allowed:
            return None, f"argument {name!r} must be one of {', '.join(allowed)}"
    return args, None
