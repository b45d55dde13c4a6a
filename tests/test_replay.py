"""Replay captured histories against today's workflow code: a non-deterministic change fails here.

The histories in ``tests/histories`` were recorded by the end-to-end, maintenance and
time-skipping tests (``LUCY_RECORD_HISTORIES=1 pytest tests/test_e2e_mention.py
tests/test_e2e_agent.py tests/test_commands_and_limits.py tests/test_maintenance.py
tests/test_workflow_timeskipping.py``). Keep the old ones when the workflow changes: they stand
for runs that are in flight during a deploy (``*_v1``: before LLM escalation, ``*_v2``: before
the agent loop; both replay through the ``workflow.patched`` branches).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from lucy.worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_workflow_type_has_a_history():
    recorded = {
        json.loads(p.read_text())["events"][0]["workflowExecutionStartedEventAttributes"]["workflowType"][
            "name"
        ]
        for p in HISTORIES
    }
    registered = {w.__temporal_workflow_definition.name for w in WORKFLOWS}  # type: ignore[attr-defined]
    assert registered <= recorded, f"no captured history for {registered - recorded}"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path):
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    result = await Replayer(workflows=list(WORKFLOWS)).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
