"""What ``/lucy memory`` shows: each memory's id, scope, text, author, date and source link,
escaped and within Slack's limits (a plain-text ephemeral answer, cut as a section's text)."""

from __future__ import annotations

from datetime import datetime

from capabilities.memory.contracts import RecalledMemory
from lucy.slack.limits import SECTION_TEXT
from lucy.slack.text import escape_mrkdwn, fit, slack_date

SHOWN_TEXT = 300  # characters of one memory's text in the list

MEMORY_USAGE = (
    "Usage: `/lucy memory` (what I remember about you and in this channel), "
    "`/lucy memory forget <id>` or `/lucy memory forget all` (your own; admins may forget any)."
)
NOTHING = "I don't remember anything about you or in this channel yet. Ask me to remember something."


def memory_line(memory: RecalledMemory) -> str:
    link = f" · <{memory.link}|source>" if memory.link.startswith("https://") else ""
    when = slack_date(datetime.fromisoformat(memory.created_at), style="{date_short}")
    text = fit(escape_mrkdwn(memory.text), SHOWN_TEXT)
    return f"• `{memory.id}` ({memory.scope}) {text} — <@{memory.author_slack_id}>, {when}{link}"


def memory_list_text(shown: list[RecalledMemory]) -> str:
    if not shown:
        return NOTHING
    head = f"*What I remember about you and in this channel* ({len(shown)}):"
    return fit("\n".join([head, *(memory_line(m) for m in shown)]), SECTION_TEXT)
