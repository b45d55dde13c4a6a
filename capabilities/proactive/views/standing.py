"""What people see of standing jobs (schedules and monitors), once for both kinds.

A :class:`StandingView` names what differs between the kinds (the action id prefix, the noun,
the Run now label, what Delete means); the blocks are the same: a confirmation with Create /
Cancel, a managed list of lines with Pause/Resume, Run now and Delete, and the Delete dialog.
Button values carry ids and the draft, never anything Lucy would act on without checking it again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from capabilities.proactive.contracts.schedules import StandingAction
from lucy.contracts.ids import MONITOR_ACTION_PREFIX, SCHEDULE_ACTION_PREFIX
from lucy.slack.limits import BUTTON_VALUE, CONFIRM_TEXT, EMPTY, FIELD_TEXT, section, sections
from lucy.slack.text import escape_mrkdwn, fit

BUTTON_VALUE_LIMIT = BUTTON_VALUE  # Slack's limit for a button's value
LIST_LIMIT = 15  # items shown at once (three blocks each; a message holds 50)
ACTION_PREFIXES = {"schedule": SCHEDULE_ACTION_PREFIX, "monitor": MONITOR_ACTION_PREFIX}


@dataclass(frozen=True)
class StandingView:
    """How one kind of standing job looks in Slack."""

    noun: str  # "schedule" | "monitor": block ids, action ids, the list's title and its command
    run_label: str  # "Run now" | "Check now"
    deleted_outcome: str  # the Delete dialog: "*name* <this>"

    @property
    def action_prefix(self) -> str:
        """+ StandingAction: the buttons' action ids."""
        return ACTION_PREFIXES[self.noun]


def line_fields(record: Any) -> dict[str, str]:
    """What every list line shows of a standing job's record: its name, owner and channel."""
    return {
        "name": record.name,
        "owner_slack_id": record.owner_slack_id,
        "slack_channel_id": record.slack_channel_id,
    }


def button(
    view: StandingView, text: str, action: StandingAction, value: str, *, style: str | None = None
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": view.action_prefix + action.value,
        "value": value,
    }
    if style:
        found["style"] = style
    return found


def fields(*texts: str) -> dict[str, Any]:
    """A section of mrkdwn fields (escaped ``texts``), each cut to Slack's limit."""
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": fit(t, FIELD_TEXT) or EMPTY} for t in texts],
    }


def confirmation_blocks(
    view: StandingView, *, draft: dict[str, Any], heading: str, quoted: str, facts: list[str]
) -> list[dict[str, Any]]:
    """Shown only to the person asking: ``heading``, the escaped ``quoted`` request, its ``facts``
    (escaped by the caller) and Create / Cancel. Nothing exists until they click Create."""
    value = json.dumps(draft, separators=(",", ":"))
    if len(value) > BUTTON_VALUE_LIMIT:
        raise ValueError(f"the {view.noun} draft is too long for a button")
    return [
        *sections(f"*{heading}*\n>{escape_mrkdwn(quoted)}"),
        fields(*facts),
        {
            "type": "actions",
            "elements": [
                button(view, "Create", StandingAction.CREATE, value, style="primary"),
                button(view, "Cancel", StandingAction.DISCARD, "discard"),
            ],
        },
    ]


def delete_confirm(title: str, name: str, outcome: str) -> dict[str, Any]:
    """The dialog before a Delete: ``*name* outcome`` (the escaped name cut so it fits)."""
    room = CONFIRM_TEXT - len(outcome) - 3
    return {
        "title": {"type": "plain_text", "text": title},
        "text": {"type": "mrkdwn", "text": f"*{fit(escape_mrkdwn(name), room)}* {outcome}"},
        "confirm": {"type": "plain_text", "text": "Delete"},
        "deny": {"type": "plain_text", "text": "Keep it"},
    }


def line_actions(view: StandingView, *, item_id: str, name: str, active: bool) -> dict[str, Any]:
    """One item's buttons: Pause (or Resume), Run now, and Delete behind its dialog."""
    toggle = (
        button(view, "Pause", StandingAction.PAUSE, item_id)
        if active
        else button(view, "Resume", StandingAction.RESUME, item_id, style="primary")
    )
    delete = button(view, "Delete", StandingAction.DELETE, item_id, style="danger")
    delete["confirm"] = delete_confirm(f"Delete this {view.noun}?", name, view.deleted_outcome)
    return {
        "type": "actions",
        "block_id": f"{view.noun}:{item_id}",
        "elements": [toggle, button(view, view.run_label, StandingAction.RUN_NOW, item_id), delete],
    }


def draft_value(value: str, noun: str) -> dict[str, Any]:
    """The draft a Create button carried (shape-checked; the service checks the content)."""
    draft = json.loads(value)
    if not isinstance(draft, dict) or not all(isinstance(v, str) for v in draft.values()):
        raise ValueError(f"not a {noun} draft")
    return draft


def listing(
    title: str, items: list[list[dict[str, Any]]], *, empty: str, command: str, limit: int
) -> list[dict[str, Any]]:
    """A managed list (schedules, monitors): a header, each item's blocks after a divider, and
    how many more ``command`` shows; ``empty`` when there is nothing."""
    if not items:
        return [section(empty)]
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title}}]
    for item in items[:limit]:
        blocks += [{"type": "divider"}, *item]
    if len(items) > limit:
        more = f"… and {len(items) - limit} more (`{command}`)."
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    return blocks


def standing_list(
    view: StandingView, items: list[list[dict[str, Any]]], *, admin_view: bool, empty: str, limit: int
) -> list[dict[str, Any]]:
    """The caller's items of one kind (every one in the workspace, for an admin)."""
    plural = view.noun + "s"
    return listing(
        f"{plural.capitalize()} in this workspace" if admin_view else f"Your {plural}",
        items,
        empty=empty,
        command=f"/lucy {plural}",
        limit=limit,
    )
