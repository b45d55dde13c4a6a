"""Slack's Block Kit limits, and the check of a payload against them.

Builders cap their text with :func:`lucy.slack.text.fit` using the limits below (counted after
escaping, as Slack counts). :func:`block_problems` checks a whole payload two ways: with
``slack_sdk.models`` (each block parsed and serialised, which runs its validators) and against
the limits slack_sdk does not enforce. The fake Slack answers ``invalid_blocks`` when it finds a
problem, as Slack does, and the property tests feed every builder adversarial text through it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from lucy.slack.text import fit, split_message

MESSAGE_BLOCKS = 50  # blocks in one message
VIEW_BLOCKS = 100  # blocks in a Home tab or a modal
SECTION_TEXT = 3_000  # a section's text (and a context element's text)
FIELD_TEXT = 2_000  # one of a section's fields
HEADER_TEXT = 150  # a header's plain text
CONFIRM_TEXT = 300  # a confirmation dialog's text
BUTTON_VALUE = 2_000  # a button's value
MARKDOWN_TEXT = 12_000  # a streaming message's markdown_text
EMPTY = "_(empty)_"  # shown for a text that came out empty (Slack refuses empty texts)


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every object in ``node``, itself included, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from _objects(item)


def _own_limits(block: dict[str, Any]) -> list[str]:
    """The limits slack_sdk does not check, and empty texts (Slack refuses them)."""
    found: list[str] = []
    kind = block.get("type")
    text = (block.get("text") or {}).get("text") if isinstance(block.get("text"), dict) else None
    if kind == "header" and text is not None and len(text) > HEADER_TEXT:
        found.append(f"header text is {len(text)} characters (at most {HEADER_TEXT})")
    for field in block.get("fields") or []:
        if len(str(field.get("text") or "")) > FIELD_TEXT:
            found.append(f"a section field is over {FIELD_TEXT} characters")
    for node in _objects(block):
        if node.get("type") in ("mrkdwn", "plain_text", "text") and not node.get("text"):
            found.append(f"an empty {node.get('type')} text")
        if node.get("type") == "mrkdwn" and len(str(node.get("text"))) > SECTION_TEXT:
            found.append(f"a mrkdwn text is over {SECTION_TEXT} characters")
        dialog = node.get("confirm")  # an element's confirmation dialog (its text is an object)
        said = dialog.get("text") if isinstance(dialog, dict) else None
        if isinstance(said, dict) and len(str(said.get("text"))) > CONFIRM_TEXT:
            found.append(f"a confirm text is over {CONFIRM_TEXT} characters")
        if node.get("type") == "button" and len(str(node.get("value") or "")) > BUTTON_VALUE:
            found.append(f"a button value is over {BUTTON_VALUE} characters")
    return found


def _sdk_problem(block: dict[str, Any]) -> str | None:
    try:
        parsed = Block.parse(block)
        if parsed is None or parsed.type != block.get("type"):
            return f"slack_sdk does not know the block type {block.get('type')!r}"
        parsed.to_dict()  # runs the validators of the block and everything in it
    except (SlackObjectFormationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        return f"slack_sdk: {exc}"
    return None


def block_problems(blocks: Any, *, most: int = MESSAGE_BLOCKS) -> list[str]:
    """What Slack would reject in ``blocks`` (empty when nothing): the number of blocks, each
    block as slack_sdk validates it, and the limits it does not check."""
    if not isinstance(blocks, list):
        return ["blocks is not a list"]
    found = [f"{len(blocks)} blocks (at most {most})"] if len(blocks) > most else []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            found.append(f"block {i} is not an object")
            continue
        problem = _sdk_problem(block)
        found += [f"block {i}: {p}" for p in ([problem] if problem else []) + _own_limits(block)]
    return found


def view_problems(view: Any) -> list[str]:
    """What Slack would reject in a Home tab or modal ``view``."""
    if not isinstance(view, dict):
        return ["view is not an object"]
    try:
        View(**view).to_dict()
    except (SlackObjectFormationError, TypeError, ValueError) as exc:
        return [f"slack_sdk: {exc}"]
    return block_problems(view.get("blocks") or [], most=VIEW_BLOCKS)


def markdown_problems(text: Any) -> list[str]:
    """What Slack would reject in a streaming message's ``markdown_text``."""
    size = len(str(text or ""))
    return [f"markdown_text is {size} characters (at most {MARKDOWN_TEXT})"] if size > MARKDOWN_TEXT else []


def section(text: str) -> dict[str, Any]:
    """A mrkdwn section of escaped ``text``, cut to Slack's limit (see :func:`fit`); Slack
    refuses an empty text, so none is sent."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": fit(text, SECTION_TEXT) or EMPTY}}


def sections(text: str, *, most: int = 4) -> list[dict[str, Any]]:
    """Escaped ``text`` in as many sections as it needs (at most ``most``, the last one cut),
    each within Slack's limit and never cut inside an entity or a link."""
    parts = split_message(text, SECTION_TEXT)
    return [section(part) for part in parts[: most - 1]] + (
        [section("\n".join(parts[most - 1 :]))] if len(parts) >= most else []
    )


def context(text: str) -> dict[str, Any]:
    """A context line of escaped mrkdwn ``text``, cut to Slack's limit."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": fit(text, SECTION_TEXT) or EMPTY}]}
