"""Block Kit that Lucy posts: the progress message with its Cancel button, and approvals (what
will run, in full, and who decided).

An approver must see exactly what will run. Every argument of the call is shown, each in its
own preformatted rich-text element: rich text is literal (no mrkdwn, no mentions, no links), so
nothing in an argument can ping a channel, fake a link or close a code block early. Characters
that would hide text (control characters, bidirectional overrides, zero-width and other format
characters) are shown as ``⟦U+202E⟧``. Secrets are masked (``[redacted]``) in the channel,
and Approve then sits behind the exact view (:mod:`lucy.slack.masking`). When the arguments
are too long for a message, they are attached to the thread as a file (with its SHA-256 in
the message) and the message says so; when even that is impossible, nobody is asked and the step does not run.

Everything else in these messages that came from outside Lucy (the model's reason, a tool
label) is escaped with :func:`lucy.slack_text.escape_mrkdwn`.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lucy.contracts.ids import APPROVE_ACTION_ID, CANCEL_ACTION_ID, REJECT_ACTION_ID, approval_button_value
from lucy.contracts.slack import Progress, ProgressView
from lucy.redact import redact_secrets
from lucy.slack.limits import context, section
from lucy.slack.masking import Masking, exact_view_buttons, raw_text, secrets_note
from lucy.slack.text import escape_mrkdwn, slack_date, who_may_decide, who_may_decide_own

UNMASKED = Masking(secrets=0, faithful=True)


def approval_buttons(workflow_id: str, approval_id: str) -> dict[str, Any]:
    """The Approve / Reject actions block (on the thread's message and in App Home)."""
    value = approval_button_value(workflow_id, approval_id)
    return {
        "type": "actions",
        "block_id": f"lucy_approval_{approval_id}"[:255],
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION_ID,
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": value,
            },
            {
                "type": "button",
                "action_id": REJECT_ACTION_ID,
                "text": {"type": "plain_text", "text": "Reject"},
                "style": "danger",
                "value": value,
            },
        ],
    }


def progress_text(view: ProgressView) -> str:
    """The progress message's sentence. The step's summary comes from the model's arguments:
    it is escaped; the mentions of who may decide are Lucy's own."""
    detail = escape_mrkdwn(view.detail)
    sentences = {
        Progress.RUNNING: f"Running {detail}",
        Progress.WAITING: f"Waiting for approval from {who_may_decide(view.approvers)}: {detail}",
        Progress.CONTINUING: "Still working…",
        Progress.DONE: f"Done in {view.steps} step(s).",
        Progress.UNPOSTED: "Finished, but I could not post.",
        Progress.STOPPED: "Stopped: I ran into a problem.",
        Progress.CANCELLED: f"Cancelled{f' by <@{view.by}>' if view.by else ''}.",
    }
    return sentences.get(Progress(view.kind), detail)


def progress_blocks(view: ProgressView) -> list[dict[str, Any]]:
    """The progress message: one context line, and a Cancel button while it can be cancelled."""
    blocks: list[dict[str, Any]] = [context(progress_text(view))]
    if view.cancellable:
        blocks.append(
            {
                "type": "actions",
                "block_id": "lucy_progress",
                "elements": [
                    {
                        "type": "button",
                        "action_id": CANCEL_ACTION_ID,
                        "text": {"type": "plain_text", "text": "Cancel"},
                        "value": view.workflow_id,
                        "style": "danger",
                    }
                ],
            }
        )
    return blocks


INLINE_LIMIT = 2_500  # characters of arguments shown in the message itself
INLINE_LINES = 40
SHOWABLE_LIMIT = 200_000  # beyond this, not even a file: nobody is asked
REASON_LIMIT = 1_000
RISK_ICON = {
    "low": ":large_blue_circle:",
    "medium": ":large_yellow_circle:",
    "high": ":large_orange_circle:",
    "critical": ":red_circle:",
}
_HIDING = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"})


def visible(text: str) -> str:
    """``text`` with every character that could hide or reorder text made visible."""
    out = []
    for ch in text:
        if ch in "\n\t" or unicodedata.category(ch) not in _HIDING:
            out.append(ch)
        else:
            out.append(f"⟦U+{ord(ch):04X}⟧")
    return "".join(out)


def argument_text(value: Any) -> str:
    """One argument as the channel shows it: strings as they are, anything else as JSON,
    secrets masked."""
    return visible(redact_secrets(raw_text(value)))


def exact_text(value: Any) -> str:
    """One argument exactly as it will run (hidden characters made visible, nothing masked):
    only for the people who may decide, privately."""
    return visible(raw_text(value))


