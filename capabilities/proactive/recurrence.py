"""Reading "when" for a schedule: the phrases people type, or a 5-field cron expression.

Pure and deterministic (the clock is an argument). Every accepted phrase becomes either a cron
expression or a fixed interval, interpreted in the creator's time zone: Temporal's calendar
specs then handle DST when it runs the schedule, and :func:`next_runs` previews the same times
for the confirmation (with ``cronsim``, which follows Debian cron at DST edges). Anything else is
a :class:`RecurrenceError` with examples, never a guess.
"""

from __future__ import annotations

import itertools
import math
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from capabilities.proactive.contracts.schedules import Recurrence

EXAMPLES = (
    '"every 30 minutes", "every 2 hours", "every day at 09:00", "every weekday at 8:30", '
    '"every monday at 10:00", "every month on the 1st at 09:00", or a cron expression like '
    '"0 9 * * 1-5"'
)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CRON_DOW = {name: str((i + 1) % 7) for i, name in enumerate(WEEKDAYS)}  # cron: 0 = Sunday
_TIME = r"(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ampm>am|pm)?"
_PHRASES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        ("interval", r"every\s+(?:(?P<n>\d{1,5})\s+)?(?P<unit>minute|minutes|min|mins|hour|hours)"),
        ("daily", rf"every\s+day\s+at\s+{_TIME}"),
        ("weekdays", rf"every\s+weekday\s+at\s+{_TIME}"),
        ("weekly", rf"every\s+(?P<dow>{'|'.join(WEEKDAYS)})s?\s+at\s+{_TIME}"),
        ("monthly", rf"every\s+month\s+on\s+the\s+(?P<dom>\d{{1,2}})(?:st|nd|rd|th)?\s+at\s+{_TIME}"),
    )
)
# Plain 5-field cron: numbers, names, ranges, lists, steps. No extensions (L, W, #, ?, @macros),
# which Temporal and the preview could read differently.
_CRON_VALUE = r"(?:\d{1,2}|[A-Za-z]{3})"  # a number, or a month or weekday name (JAN, MON)
_CRON_FIELD = rf"(?:\*|{_CRON_VALUE}(?:-{_CRON_VALUE})?)(?:/\d{{1,2}})?"
_CRON = re.compile(rf"{_CRON_FIELD}(?:,{_CRON_FIELD})*(?:\s+{_CRON_FIELD}(?:,{_CRON_FIELD})*){{4}}")
_GAP_SAMPLES = 500  # fires looked at for a cron's shortest gap


class RecurrenceError(ValueError):
    """The text is not a recurrence Lucy reads, or is more frequent than allowed; the message
    says why, with examples, and can be shown to the user as is."""


def parse(text: str, *, timezone: str, min_interval: timedelta, now: datetime) -> Recurrence:
    """Read ``text`` as a recurrence in ``timezone`` (IANA name).

    Raises:
        RecurrenceError: not a supported phrase or cron expression, an unknown time zone, or
            runs closer together than ``min_interval``.
    """
    zone = _zone(timezone)
    said = " ".join(text.strip().lower().split())
    if not said:
        raise RecurrenceError(f"Say when it should run, for example {EXAMPLES}.")
    for kind, pattern in _PHRASES:
        if match := pattern.fullmatch(said):
            recurrence = _from_phrase(kind, match, text=text.strip(), timezone=timezone)
            break
    else:
        if not _CRON.fullmatch(said):
            raise RecurrenceError(f"I can't read {text.strip()!r} as a schedule. Try {EXAMPLES}.")
        cron = said.upper()
        fields = cron.split()
        if fields[2] != "*" and fields[4] != "*":
            # Cron ORs the two day fields, Temporal's calendars AND them: refuse the ambiguity.
            raise RecurrenceError("Give a day of the month or a day of the week, not both.")
        try:
            plain = CronSim(cron, now.astimezone(zone)).explain()
        except (CronSimError, StopIteration, ValueError) as exc:
            raise RecurrenceError(
                f"{text.strip()!r} is not a valid cron expression ({exc}). Try {EXAMPLES}."
            ) from None
        recurrence = Recurrence(
            text=text.strip(), cron=cron, every_seconds=0, timezone=timezone, description=plain
        )
    gap = shortest_gap(recurrence, now=now)
    if gap < min_interval:
        raise RecurrenceError(
            f"That would run every {_duration(gap)}; schedules run at most every {_duration(min_interval)}."
        )
    return recurrence


