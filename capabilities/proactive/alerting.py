"""When a monitor speaks: the alert, the cooldown, the recovery, and the error state. Pure.

* A broken condition alerts once, then stays quiet for ``cooldown``; still broken after that,
  it reminds (and cools down again).
* When it clears after an alert: one recovery message.
* ``errors_to_stop`` probe failures in a row (the gateway, CamoFox or the model unreachable, no
  number where one was expected) put the monitor in ``error``: one message to its owner, and no
  more probes until someone resumes it. A probe that works resets the count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from capabilities.proactive.contracts.monitors import AlertState, ProbeOutcome

ERRORS_TO_STOP = 3


@dataclass(frozen=True)
class MonitorState:
    alert_state: str  # AlertState
    consecutive_failures: int
    last_alerted_at: datetime | None


@dataclass(frozen=True)
class Decision:
    state: MonitorState
    say: str  # quiet | alert | reminder | recovered | error
    stop: bool = False  # the monitor goes to ``error``


def decide(
    state: MonitorState,
    outcome: str,
    *,
    now: datetime,
    cooldown: timedelta,
    errors_to_stop: int = ERRORS_TO_STOP,
) -> Decision:
    """What one probe's outcome does to the monitor, and what (if anything) to post."""
    if outcome == ProbeOutcome.FAILED.value:
        failures = state.consecutive_failures + 1
        next_state = MonitorState(state.alert_state, failures, state.last_alerted_at)
        if failures >= errors_to_stop:
            return Decision(next_state, "error", stop=True)
        return Decision(next_state, "quiet")
    if outcome == ProbeOutcome.OK.value:
        cleared = MonitorState(AlertState.OK.value, 0, state.last_alerted_at)
        recovered = state.alert_state == AlertState.ALERTING.value
        return Decision(cleared, "recovered" if recovered else "quiet")
    alerting = state.alert_state == AlertState.ALERTING.value
    cooling = state.last_alerted_at is not None and now - state.last_alerted_at < cooldown
    if alerting and cooling:
        return Decision(MonitorState(AlertState.ALERTING.value, 0, state.last_alerted_at), "quiet")
    return Decision(MonitorState(AlertState.ALERTING.value, 0, now), "reminder" if alerting else "alert")
