"""Signed claims the ingress attaches to a click or a cancel (see :mod:`lucy.signing`).

The ingress knows who clicked because Slack told it (a signed request or the Socket Mode
WebSocket); it says so to the task, with a signature the worker checks. It asserts nothing
about what that person may do: the worker asks Slack for the role itself.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from temporalio.client import WorkflowUpdateFailedError

from capabilities.approvals.contracts import (
    ApprovalDecision,
    ApprovalDecisionKind,
    CancelRequest,
    ExactViewRequest,
    claim_terms,
)
from lucy.signing import Claim, ClaimSigner, now_iso

_Signed = TypeVar("_Signed", ApprovalDecision, CancelRequest, ExactViewRequest)


def _signed(signer: ClaimSigner, workflow_id: str, unsigned: _Signed) -> _Signed:
    """``unsigned`` with the signature of what it claims (``claim_terms``)."""
    kind, subject, verdict = claim_terms(unsigned)
    claim = Claim(
        kind,
        workflow_id,
        subject,
        verdict,
        unsigned.slack_user_id,
        unsigned.slack_team_id,
        unsigned.issued_at,
    )
    return dataclasses.replace(unsigned, signature=signer.sign(claim))


def signed_decision(
    signer: ClaimSigner,
    *,
    workflow_id: str,
    approval_id: str,
    decision: ApprovalDecisionKind,
    user: str,
    team: str,
) -> ApprovalDecision:
    unsigned = ApprovalDecision(
        approval_id=approval_id,
        decision=decision,
        slack_user_id=user,
        slack_team_id=team,
        issued_at=now_iso(),
    )
    return _signed(signer, workflow_id, unsigned)


def signed_exact_view(
    signer: ClaimSigner, *, workflow_id: str, approval_id: str, user: str, team: str
) -> ExactViewRequest:
    """A click on *Show exactly what runs*, signed like a decision (verdict ``show``)."""
    unsigned = ExactViewRequest(
        approval_id=approval_id, slack_user_id=user, slack_team_id=team, issued_at=now_iso()
    )
    return _signed(signer, workflow_id, unsigned)


def signed_cancel(signer: ClaimSigner, *, workflow_id: str, user: str, team: str) -> CancelRequest:
    unsigned = CancelRequest(slack_user_id=user, slack_team_id=team, issued_at=now_iso())
    return _signed(signer, workflow_id, unsigned)


def refusal_text(err: WorkflowUpdateFailedError) -> str:
    """The task's own sentence for a refused update (written for people), or a generic one."""
    cause: BaseException | None = err.cause
    while cause is not None:
        message = getattr(cause, "message", None)
        if message:
            return str(message)
        cause = cause.__cause__
    return "That could not be applied."
