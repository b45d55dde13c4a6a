"""Reading "when" for a schedule: every supported phrase, cron, time zones and DST, and refusals.

Pure functions with the clock as an argument: every instant here is fixed, none is today's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from capabilities.proactive.recurrence import RecurrenceError, next_runs, parse

NOW = datetime(2031, 3, 5, 7, 0, tzinfo=UTC)  # a Wednesday; fixed, so the expected runs are too
FIFTEEN = timedelta(minutes=15)


def _read(text: str, tz: str = "Europe/Paris", now: datetime = NOW):
    return parse(text, timezone=tz, min_interval=FIFTEEN, now=now)


@pytest.mark.parametrize(
    ("text", "cron", "every", "plain"),
    [
        ("every 30 minutes", "", 1800, "every 30 minutes"),
        ("Every 2 Hours", "", 7200, "every 2 hours"),
        ("every hour", "", 3600, "every hour"),
        ("every day at 09:00", "0 9 * * *", 0, "every day at 09:00"),
        ("every day at 6pm", "0 18 * * *", 0, "every day at 18:00"),
        ("every weekday at 8:30", "30 8 * * 1-5", 0, "every weekday (Monday to Friday) at 08:30"),
        ("every monday at 10:00", "0 10 * * 1", 0, "every Monday at 10:00"),
        ("every sunday at 12am", "0 0 * * 0", 0, "every Sunday at 00:00"),
        ("every month on the 1st at 09:00", "0 9 1 * *", 0, "every month on the 1st at 09:00"),
        ("every month on the 22nd at 7:05", "5 7 22 * *", 0, "every month on the 22nd at 07:05"),
        ("0 9 * * 1-5", "0 9 * * 1-5", 0, "At 09:00 on Monday through Friday"),
    ],
)
def test_each_supported_phrase(text: str, cron: str, every: int, plain: str):
    r = _read(text)
    assert (r.cron, r.every_seconds, r.description, r.timezone) == (cron, every, plain, "Europe/Paris")
    assert r.text == text


def test_runs_are_in_the_creators_time_zone():
    paris = next_runs(_read("every weekday at 9:00"), after=NOW)
    assert [t.isoformat() for t in paris] == [
        "2031-03-05T09:00:00+01:00",
        "2031-03-06T09:00:00+01:00",
        "2031-03-07T09:00:00+01:00",
    ]
    tokyo = next_runs(_read("every weekday at 9:00", tz="Asia/Tokyo"), after=NOW)
    assert tokyo[0] == datetime(2031, 3, 6, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 07:00 UTC is 16:00 there


def test_a_daily_run_keeps_its_local_time_across_dst():
    # Europe/Paris moves its clocks forward on 2031-03-30: 09:00 local stays 09:00 local.
    runs = next_runs(_read("every day at 9:00"), after=datetime(2031, 3, 29, 6, 0, tzinfo=UTC), count=2)
    assert [t.hour for t in runs] == [9, 9]
    assert runs[1].astimezone(UTC) - runs[0].astimezone(UTC) == timedelta(hours=23)


def test_intervals_fire_on_multiples_of_the_interval_like_temporal():
    runs = next_runs(_read("every 2 hours"), after=datetime(2031, 3, 5, 7, 30, tzinfo=UTC), count=3)
    assert [t.astimezone(UTC).hour for t in runs] == [8, 10, 12]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Say when"),
        ("sometimes", "can't read"),
        ("every day at 25:00", "not a time of day"),
        ("every day at 13pm", "not a time of day"),
        ("every month on the 32nd at 9:00", "no day 32"),
        ("61 * * * *", "not a valid cron expression"),
        ("0 9 1 * MON", "not both"),
        ("0 9 * * 1L", "can't read"),  # cron extensions are refused, not guessed
        ("@daily", "can't read"),
    ],
)
def test_anything_else_is_a_clear_error_with_examples(text: str, says: str):
    with pytest.raises(RecurrenceError) as refused:
        _read(text)
    assert says in str(refused.value)


@pytest.mark.parametrize("text", ["every 5 minutes", "*/5 * * * *", "0,10 9 * * *"])
def test_nothing_runs_more_often_than_the_minimum_interval(text: str):
    with pytest.raises(RecurrenceError, match="at most every 15 minute"):
        _read(text)


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(RecurrenceError, match="time zone"):
        _read("every day at 9:00", tz="Mars/Olympus")
