"""What people see of schedules: the confirmation before one exists, and the list to manage them.

Everything a person typed (the request, the "when") is escaped here; button values carry ids
and the draft, never anything Lucy would act on without checking it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from capabilities.proactive.contracts.schedules import Recurrence, ScheduleAction
from capabilities.proactive.repository.schedules import ScheduleRecord
from capabilities.proactive.views import standing
from lucy.contracts.ids import SCHEDULE_ACTION_PREFIX
from lucy.slack.limits import section
from lucy.slack.modals import modal, plain, submitted, text_input
from lucy.slack.text import escape_mrkdwn, slack_date

USAGE = (
    'To schedule a task: `/lucy schedule "<when>" <what to do>`, for example\n'
    '`/lucy schedule "every weekday at 9:00" post a summary of yesterday\'s messages in this channel`\n'
    "When: `every 30 minutes`, `every 2 hours`, `every day at 18:00`, `every weekday at 8:30`, "
    "`every monday at 10:00`, `every month on the 1st at 09:00`, or a cron expression like `0 9 * * 1-5`.\n"
    "`/lucy schedules` lists yours."
)
OUTCOME_ICON = {
    "completed": ":white_check_mark:",
    "failed": ":x:",
    "refused": ":no_entry_sign:",
    "cancelled": ":no_entry_sign:",
}


@dataclass(frozen=True)
class ScheduleLine:
    """One schedule as the list shows it."""

    schedule_id: str
    name: str
    description: str
    timezone: str
    owner_slack_id: str
    slack_channel_id: str
    active: bool
    paused_reason: str | None
    next_run_at: datetime | None
    last_outcome: str | None


def line_of(record: ScheduleRecord) -> ScheduleLine:
    return ScheduleLine(
        schedule_id=str(record.id),
        **standing.line_fields(record),
        description=record.recurrence.description,
        timezone=record.recurrence.timezone,
        active=record.is_active,
        paused_reason=record.paused_reason,
        next_run_at=record.next_run_at,
        last_outcome=record.last_outcome,
    )


VIEW = standing.StandingView("schedule", run_label="Run now", deleted_outcome="will not run again.")


def action_id(action: ScheduleAction) -> str:
    return SCHEDULE_ACTION_PREFIX + action.value


def confirmation(
    *, draft: dict[str, Any], request: str, recurrence: Recurrence, channel: str, next_runs: list[datetime]
) -> list[dict[str, Any]]:
    """The confirmation shown only to the person asking: nothing exists until they click Create."""
    runs = ", ".join(slack_date(t, style="{date_short_pretty} {time}") for t in next_runs)
    facts = [
        f"*When*\n{escape_mrkdwn(recurrence.description)}",
        f"*Time zone*\n{escape_mrkdwn(recurrence.timezone)}",
        f"*Where*\n<#{channel}>, as a new message each time",
        f"*Next runs*\n{runs}",
    ]
    return standing.confirmation_blocks(
        VIEW, draft=draft, heading="Schedule this task?", quoted=request, facts=facts
    )


def draft_value(value: str) -> dict[str, Any]:
    """The draft a schedule's Create button carried (shape-checked; the service checks the content)."""
    return standing.draft_value(value, VIEW.noun)


def schedule_list(
    lines: list[ScheduleLine], *, admin_view: bool, limit: int = standing.LIST_LIMIT
) -> list[dict[str, Any]]:
    """The caller's schedules (every schedule, for an admin), each with its buttons."""
    items = [
        [
            _line_section(line),
            standing.line_actions(VIEW, item_id=line.schedule_id, name=line.name, active=line.active),
        ]
        for line in lines
    ]
    return standing.standing_list(
        VIEW, items, admin_view=admin_view, empty="No schedules yet.\n" + USAGE, limit=limit
    )


def _line_section(line: ScheduleLine) -> dict[str, Any]:
    if line.active:
        state = f"Next run {slack_date(line.next_run_at)}" if line.next_run_at else "Next run: being set up"
    else:
        state = f":pause_button: {escape_mrkdwn(line.paused_reason or 'paused')}"
    last = (
        f"Last run {OUTCOME_ICON.get(line.last_outcome, '')} {line.last_outcome}"
        if line.last_outcome
        else "Not run yet"
    )
    text = (
        f"*{escape_mrkdwn(line.name)}*\n{escape_mrkdwn(line.description)} ({escape_mrkdwn(line.timezone)}) "
        f"in <#{line.slack_channel_id}>, by <@{line.owner_slack_id}>\n{state} · {last}"
    )
    return section(text)


def created_text(line: ScheduleLine) -> str:
    when = escape_mrkdwn(line.description)
    first = f" The first run is {slack_date(line.next_run_at)}." if line.next_run_at else ""
    name, channel = escape_mrkdwn(line.name), line.slack_channel_id
    return f":white_check_mark: Scheduled *{name}*: {when} in <#{channel}>.{first}"


MODAL_CALLBACK_ID = "lucy_schedule_modal"


def schedule_modal(channel: str) -> dict[str, Any]:
    """``/lucy schedule`` with no text: what, when, which channel (then the same confirmation)."""
    example = "post a summary of yesterday's messages"
    what = {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 1500}
    where = {
        "type": "conversations_select",
        "action_id": "value",
        "initial_conversation": channel,
        "filter": {"include": ["public", "private", "im"], "exclude_bot_users": True},
    }
    blocks = [
        text_input("what", "What should I do?", {**what, "placeholder": plain(example)}),
        text_input(
            "when",
            "When?",
            {"type": "plain_text_input", "action_id": "value", "max_length": 100},
            hint="every weekday at 9:00 · every 2 hours · every monday at 10:00 · "
            "every month on the 1st at 09:00 · 0 9 * * 1-5",
        ),
        text_input("where", "Where should I post?", where),
    ]
    return modal(
        "Schedule a task", blocks, callback_id=MODAL_CALLBACK_ID, submit="Next", metadata={"channel": channel}
    )


def modal_values(view: dict[str, Any]) -> tuple[str, str, str]:
    """(what, when, channel) from a submitted :func:`schedule_modal` (missing parts are "")."""
    return (
        submitted(view, "what").strip(),
        submitted(view, "when").strip(),
        submitted(view, "where", key="selected_conversation").strip(),
    )
