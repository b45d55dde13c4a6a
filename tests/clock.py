"""How the suite handles time, so that no test depends on the day it runs.

* A test that needs calendar semantics (a month's rollup, a quota that rolls over, the last
  second of a month) uses a fixed instant chosen on purpose, far from today: ``FROZEN``. The
  partitions it needs are created by the test (or its rows land in the DEFAULT partition).
* A test that needs Python's clock to stand still or to jump (the ingress's idea of "this
  month", App Home) moves it with ``time_machine``: Slack's signatures are then made and
  checked with the same clock, since the fakes and the ingress share the test's process.
* A test that needs Temporal's clock to move (a worker that runs on into the next months)
  uses the time-skipping test server, never the wall clock.
* Anything else derives its dates from the clock, and allows for the month changing while it
  runs (``this_month()`` before and after).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

FROZEN = datetime(2031, 5, 14, 12, 0, tzinfo=UTC)  # mid-month, mid-day, a Wednesday


def this_month() -> date:
    """The first day of the current UTC month (of Python's clock, which tests may move)."""
    return datetime.now(UTC).date().replace(day=1)


def month_start(month: date) -> datetime:
    """Midnight UTC on the first of ``month``."""
    return datetime(month.year, month.month, 1, tzinfo=UTC)
