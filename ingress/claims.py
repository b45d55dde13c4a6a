"""Signed claims the ingress attaches to a click or a cancel (see :mod:`lucy.signing`).

The ingress knows who clicked because Slack told it (a signed request or the Socket Mode
WebSocket); it says so to the task, with a signature the worker checks. It asserts nothing
about what that person may do: the worker asks Slack for the role itself.
"""

from __future__ import annotations

from temporalio.client import WorkflowUpdateFailedError

from lucy.contracts import ApprovalDecision, CancelRequest, ExactViewRequest
from lucy.signing import Claim, ClaimSigner, now_iso


def signed_decision(
    signer: ClaimSigner, *, workflow_id: str, approval_id: str, decision: str, user: str, team: str
) -> ApprovalDecision:
    issued_at = now_iso()
    claim = Claim("decision", workflow_id, approval_id, decision, user, team, issued_at)
    return ApprovalDecision(
        approval_id=approval_id,
        decision=decision,
        slack_user_id=user,
        slack_team_id=team,
        issued_at=issued_at,
        signature=signer.sign(claim),
    )


def signed_exact_view(
    signer: ClaimSigner, *, workflow_id: str, approval_id: str, user: str, team: str
) -> ExactViewRequest:
    """A click on *Show exactly what runs*, signed like a decision (verdict ``show``)."""
    issued_at = now_iso()
    claim = Claim("exact_view", workflow_id, approval_id, "show", user, team, issued_at)
    return ExactViewRequest(
        approval_id=approval_id,
        slack_user_id=user,
        slack_team_id=team,
        issued_at=issued_at,
        signature=signer.sign(claim),
    )


def signed_cancel(signer: ClaimSigner, *, workflow_id: str, user: str, team: str) -> CancelRequest:
    issued_at = now_iso()
    claim = Claim("cancel", workflow_id, "", "cancel", user, team, issued_at)
    return CancelRequest(
        slack_user_id=user, slack_team_id=team, issued_at=issued_at, signature=signer.sign(claim)
    )


def refusal_text(err: WorkflowUpdateFailedError) -> str:
    """The task's own sentence for a refused update (written for people), or a generic one."""
    cause: BaseException | None = err.cause
    while cause is not None:
        message = getattr(cause, "message", None)
        if message:
            return str(message)
        cause = cause.__cause__
    return "That could not be applied."
