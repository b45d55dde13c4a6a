"""Payloads recorded before the contracts were typed decode into today's enum-typed fields.

Statuses, intents, tiers, approval decisions and claim kinds were plain strings in the
recorded histories; the default data converter must read those strings back as the StrEnums
the state and contracts now declare (equal to the old strings, so nothing else changes)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from capabilities.approvals.contracts import ActorCheck, ApprovalDecision, ApprovalDecisionKind, ClaimKind
from capabilities.task.contracts.task import TaskInput
from lucy.contracts.ids import TaskIntent, TaskStatus
from lucy.contracts.llm import ModelTier

HISTORIES = Path(__file__).parent.parent / "histories"
CONVERTER = DataConverter.default.payload_converter


def _events(name: str) -> list[dict[str, Any]]:
    return json.loads((HISTORIES / f"{name}.json").read_text())["events"]


def _payload(raw: dict[str, Any]) -> Payload:
    metadata = {k: base64.b64decode(v) for k, v in raw["metadata"].items()}
    return Payload(metadata=metadata, data=base64.b64decode(raw["data"]))


def test_a_continued_task_state_decodes_into_enums():
    (event,) = [
        e
        for e in _events("lucy_task_continued_as_new")
        if "workflowExecutionContinuedAsNewEventAttributes" in e
    ]
    raw = event["workflowExecutionContinuedAsNewEventAttributes"]["input"]["payloads"][0]
    task = CONVERTER.from_payload(_payload(raw), TaskInput)
    assert task.resume is not None
    assert type(task.resume.status) is TaskStatus and task.resume.status == "running"
    assert type(task.resume.intent) is TaskIntent and task.resume.intent == "chat"
    assert type(task.resume.tier) is ModelTier and task.resume.tier == "default"
    assert type(task.model_tier) is ModelTier


def test_an_old_pending_approval_decision_decodes_into_the_enum():
    (event,) = [
        e
        for e in _events("lucy_task_continued_as_new")
        if "workflowExecutionContinuedAsNewEventAttributes" in e
    ]
    raw = event["workflowExecutionContinuedAsNewEventAttributes"]["input"]["payloads"][0]
    old = json.loads(base64.b64decode(raw["data"]))
    for decision in ("approved", "rejected", "expired", "refused", "cancelled"):
        old["resume"]["pending"] = {
            "approval_id": "a1",
            "tool": "exec",
            "summary": "run ls",
            "risk": "high",
            "approvers": ["U1"],
            "expires_at": "2026-01-01T00:00:00+00:00",
            "decision": decision,
        }
        payload = Payload(metadata=_payload(raw).metadata, data=json.dumps(old).encode())
        pending = CONVERTER.from_payload(payload, TaskInput).resume.pending  # type: ignore[union-attr]
        assert pending is not None and type(pending.decision) is ApprovalDecisionKind
        assert pending.decision == decision


def test_recorded_clicks_and_identity_checks_decode_into_enums():
    updates = [
        e["workflowExecutionUpdateAcceptedEventAttributes"]["acceptedRequest"]["input"]
        for e in _events("lucy_task_agent_approval")
        if "workflowExecutionUpdateAcceptedEventAttributes" in e
    ]
    clicks = [CONVERTER.from_payload(_payload(u["args"]["payloads"][0]), ApprovalDecision) for u in updates]
    assert clicks and all(type(c.decision) is ApprovalDecisionKind for c in clicks)
    checks = [
        CONVERTER.from_payload(_payload(a["input"]["payloads"][0]), ActorCheck)
        for e in _events("lucy_task_cancelled_by_command") + _events("lucy_task_agent_approval")
        if (a := e.get("activityTaskScheduledEventAttributes"))
        and a["activityType"]["name"] == "identity.verify"
    ]
    assert {c.kind for c in checks} == {ClaimKind.CANCEL, ClaimKind.DECISION}
    assert all(type(c.kind) is ClaimKind for c in checks)
