"""What people see of recurring requests: the one offer, and ``/lucy patterns``.

The offer is the schedule confirmation itself (its Create button creates the schedule through the
ordinary path), headed by what Lucy noticed and with Not now and Never instead of Cancel. Button
values carry the pattern's id only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lucy.contracts.ids import PATTERN_ACTION_PREFIX
from lucy.slack.limits import context, section
from lucy.slack.text import escape_mrkdwn, fit, slack_date

LATER, NEVER = "later", "never"
LIST_LIMIT = 20
STATE_WORDS = {
    "detected": "noticed",
    "suggested": "offered",
    "accepted": "scheduled",
    "dismissed": "you said never",
}
USAGE = (
    "When you ask me the same thing at a regular time (say every Monday around 9:00) at least three "
    "times, I offer once to schedule it. `/lucy settings patterns off` stops me looking at your "
    "requests; `/lucy settings patterns on` lets me again."
)


@dataclass(frozen=True)
class PatternLine:
    """One recurring request as ``/lucy patterns`` shows it."""

    description: str
    request: str
    slack_channel_id: str
    occurrences: int
    status: str
    offer_after: datetime | None


def heading(description: str) -> str:
    return f"You asked this {description} — schedule it?"


def offer_blocks(
    confirmation: list[dict[str, Any]], *, pattern_id: str, description: str
) -> list[dict[str, Any]]:
    """The schedule ``confirmation`` headed by what Lucy noticed, its Cancel replaced by Not now
    and Never (Create stays the schedule's own)."""
    blocks = [section(f"*{escape_mrkdwn(heading(description))}*")]
    for block in confirmation:
        if block.get("type") == "actions":
            create = [e for e in block["elements"] if not str(e.get("action_id", "")).endswith("_discard")]
            block = {
                **block,
                "elements": [
                    *create,
                    _button("Not now", LATER, pattern_id),
                    _button("Never", NEVER, pattern_id),
                ],
            }
        blocks.append(block)
    return blocks


def _button(text: str, action: str, pattern_id: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": PATTERN_ACTION_PREFIX + action,
        "value": pattern_id,
    }


def pattern_list(lines: list[PatternLine], *, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    """What Lucy noticed for the caller, newest first."""
    if not lines:
        return [section("I have not noticed any recurring requests of yours.\n" + USAGE)]
    blocks = [section(f"*What I noticed you ask regularly* ({len(lines)})")]
    for line in lines[:limit]:
        state = STATE_WORDS.get(line.status, line.status)
        if line.status == "detected" and line.offer_after is not None:
            state = f"I may offer again after {slack_date(line.offer_after)}"
        blocks.append(
            section(
                f"*{escape_mrkdwn(line.description)}* in <#{line.slack_channel_id}> "
                f"({line.occurrences} times) · {escape_mrkdwn(state)}\n"
                f">{fit(escape_mrkdwn(line.request), 500)}"
            )
        )
    if len(lines) > limit:
        blocks.append(context(f"and {len(lines) - limit} more"))
    blocks.append(context(escape_mrkdwn(USAGE)))
    return blocks
