"""Mail from outside the workspace, shown to the people who can decide about it (issue
[trust2] item 3): under ``email-outsiders ignore`` such mail is not answered and starts nothing
by itself, but it is posted in the notification channel as quoted, untrusted content, with the
sender's address marked "not verified" and two buttons for a member (never a guest):

* **Let Lucy draft a reply** (:data:`DRAFT_ACTION`): a task run as that member; its mail back
  waits for an approval that shows the exact text (the task's email origin is not a member's).
* **Ignore sender** (:data:`IGNORE_ACTION`): later mail from that address is recorded
  ``ignored`` and not shown (``settings.email_ignored_senders``).

A button's value is the AgentMail message id; the click handler reads everything else from the
delivery row of the clicker's own workspace, never from the click.
"""

from __future__ import annotations

import re
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from capabilities.email.message import InboundEmail
from capabilities.task.views.blocks import visible
from lucy.slack.text import escape_mrkdwn

DRAFT_ACTION = "lucy_email_draft"
IGNORE_ACTION = "lucy_email_ignore_sender"
IGNORED_SENDERS_KEY = "email_ignored_senders"  # workspaces.settings: addresses, lower case
MAX_IGNORED_SENDERS = 1_000
QUOTE_LIMIT = 2_500  # characters of the quoted mail, after escaping (a section holds 3,000)
SHOWN_TEXT_LIMIT = 20_000  # characters of the mail kept for a draft (capabilities.email.message)
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,4}$")


def ignored_senders(settings: dict[str, Any]) -> list[str]:
    """The addresses a member chose to ignore (``Ignore sender``)."""
    value = settings.get(IGNORED_SENDERS_KEY)
    return [a for a in value if isinstance(a, str)] if isinstance(value, list) else []


def _quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` as a Slack quote: escaped (no mention, link or entity of the sender's), hidden
    characters shown, cut to ``limit`` characters after escaping."""
    escaped = escape_mrkdwn(visible(text.strip() or "(no text)"))
    if len(escaped) > limit:
        escaped = _PARTIAL_ENTITY.sub("", escaped[:limit]) + " […]"
    return "\n".join("> " + line for line in escaped.splitlines())


def _inline(text: str, limit: int) -> str:
    """One escaped line of at most ``limit`` characters (a header the sender wrote)."""
    line = escape_mrkdwn(visible(" ".join(text.split())))
    return _PARTIAL_ENTITY.sub("", line[:limit]) + ("…" if len(line) > limit else "")


def notice_text(email: InboundEmail) -> str:
    """The notice's fallback text (notifications, screen readers)."""
    who = _inline(email.address or email.sender or "an unknown sender", 200)
    return f"Mail from outside the workspace, from {who} (not verified): not answered."


def notice_blocks(email: InboundEmail) -> list[dict[str, Any]]:
    """The notice: who (not verified), the subject and the mail quoted, then the two buttons."""
    who = _inline(email.address or email.sender or "an unknown sender", 300)
    subject = _inline(email.subject or "(no subject)", 300)
    head = (
        f":incoming_envelope: *Mail from outside the workspace* to {_inline(email.inbox_id, 200)}\n"
        f"From: {who} _(not verified)_\nSubject: {subject}"
    )
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=head)),
        SectionBlock(text=MarkdownTextObject(text=_quote(email.text))),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text="Untrusted content from outside: Lucy has not answered and will not by itself. "
                    "A member can let Lucy draft a reply (sent only after an approval of its exact "
                    "text) or ignore this sender."
                )
            ]
        ),
        ActionsBlock(
            elements=[
                ButtonElement(text="Let Lucy draft a reply", action_id=DRAFT_ACTION, value=email.message_id),
                ButtonElement(text="Ignore sender", action_id=IGNORE_ACTION, value=email.message_id),
            ]
        ),
    ]
    return [b.to_dict() for b in blocks]


def decided_blocks(blocks: list[dict[str, Any]], said: str) -> list[dict[str, Any]]:
    """The notice after a decision: its buttons replaced by what was decided."""
    kept = [b for b in blocks if isinstance(b, dict) and b.get("type") != "actions"]
    note = ContextBlock(elements=[MarkdownTextObject(text=said)]).to_dict()
    return [*kept[:4], note]


def outside_email(payload: dict[str, Any]) -> InboundEmail:
    """The mail a notice was about, from its delivery row (kept when it was shown)."""
    text = str(payload.get("shown_text") or "")
    address = str(payload.get("from") or "")
    return InboundEmail(
        inbox_id=str(payload.get("inbox_id") or ""),
        thread_id=str(payload.get("thread_id") or ""),
        message_id=str(payload.get("message_id") or ""),
        sender=address,
        address=address,
        subject=str(payload.get("subject") or ""),
        text=text,
        size=len(text.encode()),
        attachments=0,
    )
