"""Logs: JSON off a TTY, stdlib loggers through the same renderer, secrets redacted."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from lucy.logging import configure_logging, redact_text


def test_json_and_redaction(capsys: pytest.CaptureFixture[str]):
    configure_logging("INFO", json_output=True)
    structlog.get_logger("lucy.test").info(
        "calling slack",
        token="xoxb-123-456-abcdef",
        url="postgresql://lucy:hunter2@db/lucy",
        workspace_id="T1",
    )
    logging.getLogger("temporalio.worker").warning("header Authorization: Bearer sk-or-v1-abcdefghijkl")
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    first, second = lines[-2], lines[-1]
    assert first["event"] == "calling slack"
    assert first["token"] == "[redacted]"
    assert "hunter2" not in first["url"]
    assert first["workspace_id"] == "T1"
    assert second["logger"] == "temporalio.worker"
    assert second["level"] == "warning"
    assert "sk-or-v1-abcdefghijkl" not in second["event"]


def test_redact_text_patterns():
    assert "xoxb" not in redact_text("token xoxb-1-2-3 used")
    assert "xapp" not in redact_text("xapp-1-A0-123-abc")
    assert "sk-proj-abcdefgh123" not in redact_text("key sk-proj-abcdefgh123")
    assert redact_text("nothing secret here") == "nothing secret here"
    # Words that merely contain a prefix are not secrets.
    assert (
        redact_text("lucy-task-T1-C1-1795.1 and desk-1234567890")
        == "lucy-task-T1-C1-1795.1 and desk-1234567890"
    )


async def test_request_log_lines_carry_workspace_event_and_workflow(lucy, capsys: pytest.CaptureFixture[str]):
    from tests.conftest import mention_event, new_team

    configure_logging("INFO", json_output=True)
    team = new_team()
    event = mention_event(team=team, text="log me")
    capsys.readouterr()
    assert (await lucy.post_event(event)).status_code == 200
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    mine = [x for x in lines if x.get("event") in ("task started", "slack request handled")]
    assert {x["event"] for x in mine} == {"task started", "slack request handled"}
    for line in mine:
        assert line["slack_team_id"] == team
        assert line["slack_event_id"] == event["event_id"]
        assert line["workflow_id"].startswith(f"lucy-task-{team}-")
        assert len(line["workspace_id"]) == 36  # Lucy's workspace UUID


def test_log_lines_are_redacted_with_the_full_rule_set(capsys: pytest.CaptureFixture[str]):
    configure_logging("INFO", json_output=True)
    github = "ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5"
    aws_id = "AKIA" + "IOSFODNN7EXAMPLE"
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    structlog.get_logger("lucy.test").info(
        "tool ran", command=f"git push https://{github}@github.com/o/r.git", output=[aws_id, pem]
    )
    logging.getLogger("httpx").warning("authorization: bearer abc123def456 rejected")
    text = capsys.readouterr().err
    for secret in (github, aws_id, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "abc123def456"):
        assert secret not in text
    assert "https://[redacted]@github.com/o/r.git" in text