def next_runs(recurrence: Recurrence, *, after: datetime, count: int = 3) -> list[datetime]:
    """The next ``count`` run times after ``after``, in the recurrence's time zone."""
    zone = _zone(recurrence.timezone)
    if recurrence.every_seconds:
        # Temporal's interval specs fire on multiples of the interval since the Unix epoch.
        every = recurrence.every_seconds
        first = math.floor(after.timestamp() / every + 1) * every
        return [datetime.fromtimestamp(first + i * every, tz=zone) for i in range(count)]
    runs = CronSim(recurrence.cron, after.astimezone(zone))
    return [next(runs) for _ in range(count)]


def runs_between(recurrence: Recurrence, start: datetime, end: datetime, *, limit: int) -> list[datetime]:
    """The run times in ``[start, end]`` (at most ``limit`` of them), as a backfill would see them."""
    runs: list[datetime] = []
    after = start - timedelta(seconds=1)
    while len(runs) < limit:
        (at,) = next_runs(recurrence, after=after, count=1)
        if at > end:
            break
        runs.append(at)
        after = at
    return runs


def shortest_gap(recurrence: Recurrence, *, now: datetime) -> timedelta:
    """The shortest time between two runs (over the next few hundred, for a cron expression)."""
    if recurrence.every_seconds:
        return timedelta(seconds=recurrence.every_seconds)
    times = next_runs(recurrence, after=now, count=_GAP_SAMPLES)
    return min((b - a for a, b in itertools.pairwise(times)), default=timedelta(days=366))


def _from_phrase(kind: str, match: re.Match[str], *, text: str, timezone: str) -> Recurrence:
    if kind == "interval":
        n = int(match["n"] or 1)
        minutes = n * (60 if match["unit"].startswith("hour") else 1)
        if minutes < 1:
            raise RecurrenceError(f"The interval must be at least one minute. Try {EXAMPLES}.")
        unit = "hour" if match["unit"].startswith("hour") else "minute"
        plain = f"every {unit}" if n == 1 else f"every {n} {unit}s"
        return Recurrence(
            text=text, cron="", every_seconds=minutes * 60, timezone=timezone, description=plain
        )
    hour, minute = _clock(match)
    at = f"{hour:02d}:{minute:02d}"
    if kind == "daily":
        cron, plain = f"{minute} {hour} * * *", f"every day at {at}"
    elif kind == "weekdays":
        cron, plain = f"{minute} {hour} * * 1-5", f"every weekday (Monday to Friday) at {at}"
    elif kind == "weekly":
        day = match["dow"]
        cron, plain = f"{minute} {hour} * * {_CRON_DOW[day]}", f"every {day.capitalize()} at {at}"
    else:
        dom = int(match["dom"])
        if not 1 <= dom <= 31:
            raise RecurrenceError(f"A month has no day {dom}. Try {EXAMPLES}.")
        note = " (months without that day are skipped)" if dom > 28 else ""
        cron, plain = f"{minute} {hour} {dom} * *", f"every month on the {_ordinal(dom)} at {at}{note}"
    return Recurrence(text=text, cron=cron, every_seconds=0, timezone=timezone, description=plain)


def _clock(match: re.Match[str]) -> tuple[int, int]:
    hour, minute, ampm = int(match["h"]), int(match["m"] or 0), match["ampm"]
    if ampm:
        if not 1 <= hour <= 12:
            raise RecurrenceError(f"{hour}{ampm} is not a time of day. Try {EXAMPLES}.")
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    if hour > 23 or minute > 59:
        raise RecurrenceError(f"{match['h']}:{match['m'] or '00'} is not a time of day. Try {EXAMPLES}.")
    return hour, minute


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RecurrenceError(f"{name!r} is not a time zone I know.") from None


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _duration(gap: timedelta) -> str:
    seconds = int(gap.total_seconds())
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600} hour(s)"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60} minute(s)"
    return f"{seconds} second(s)"
