"""The envelope of a Slack modal, its input blocks, and what a submitted one holds.

Callers pass texts within Slack's limits (a title of at most 24 characters, a label of at most
2,000); the blocks inside are theirs (see :mod:`lucy.slack.limits`)."""

from __future__ import annotations

import json
from typing import Any


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def modal(
    title: str,
    blocks: list[dict[str, Any]],
    *,
    callback_id: str | None = None,
    submit: str | None = None,
    close: str = "Cancel",
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A modal view; ``metadata`` travels back as its ``private_metadata`` (JSON)."""
    view: dict[str, Any] = {"type": "modal"}
    if callback_id is not None:
        view["callback_id"] = callback_id
    view["title"] = plain(title)
    if submit is not None:
        view["submit"] = plain(submit)
    view["close"] = plain(close)
    if metadata is not None:
        view["private_metadata"] = json.dumps(metadata)
    view["blocks"] = blocks
    return view


def text_input(
    block_id: str, label: str, element: dict[str, Any], *, hint: str | None = None
) -> dict[str, Any]:
    """An input block: ``label`` over ``element`` (a ``plain_text_input``, a select...)."""
    block: dict[str, Any] = {"type": "input", "block_id": block_id, "label": plain(label)}
    if hint is not None:
        block["hint"] = plain(hint)
    block["element"] = element
    return block


def submitted(view: dict[str, Any], block_id: str, action_id: str = "value", key: str = "value") -> str:
    """What a submitted modal holds in ``block_id``/``action_id`` (``key``: ``value`` for a text
    input, ``selected_conversation`` for a conversation select); "" when it is missing."""
    values = (view.get("state") or {}).get("values") or {}
    return str(((values.get(block_id) or {}).get(action_id) or {}).get(key) or "")
