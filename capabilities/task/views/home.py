"""What one person sees of their tasks: the App Home view and the answers to ``/lucy tasks``,
``/lucy approvals`` and ``/lucy status``.

The ingress reads the rows and hands them over as the small views below; everything that came
from people or models (a request's text, a step, a summary) is escaped here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from capabilities.email.repository import IgnoredMail
from capabilities.task.contracts.task import TaskView
from capabilities.task.views.blocks import Attachment, approval_buttons, what_will_run
from lucy.slack.limits import context, section
from lucy.slack.masking import exact_view_buttons, recorded_masking
from lucy.slack.text import escape_mrkdwn, slack_date, who_may_decide

# Approvals listed in Home (up to four blocks each, and a view holds 100); the rest are counted.
HOME_APPROVALS = 5
IGNORED_MAIL_DAYS = 7  # Home counts the mail Lucy ignored over this many days

STATUS_ICON = {
    "created": ":hourglass:",
    "running": ":gear:",
    "pending_approval": ":raised_hand:",
    "completed": ":white_check_mark:",
    "failed": ":x:",
    "cancelled": ":no_entry_sign:",
    "timeout": ":alarm_clock:",
}


@dataclass(frozen=True)
class TaskLine:
    workflow_id: str
    status: str
    request: str


@dataclass(frozen=True)
class PendingLine:
    workflow_id: str
    approval_id: str
    risk: str
    summary: str
    expires_at: datetime
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    tasks_used: int
    tasks_limit: int
    model_calls: int
    cost_usd: Decimal
    good_answers: int = 0  # feedback this month: thumbs up
    bad_answers: int = 0  # and down


def _section(text: str) -> dict[str, Any]:
    return section(text)


def _short(text: str, limit: int) -> str:
    flat = " ".join((text or "").split())
    return flat[:limit] + ("…" if len(flat) > limit else "")


def _icon(status: str) -> str:
    return STATUS_ICON.get(status, "")


def pending_blocks(a: PendingLine) -> list[dict[str, Any]]:
    """One approval waiting for the viewer: what will run, in full, as in its thread, and the
    buttons. An approval recorded without its arguments gets no buttons here: it is decided in
    its thread, where they are shown."""
    head = _section(
        f":raised_hand: *{escape_mrkdwn(a.risk)} risk* · expires "
        f"{slack_date(a.expires_at, style='{date_short_pretty} {time}')}"
    )
    arguments = a.details.get("arguments")
    if not isinstance(arguments, dict):
        return [head, _section(f"{escape_mrkdwn(a.summary)} (decide in its thread)")]
    raw = a.details.get("attachment")
    attachment = (
        Attachment(name=str(raw.get("name")), sha256=str(raw.get("sha256")), size=int(raw.get("size") or 0))
        if isinstance(raw, dict)
        else None
    )
    masked = recorded_masking(a.details)
    buttons = exact_view_buttons if masked.needs_exact_view else approval_buttons
    return [
        head,
        *what_will_run(str(a.details.get("tool") or "tool"), arguments, attachment, masked),
        buttons(a.workflow_id, a.approval_id),
    ]


def pending_section(pending: list[PendingLine], limit: int = HOME_APPROVALS) -> list[dict[str, Any]]:
    """Home's "Waiting for your approval": the first ``limit`` approvals in full, then how many
    more wait (so Home stays within a view's 100 blocks however many there are)."""
    blocks = [_section("*Waiting for your approval*")]
    if not pending:
        return [*blocks, _section("Nothing is waiting for you.")]
    for a in pending[:limit]:
        blocks.extend(pending_blocks(a))
    if len(pending) > limit:
        more = len(pending) - limit
        blocks.append(context(f"… and {more} more waiting for you (`/lucy approvals` lists them all)."))
    return blocks


def ignored_mail_blocks(ignored: IgnoredMail | None) -> list[dict[str, Any]]:
    """Home's count of the mail Lucy ignored by itself lately (none when it is zero):
    nothing from outside vanishes without a trace."""
    if ignored is None or ignored.total == 0:
        return []
    return [
        {"type": "divider"},
        section(
            f"*Mail Lucy ignored in the last {IGNORED_MAIL_DAYS} days:* {ignored.automatic} automatic · "
            f"{ignored.forged} forged · {ignored.outside} from outside"
        ),
        context(
            "Automatic mail (auto-replies, lists) and mail whose sender could not be authenticated "
            "are never answered; mail from outside is shown in the notification channel, not answered."
        ),
    ]


def home_view(
    pending: list[PendingLine],
    tasks: list[TaskLine],
    usage: Usage | None,
    proactive: list[dict[str, Any]] | None = None,
    ignored: IgnoredMail | None = None,
) -> dict[str, Any]:
    """The Home tab (a ``views.publish`` view): what waits for me, my recent tasks, my schedules
    and monitors (``proactive``: their blocks, with buttons), the mail Lucy ignored (``ignored``)
    and the workspace's usage this month."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Lucy"}},
        *pending_section(pending),
        {"type": "divider"},
        _section("*Your recent tasks*"),
    ]
    if tasks:
        for t in tasks:
            blocks.append(
                _section(
                    f"{_icon(t.status)} {t.status} — {escape_mrkdwn(_short(t.request, 80))}"
                    f"\n`{t.workflow_id}`"
                )
            )
    else:
        blocks.append(_section("No tasks yet. Mention @Lucy, DM me, or type `/lucy <request>`."))
    if proactive:
        blocks += [{"type": "divider"}, *proactive]
    blocks += ignored_mail_blocks(ignored)
    if usage is not None:
        text = (
            f"This month: {usage.tasks_used} of {usage.tasks_limit} tasks · "
            f"{usage.model_calls} model calls · ${usage.cost_usd:.2f} · "
            f"feedback: {usage.good_answers} :thumbsup: {usage.bad_answers} :thumbsdown:"
        )
        blocks += [{"type": "divider"}, {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}]
    return {"type": "home", "blocks": blocks}


def tasks_text(tasks: list[TaskLine]) -> str:
    """``/lucy tasks``."""
    if not tasks:
        return "You have no tasks yet. Try `/lucy <request>`."
    lines = ["*Your recent tasks*"]
    for t in tasks:
        lines.append(
            f"{_icon(t.status)} `{t.workflow_id}` {t.status} — {escape_mrkdwn(_short(t.request, 60))}"
        )
    return "\n".join(lines)


def approvals_text(pending: list[PendingLine]) -> str:
    """``/lucy approvals``."""
    if not pending:
        return "Nothing is waiting for your approval."
    lines = ["*Waiting for your approval*"]
    for a in pending:
        expires = slack_date(a.expires_at, style="{date_short_pretty} {time}")
        lines.append(
            f"• {escape_mrkdwn(a.risk)} — {escape_mrkdwn(a.summary)} "
            f"(expires {expires}; decide in its thread or in my Home tab)"
        )
    return "\n".join(lines)


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def status_text(workflow_id: str, view: TaskView | None, *, final_status: str | None = None) -> str:
    """``/lucy status``: a running task's ``status`` query, or a finished task's final status."""
    if view is None:
        status = final_status or "unknown"
        return f"{_icon(status)} `{workflow_id}` is {status}."
    line = f"{_icon(view.status)} `{workflow_id}` is {view.status}: {escape_mrkdwn(view.step)}"
    line += f" ({duration(view.elapsed_seconds)} so far, {view.steps} step(s))"
    pending = view.pending_approval
    if pending:
        expires = slack_date(datetime.fromisoformat(pending.expires_at), style="{date_short_pretty} {time}")
        who, what, risk = (
            who_may_decide(pending.approvers),
            escape_mrkdwn(pending.summary),
            escape_mrkdwn(pending.risk),
        )
        line += f"\nWaiting for {who} to approve `{what}` ({risk} risk), until {expires}"
    return line + "."
