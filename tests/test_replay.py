"""Replay captured histories against today's workflow code: a non-deterministic change fails here.

The histories in ``tests/histories`` are recorded by the end-to-end, maintenance and
time-skipping tests (``grep -rl record_history tests``): ``LUCY_RECORD_HISTORIES=1 python3 run.py
test tests/task tests/proactive tests/approvals tests/email tests/app``. They cover every path of every workflow type. When a change to a workflow
makes one of them fail, the change is not compatible with runs in flight: ship it as a new
Worker Deployment Version (docs/design.md "Changing a workflow"), or guard it with ``workflow.patched``,
then record the new histories and keep the old ones until no run of the old code is left.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from app.worker import WORKFLOWS, workflow_interceptors, workflow_runner

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


def recorded_workflow_id(path: Path) -> str:
    """The id the history was recorded under, where the workflow's commands depend on it (a
    delegating task's child ids are ``<its id>-sub-<step>-<n>``); else the file's name."""
    for event in json.loads(path.read_text())["events"]:
        child = event.get("startChildWorkflowExecutionInitiatedEventAttributes")
        if child and "-sub-" in child["workflowId"]:
            return str(child["workflowId"]).rsplit("-sub-", 1)[0]
    return path.stem


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path):
    history = WorkflowHistory.from_json(recorded_workflow_id(path), json.loads(path.read_text()))
    # The same workflow runner and interceptors as the worker's (no sandbox; each activity to
    # its role's queue).
    replayer = Replayer(
        workflows=list(WORKFLOWS), workflow_runner=workflow_runner(), interceptors=workflow_interceptors()
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
