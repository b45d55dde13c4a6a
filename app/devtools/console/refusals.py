"""What the fake Slack refuses as Slack does: blocks, views and streamed text over Slack's
published limits (checked with :mod:`lucy.slack.limits`, after escaping)."""

from __future__ import annotations

import json
from typing import Any

from lucy.slack.limits import block_problems, markdown_problems, view_problems

_BLOCK_METHODS = frozenset({"chat.postMessage", "chat.update", "chat.postEphemeral", "chat.stopStream"})
_VIEW_METHODS = frozenset({"views.publish", "views.open", "views.update", "views.push"})


def payload_refusal(method: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """Slack's answer to blocks, a view or ``markdown_text`` over its limits (None: accepted):
    ``invalid_blocks`` for a message, ``invalid_arguments`` for a view, ``msg_too_long`` for a
    streaming message's text; Slack's reasons are in ``response_metadata.messages``."""
    if method in _BLOCK_METHODS and params.get("blocks"):
        found, error = block_problems(params["blocks"]), "invalid_blocks"
    elif method in _VIEW_METHODS and params.get("view") is not None:
        found, error = view_problems(json_field(params["view"])), "invalid_arguments"
    elif params.get("markdown_text"):
        found, error = markdown_problems(params["markdown_text"]), "msg_too_long"
    else:
        return None
    if not found:
        return None
    return {"ok": False, "error": error, "response_metadata": {"messages": [f"[ERROR] {p}" for p in found]}}


def json_field(value: Any) -> Any:
    """Slack accepts JSON fields (blocks, metadata, views) as objects or as JSON text in a form body."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
