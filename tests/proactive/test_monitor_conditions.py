"""The monitor's pure parts: reading ``/lucy monitor`` conditions, judging probes, and the alert
rules (cooldown, recovery, error state) with a clock passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from capabilities.proactive import conditions
from capabilities.proactive.alerting import MonitorState, decide
from capabilities.proactive.conditions import MonitorSpecError, ProbeFailed

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)  # a fixed instant: nothing here reads the clock
HOUR = timedelta(hours=1)


def test_each_condition_kind_is_read_with_its_arguments():
    health = conditions.parse("health https://api.example.com/h within 1.5s")
    assert (health.kind, health.config) == (
        "api_health",
        {"url": "https://api.example.com/h", "max_latency_ms": 1500},
    )
    metric = conditions.parse("metric https://x.example.com/m.json $.items[1].n <= -2.5")
    assert metric.config == {
        "url": "https://x.example.com/m.json",
        "path": "$.items[1].n",
        "op": "<=",
        "threshold": -2.5,
    }
    sid = "0b3c6a0e-8d7e-4a53-9a51-3f1f1f1f1f1f"
    assert conditions.parse(f"schedule {sid}").config == {"schedule_id": sid}
    ask = conditions.parse("ask https://s.example.com is anything down?")
    assert ask.config == {"url": "https://s.example.com", "question": "is anything down?"}
    assert conditions.parse("ask is it friday?").config == {"url": "", "question": "is it friday?"}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "health",
        "health file:///etc/passwd",
        "health https://a.example.com within soon",
        "metric https://a.example.com $.a > nan",
        "metric https://a.example.com $..a > 1",
        "metric https://a.example.com a[x] > 1",
        "schedule not-a-uuid",
        "exec uptime",
        "ask " + "x" * 600,
    ],
)
def test_anything_else_is_an_error_never_a_guess(text: str):
    with pytest.raises(MonitorSpecError):
        conditions.parse(text)


def test_health_judges_status_and_latency():
    config = {"url": "https://a.example.com", "max_latency_ms": 100}
    assert conditions.judge_health(config, status=200, took_ms=50).outcome == "ok"
    assert conditions.judge_health(config, status=200, took_ms=150).outcome == "alert"
    assert conditions.judge_health(config, status=503, took_ms=5).outcome == "alert"


def test_metric_takes_the_number_at_the_path_and_fails_without_one():
    config = {"url": "u", "path": "$.a.b[1]", "op": ">", "threshold": 10}
    assert conditions.judge_metric(config, '{"a": {"b": [0, 11]}}').outcome == "alert"
    assert conditions.judge_metric(config, '{"a": {"b": [0, "9.5"]}}').outcome == "ok"
    for body in ("<html>", '{"a": {}}', '{"a": {"b": [0, true]}}', '{"a": {"b": [0, "many"]}}'):
        with pytest.raises(ProbeFailed):
            conditions.judge_metric(config, body)


def test_the_models_answer_must_be_yes_or_no():
    assert conditions.judge_answer('```json\n{"answer": "YES", "reason": "down"}\n```').outcome == "alert"
    assert conditions.judge_answer('{"answer": "no"}').evidence == "The model says: (no reason given)"
    for bad in ("yes", '{"answer": "maybe"}', "[]"):
        with pytest.raises(ProbeFailed):
            conditions.judge_answer(bad)


def test_an_alert_cools_down_then_reminds_and_a_recovery_is_said_once():
    ok = MonitorState("ok", 0, None)
    first = decide(ok, "alert", now=T0, cooldown=HOUR)
    assert (first.say, first.state.last_alerted_at) == ("alert", T0)
    assert decide(first.state, "alert", now=T0 + HOUR / 2, cooldown=HOUR).say == "quiet"
    later = decide(first.state, "alert", now=T0 + HOUR, cooldown=HOUR)
    assert (later.say, later.state.last_alerted_at) == ("reminder", T0 + HOUR)
    recovered = decide(later.state, "ok", now=T0 + 2 * HOUR, cooldown=HOUR)
    assert (
        recovered.say == "recovered" and decide(recovered.state, "ok", now=T0, cooldown=HOUR).say == "quiet"
    )


def test_three_failed_probes_in_a_row_stop_the_monitor_and_a_working_one_resets_the_count():
    state = MonitorState("alerting", 0, T0)
    for expected in ("quiet", "quiet"):
        decision = decide(state, "failed", now=T0, cooldown=HOUR)
        assert decision.say == expected and not decision.stop
        state = decision.state
    assert (
        decide(
            decide(state, "ok", now=T0, cooldown=HOUR).state, "failed", now=T0, cooldown=HOUR
        ).state.consecutive_failures
        == 1
    )
    stopped = decide(state, "failed", now=T0, cooldown=HOUR)
    assert stopped.say == "error" and stopped.stop and stopped.state.alert_state == "alerting"
