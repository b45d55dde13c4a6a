"""The rules of recurring requests (:mod:`capabilities.proactive.patterns`), on a fixed instant."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from capabilities.proactive.patterns import Request, find, normalized

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2031, 3, 3, 9, 0, tzinfo=PARIS)  # a Monday, far from today


def _asks(times: list[datetime], text: str = "Standup notes for <@U1>, please!", zone: str = "Europe/Paris"):
    return [Request("U1", "D1", zone, text, t) for t in times]


def test_the_same_words_are_the_same_request():
    assert normalized("Post the 3 sales <@U123> numbers!!") == normalized("post the sales numbers")


def test_every_day_around_the_same_time_is_a_daily_pattern():
    times = [START + timedelta(days=i, minutes=m) for i, m in enumerate((-20, 10, 40, 0))]
    [found] = find(_asks(times))
    assert (found.when, found.description, found.occurrences) == (
        "every day at 09:00",
        "every day around 9:00",
        4,
    )


def test_weekly_is_read_in_the_requesters_zone():
    utc = [(START + timedelta(weeks=i)).astimezone(ZoneInfo("UTC")) for i in range(3)]
    [found] = find(_asks(utc))
    assert found.when == "every monday at 09:00"


def test_out_of_the_window_twice_a_day_or_too_few_is_no_pattern():
    assert find(_asks([START + timedelta(weeks=i, hours=2 * i) for i in range(3)])) == []
    assert find(_asks([START, START + timedelta(hours=1), START + timedelta(weeks=1)])) == []
    assert find(_asks([START, START + timedelta(weeks=1)])) == []
    assert find(_asks([START + timedelta(days=2 * i) for i in range(3)])) == []  # every 2 days: not read
