"""The tool catalog the workflow reads: argument validation and summaries (policy: test_policy)."""

from __future__ import annotations

import pytest

from capabilities.tools.activities.registry import TOOLS
from capabilities.tools.workflow import validate_arguments


@pytest.mark.parametrize(
    ("tool", "raw", "problem"),
    [
        ("exec", '{"command": "ls"', "not valid JSON"),
        ("exec", "[1, 2]", "must be a JSON object"),
        ("exec", "{}", "missing required argument(s): command"),
        ("exec", '{"command": 42}', "'command' must be a string"),
        ("exec", '{"command": "ls", "timeout": "soon"}', "'timeout' must be an integer"),
        ("browser", '{"action": "hover"}', "'action' must be one of"),
        ("create_file", '{"format": "docx", "filename": "a"}', "'format' must be one of"),
    ],
)
def test_bad_arguments_are_explained(tool: str, raw: str, problem: str):
    args, explanation = validate_arguments(TOOLS[tool], raw)
    assert args is None and explanation is not None and problem in explanation


def test_good_arguments_pass_and_empty_means_no_arguments():
    assert validate_arguments(TOOLS["exec"], '{"command": "ls", "timeout": 5}') == (
        {"command": "ls", "timeout": 5},
        None,
    )
    assert validate_arguments(TOOLS["slack_history"], "") == ({}, None)


def test_summaries_are_short_and_hold_no_secrets():
    summary = TOOLS["exec"].summary(
        {"command": 'curl -H "Authorization: Bearer abcdefghijk123" https://bob:hunter2@example.com/x'}
    )
    assert "abcdefghijk123" not in summary and "hunter2" not in summary
    assert summary.startswith("gateway exec: curl")
    assert len(TOOLS["exec"].summary({"command": "x" * 500})) <= len("gateway exec: ") + 80


def test_the_model_cannot_pick_a_composio_connected_account():
    assert "connected_account_id" not in TOOLS["composio_execute"].parameters["properties"]
