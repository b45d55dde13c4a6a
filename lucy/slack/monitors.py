"""What people see of monitors: the confirmation before one exists, and the list to manage them.

Everything a person typed (the condition, its URL, its question) is escaped here; button values
carry ids and the draft, which the service parses again on the click.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lucy.contracts import MONITOR_ACTION_PREFIX, MonitorAction
from lucy.db.repositories.monitors import MonitorRecord
from lucy.slack.limits import section, sections
from lucy.slack.schedules import BUTTON_VALUE_LIMIT, LIST_LIMIT, delete_confirm, fields, listing
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
        name=record.name,
        every=every_words(record.every_seconds),
        owner_slack_id=record.owner_slack_id,
        slack_channel_id=record.slack_channel_id,
        status=record.status,
        alert_state=record.alert_state,
        error_reason=record.error_reason,
        last_checked_at=record.last_checked_at,
        last_evidence=record.last_evidence,
    )


def _button(text: str, action: MonitorAction, value: str, *, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": MONITOR_ACTION_PREFIX + action.value,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


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
    value = json.dumps(draft, separators=(",", ":"))
    if len(value) > BUTTON_VALUE_LIMIT:
        raise ValueError("the condition is too long")
    return [
        *sections(f"*Create this monitor?*\n>{escape_mrkdwn(description)}"),
        fields(
            f"*Checks*\n{every_words(every_seconds)}",
            f"*Kind*\n`{escape_mrkdwn(kind)}`",
            f"*Alerts in*\n<#{channel}>, then quiet for an hour",
            "*Stops*\nafter 3 failed checks in a row (you get a DM)",
        ),
        {
            "type": "actions",
            "elements": [
                _button("Create", MonitorAction.CREATE, value, style="primary"),
                _button("Cancel", MonitorAction.DISCARD, "discard"),
            ],
        },
    ]


def draft_value(value: str) -> dict[str, Any]:
    """The draft a Create button carried (shape-checked; the service checks the content)."""
    draft = json.loads(value)
    if not isinstance(draft, dict) or not all(isinstance(v, str) for v in draft.values()):
        raise ValueError("not a monitor draft")
    if "heartbeat_id" in draft:  # a button posted before monitors were renamed (migration 0016)
        draft.setdefault("monitor_id", draft.pop("heartbeat_id"))
    return draft


def monitor_list(
    lines: list[MonitorLine], *, admin_view: bool, usage: str, limit: int = LIST_LIMIT
) -> list[dict[str, Any]]:
    """The caller's monitors (every monitor, for an admin), each with its buttons."""
    return listing(
        "Monitors in this workspace" if admin_view else "Your monitors",
        [[line_section(line), _line_actions(line)] for line in lines],
        empty="No monitors yet.\n" + usage,
        command="/lucy monitors",
        limit=limit,
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


def _line_actions(line: MonitorLine) -> dict[str, Any]:
    toggle = (
        _button("Pause", MonitorAction.PAUSE, line.monitor_id)
        if line.status == "active"
        else _button("Resume", MonitorAction.RESUME, line.monitor_id, style="primary")
    )
    delete = _button("Delete", MonitorAction.DELETE, line.monitor_id, style="danger")
    delete["confirm"] = delete_confirm("Delete this monitor?", line.name, "will not be checked again.")
    return {
        "type": "actions",
        "block_id": f"monitor:{line.monitor_id}",
        "elements": [toggle, _button("Check now", MonitorAction.RUN_NOW, line.monitor_id), delete],
    }