def canonical_arguments(arguments: dict[str, Any]) -> str:
    """The arguments as they will run, as canonical JSON (what the digest is computed over)."""
    return json.dumps(arguments, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def arguments_digest(arguments: dict[str, Any]) -> str:
    """SHA-256 of the arguments as they will run (canonical JSON), for the record."""
    return hashlib.sha256(canonical_arguments(arguments).encode()).hexdigest()


def arguments_document(tool: str, arguments: dict[str, Any]) -> str:
    """The plain-text file attached when the arguments are too long for the message."""
    parts = [f"Lucy asks to run {tool} with these arguments, shown in full.\n"]
    for name in sorted(arguments):
        parts.append(f"===== {name} =====\n{argument_text(arguments[name])}\n")
    return "\n".join(parts)


@dataclass(frozen=True)
class ArgumentView:
    """How the arguments appear: ``inline`` in the message, or in an attached ``file``."""

    inline: bool
    size: int  # characters, as shown
    showable: bool  # False: too large even for a file


def plan_view(arguments: dict[str, Any]) -> ArgumentView:
    shown = [argument_text(v) for v in arguments.values()]
    size = sum(len(s) for s in shown) + sum(len(k) for k in arguments)
    lines = sum(s.count("\n") + 1 for s in shown)
    return ArgumentView(
        inline=size <= INLINE_LIMIT and lines <= INLINE_LINES, size=size, showable=size <= SHOWABLE_LIMIT
    )


def argument_blocks(arguments: dict[str, Any], *, exact: bool = False) -> list[dict[str, Any]]:
    """One rich-text block: each argument's name, then its value, preformatted and literal
    (``exact``: nothing masked, for a private view only)."""
    shown = exact_text if exact else argument_text
    elements: list[dict[str, Any]] = []
    for name in sorted(arguments):
        elements.append(
            {
                "type": "rich_text_section",
                "elements": [{"type": "text", "text": visible(name) or '""', "style": {"bold": True}}],
            }
        )
        value = shown(arguments[name]) or " "
        elements.append(
            {"type": "rich_text_preformatted", "border": 0, "elements": [{"type": "text", "text": value}]}
        )
    if not elements:
        elements.append(
            {"type": "rich_text_section", "elements": [{"type": "text", "text": "(no arguments)"}]}
        )
    return [{"type": "rich_text", "elements": elements}]


@dataclass(frozen=True)
class Attachment:
    """The file that holds arguments too long for the message."""

    name: str
    sha256: str
    size: int


def what_will_run(
    tool: str, arguments: dict[str, Any], attachment: Attachment | None, masked: Masking = UNMASKED
) -> list[dict[str, Any]]:
    """The "what will run" part: the arguments inline (secrets masked, and said so), a pointer
    to the attached file, or, when masking would hide more than secrets, nothing but a note."""
    heading = f"*What will run:* `{escape_mrkdwn(tool)}`"
    if masked.secrets and not masked.faithful:
        text = (
            f"{heading}. Its arguments hold secrets, and masking them would hide more than the "
            "secrets, so they are shown only privately, to the people who may decide."
        )
        return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if attachment is None:
        shown = [section(heading + ", with every argument in full:"), *argument_blocks(arguments)]
        if masked.secrets:
            shown.append(context(secrets_note(masked.secrets)))
        return shown
    text = (
        f"{heading}. Its arguments are {attachment.size:,} characters, too long to show here: they are "
        f"in full in the file *{escape_mrkdwn(attachment.name)}* attached in this thread "
        f"(SHA-256 `{attachment.sha256[:16]}…`). Read it before you decide."
    )
    return [section(text)]


def approval_message(
    *,
    workflow_id: str,
    approval_id: str,
    tool: str,
    arguments: dict[str, Any],
    attachment: Attachment | None,
    risk: str,
    because: str,
    reason: str,
    requester: str,
    approvers: list[str],
    expires_at: str,
    masked: Masking = UNMASKED,
    owner_only: bool = False,
) -> list[dict[str, Any]]:
    """The approval request: risk and why Lucy asks, what will run, the model's reason (marked
    as such), who may decide until when (``owner_only``: only the requester may approve), and
    the Approve / Reject buttons (or, when a secret is masked, *Show exactly what runs* /
    Reject: Approve is in the exact view)."""
    icon = RISK_ICON.get(risk, ":red_circle:")
    header = f"{icon} *Approval needed* ({escape_mrkdwn(risk)} risk)"
    if because:
        header += f"\nLucy asks because {escape_mrkdwn(because)}."
    why = " ".join(redact_secrets(reason).split())
    if len(why) > REASON_LIMIT:
        why = why[:REASON_LIMIT] + "…"
    blocks: list[dict[str, Any]] = [
        section(header),
        *what_will_run(tool, arguments, attachment, masked),
        context(
            "*Why, in the model's own words (not checked by Lucy):* "
            + (escape_mrkdwn(why) if why else "_(the model gave no reason)_")
        ),
        context(
            f"Requested for <@{requester}> · "
            + (
                who_may_decide_own(requester)
                if owner_only
                else f"Who may decide: {who_may_decide(approvers)}"
            )
            + f" · Expires {slack_date(datetime.fromisoformat(expires_at))}"
        ),
        (
            exact_view_buttons(workflow_id, approval_id)
            if masked.needs_exact_view
            else approval_buttons(workflow_id, approval_id)
        ),
    ]
    return blocks


DECIDED = {
    "approved": ":white_check_mark: Approved{by} at {when}",
    "rejected": ":x: Rejected{by} at {when}",
    "expired": ":hourglass: Expired: nobody decided in time, so it was not run.",
    "cancelled": ":no_entry_sign: Cancelled with the task{by}.",
}


def decided_text(decision: str, decided_by: str | None, decided_at: str) -> str:
    by = f" by <@{decided_by}>" if decided_by else ""
    template = DECIDED.get(decision)
    if template is None:
        return escape_mrkdwn(decision)
    return template.format(by=by, when=slack_date(datetime.fromisoformat(decided_at)))


def decided_message(
    *,
    tool: str,
    arguments: dict[str, Any],
    attachment: Attachment | None,
    decision: str,
    decided_by: str | None,
    decided_at: str,
    masked: Masking = UNMASKED,
) -> list[dict[str, Any]]:
    """The approval message once decided: what it was about (still in full), and the outcome
    in place of the buttons."""
    return [
        *what_will_run(tool, arguments, attachment, masked),
        context(decided_text(decision, decided_by, decided_at)),
    ]
