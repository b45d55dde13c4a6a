"""The confirmation Lucy offers before a schedule or a monitor exists: built once, shown from
the slash command, the ``/lucy schedule`` modal and the agent's ``schedule_task`` /
``create_monitor`` tools alike. Nothing is created here: only a click on Create does that.

Draft ids are the caller's to choose: a random one for a slash command, one derived from the
task and its step for a tool call (a retried activity offers the same draft, so a second Create
click creates nothing new).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from capabilities.proactive import recurrence
from capabilities.proactive.monitors import MonitorDraft, read_draft
from capabilities.proactive.service import ScheduleDraft, draft_recurrence
from capabilities.proactive.standing import Caller, ScheduleRefused
from capabilities.proactive.views import monitors as monitor_views
from capabilities.proactive.views import schedules as schedule_views


class OfferRefused(ValueError):
    """Nothing to offer; the message says why, in words for the person (with examples)."""


@dataclass(frozen=True)
class Offer:
    text: str  # the notification text
    blocks: list[dict[str, Any]]
    description: str  # what would be created, in plain words (for the agent's tool result)


def channel_type(channel: str) -> str:
    """The type of the channel a command came from, as far as its id tells."""
    return "im" if channel.startswith("D") else "public"


def new_schedule_offer(when: str, request: str, who: Caller, channel: str, min_interval: timedelta) -> Offer:
    """The confirmation of a new schedule, from ``/lucy schedule`` or its modal (a fresh id: a
    second click on Create makes nothing)."""
    draft = ScheduleDraft(
        schedule_id=str(uuid.uuid4()),
        when=when,
        timezone=who.timezone,
        request=request,
        slack_channel_id=channel,
        channel_type=channel_type(channel),
    )
    return schedule_offer(draft, min_interval=min_interval, now=datetime.now(UTC))


def schedule_offer(draft: ScheduleDraft, *, min_interval: timedelta, now: datetime) -> Offer:
    """The confirmation of a schedule draft.

    Raises:
        OfferRefused: a "when" Lucy cannot read or too frequent, or a request too long to carry.
    """
    try:
        when = draft_recurrence(draft, min_interval=min_interval, now=now)
        blocks = schedule_views.confirmation(
            draft=dataclasses.asdict(draft),
            request=draft.request,
            recurrence=when,
            channel=draft.slack_channel_id,
            next_runs=recurrence.next_runs(when, after=now),
        )
    except recurrence.RecurrenceError as err:
        raise OfferRefused(str(err)) from None
    except ValueError:
        raise OfferRefused(
            "That request is too long to schedule; shorten it to about 1,500 characters."
        ) from None
    return Offer(f"Schedule this task? {when.description}", blocks, f"{when.description}: {draft.request}")


def monitor_offer(draft: MonitorDraft, *, min_interval: timedelta) -> Offer:
    """The confirmation of a monitor draft.

    Raises:
        OfferRefused: not an interval, too frequent, a condition Lucy cannot read, or too long.
    """
    try:
        every, spec = read_draft(draft, min_interval=min_interval)
        blocks = monitor_views.confirmation(
            draft=dataclasses.asdict(draft),
            kind=spec.kind,
            description=spec.description,
            every_seconds=every,
            channel=draft.slack_channel_id,
        )
    except ScheduleRefused as refused:
        raise OfferRefused(str(refused)) from None
    except ValueError:
        raise OfferRefused("That condition is too long; shorten it to about 1,500 characters.") from None
    words = monitor_views.every_words(every)
    return Offer(f"Create this monitor? {spec.description}", blocks, f"{words}: {spec.description}")
