"""Recurring requests: which asks in a channel came back at a regular cadence with the same words.

Pure rules, no I/O: the ``patterns.scan`` activity reads the requests and stores what is found.
A pattern is at least :data:`MIN_OCCURRENCES` requests in one channel (a DM is its person's own)
whose normalized text is the same (lower case, Slack mentions, punctuation and numbers dropped),
made either on the same weekday, or every day, within :data:`WINDOW` of one time of day in the
requester's time zone. What is found is said in the words the schedule offer reads
(``every monday at 09:00``), so Create goes through the ordinary schedule path.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import statistics
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from capabilities.proactive.recurrence import WEEKDAYS

MIN_OCCURRENCES = 3
WINDOW = timedelta(hours=1)  # each request within this of the pattern's time of day
NOT_NOW = timedelta(days=28)  # "Not now": offered again after this, if the pattern is still there
_DRAFTS = uuid.UUID("9d0e4c52-6b7e-4f3a-8a51-2f3c1b9e7d40")  # a pattern's schedule id namespace
_MENTION = re.compile(r"<[@#!][^>]*>")
_NOT_WORDS = re.compile(r"[\W\d_]+")


@dataclass(frozen=True)
class Request:
    """One request Lucy was asked (a task's row), as the scan reads it."""

    slack_user_id: str
    slack_channel_id: str
    timezone: str
    text: str
    at: datetime  # aware


@dataclass(frozen=True)
class Found:
    """A recurring request: who to ask, where, and when it recurs."""

    signature: str  # stable per channel and text: the row's key
    slack_user_id: str  # the latest requester: the one asked
    slack_channel_id: str
    timezone: str
    request: str  # the latest request's own words
    when: str  # in the schedule grammar: "every monday at 09:00"
    description: str  # "every Monday around 9:00"
    occurrences: int
    last_seen_at: datetime


def draft_id(pattern_id: uuid.UUID) -> str:
    """The schedule a pattern's Create makes (one per pattern: a second click creates nothing)."""
    return str(uuid.uuid5(_DRAFTS, str(pattern_id)))


def normalized(text: str) -> str:
    """The words of a request that make it "the same": lower case, no mentions, punctuation or numbers."""
    return " ".join(_NOT_WORDS.sub(" ", _MENTION.sub(" ", text.lower())).split())


def signature(channel: str, text: str) -> str:
    return hashlib.sha256(f"{channel}\n{normalized(text)}".encode()).hexdigest()


def find(requests: list[Request]) -> list[Found]:
    """The recurring requests among ``requests`` (same channel, same words, regular cadence)."""
    groups: dict[tuple[str, str], list[Request]] = defaultdict(list)
    for request in requests:
        words = normalized(request.text)
        if len(words) >= 3:
            groups[(request.slack_channel_id, words)].append(request)
    found = [_recurring(sorted(group, key=lambda r: r.at)) for group in groups.values()]
    return [f for f in found if f is not None]


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _recurring(group: list[Request]) -> Found | None:
    if len(group) < MIN_OCCURRENCES:
        return None
    latest = group[-1]
    local = [r.at.astimezone(_zone(latest.timezone)) for r in group]
    if len({t.date() for t in local}) < len(local):
        return None  # twice on one day is not a cadence
    minutes = [t.hour * 60 + t.minute for t in local]
    centre = round(statistics.median(minutes) / 15) * 15 % (24 * 60)
    if any(abs(m - centre) > WINDOW.total_seconds() / 60 for m in minutes):
        return None
    hour, minute = divmod(centre, 60)
    gaps = {(b.date() - a.date()).days for a, b in itertools.pairwise(local)}
    if len({t.weekday() for t in local}) == 1:
        day = WEEKDAYS[local[0].weekday()]
        when, every = f"every {day} at {hour:02d}:{minute:02d}", f"every {day.capitalize()}"
    elif gaps == {1}:
        when, every = f"every day at {hour:02d}:{minute:02d}", "every day"
    else:
        return None
    return Found(
        signature=signature(latest.slack_channel_id, latest.text),
        slack_user_id=latest.slack_user_id,
        slack_channel_id=latest.slack_channel_id,
        timezone=latest.timezone or "UTC",
        request=latest.text,
        when=when,
        description=f"{every} around {hour}:{minute:02d}",
        occurrences=len(group),
        last_seen_at=latest.at,
    )
