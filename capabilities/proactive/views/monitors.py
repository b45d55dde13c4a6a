"""What people see of monitors: the confirmation before one exists, and the list to manage them.

Everything a person typed (the condition, its URL, its question) is escaped here; button values
carry ids and the draft, which the service parses again on the click.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from capabilities.proactive.repository.monitors import MonitorRecord
from capabilities.proactive.views import standing
from lucy.slack.limits import section
from lucy.slack.text import escape_mrkdwn, slack_date

STATE_ICON = {"ok": ":large_green_circle:", "alerting": ":rotating_light:"}


@dataclass(frozen=True)
class MonitorLine:
    """One monitor as the list shows it."""

    monitor_id: str
    name: str
    every: str  # in plain words
    owner_slack_id: str
    slack_channel_id: str
    status: str  # active | paused | error
    alert_state: str
    error_reason: str | None
    last_checked_at: datetime | None
    last_evidence: str | None


def line_of(record: MonitorRecord) -> MonitorLine:
    return MonitorLine(
        monitor_id=str(record.id),
        **standing.line_fields(record),
        every=every_words(record.every_seconds),
        status=record.status,
        alert_state=record.alert_state,
        error_reason=record.error_reason,
        last_checked_at=record.last_checked_at,
        last_evidence=record.last_evidence,
    )


VIEW = standing.StandingView("monitor", run_label="Check now", deleted_outcome="will not be checked again.")


def every_words(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "every hour" if hours == 1 else f"every {hours} hours"
    minutes = max(1, seconds // 60)
    return "every minute" if minutes == 1 else f"every {minutes} minutes"


def confirmation(
    *, draft: dict[str, Any], kind: str, description: str, every_seconds: int, channel: str
) -> list[dict[str, Any]]:
    """Shown only to the person asking: nothing exists until they click Create."""
    facts = [
        f"*Checks*\n{every_words(every_seconds)}",
        f"*Kind*\n`{escape_mrkdwn(kind)}`",
        f"*Alerts in*\n<#{channel}>, then quiet for an hour",
        "*Stops*\nafter 3 failed checks in a row (you get a DM)",
    ]
    return standing.confirmation_blocks(
        VIEW, draft=draft, heading="Create this monitor?", quoted=description, facts=facts
    )


def draft_value(value: str) -> dict[str, Any]:
    """The draft a monitor's Create button carried (shape-checked; the service checks the content)."""
    draft = standing.draft_value(value, VIEW.noun)
    if "heartbeat_id" in draft:  # a button posted before monitors were renamed (migration 0016)
        draft.setdefault("monitor_id", draft.pop("heartbeat_id"))
    return draft


def monitor_list(
    lines: list[MonitorLine], *, admin_view: bool, usage: str, limit: int = standing.LIST_LIMIT
) -> list[dict[str, Any]]:
    """The caller's monitors (every monitor, for an admin), each with its buttons."""
    items = [
        [
            line_section(line),
            standing.line_actions(
                VIEW, item_id=line.monitor_id, name=line.name, active=line.status == "active"
            ),
        ]
        for line in lines
    ]
    return standing.standing_list(
        VIEW, items, admin_view=admin_view, empty="No monitors yet.\n" + usage, limit=limit
    )


def line_section(line: MonitorLine) -> dict[str, Any]:
    if line.status == "error":
        state = f":warning: stopped: {escape_mrkdwn(line.error_reason or 'probes kept failing')}"
    elif line.status == "paused":
        state = ":pause_button: paused"
    else:
        icon = STATE_ICON.get(line.alert_state, "")
        state = f"{icon} {line.alert_state}"
    checked = (
        f" · checked {slack_date(line.last_checked_at)}" if line.last_checked_at else " · not checked yet"
    )
    text = (
        f"*{escape_mrkdwn(line.name)}*\n{line.every} in <#{line.slack_channel_id}>, "
        f"by <@{line.owner_slack_id}>\n"
        f"{state}{checked}"
    )
    return section(text)
