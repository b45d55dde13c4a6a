"""Approvals and cancels: the request, the click (signed by the ingress), the verified actor,
the outcome, and thread replies."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ApprovalDecisionKind(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    REFUSED = "refused"  # could not be shown to an approver in full: nobody was asked
    CANCELLED = "cancelled"  # the task was cancelled while it waited


class ClaimKind(StrEnum):
    """What a signed claim (:class:`lucy.signing.Claim`) asserts."""

    DECISION = "decision"  # an Approve/Reject click: its verdict is the decision
    CANCEL = "cancel"  # the Cancel button or ``/lucy cancel``: its verdict is "cancel"
    EXACT_VIEW = "exact_view"  # "Show exactly what runs": its verdict is "show"


CANCEL_VERDICT = "cancel"
SHOW_VERDICT = "show"


@dataclass(frozen=True)
class ApprovalRequest:
    """Create the ``approvals`` row and post the Block Kit message (one activity, idempotent)."""

    workflow_id: str
    workspace_id: str
    approval_id: str  # chosen by the workflow (workflow.uuid4), so it is known before the post
    approval_key: str  # idempotency key: workflow id + step
    tool: str
    summary: str  # what will run, in one line
    reason: str  # why Lucy wants to run it
    risk_level: str  # low | medium | high | critical
    slack_channel_id: str
    thread_ts: str
    requester_slack_id: str
    approver_slack_ids: list[str]
    expires_at: str  # ISO 8601
    requester_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # Every argument of the call, in full: the approver sees all of them (escaped, redacted of
    # secrets, as a snippet when long) and the audit log records them.
    arguments: dict[str, Any] = field(default_factory=dict)
    because: str = ""  # why policy asks (Lucy's words, not the model's)
    requested_at: str = ""  # ISO 8601, the workflow's clock: the audit entry's time on every retry
    owner_only: bool = False  # a step on the requester's own account: only they may approve


@dataclass(frozen=True)
class ApprovalPosted:
    approval_id: str
    message_ts: str | None
    # Set when the step could not be shown to an approver in full: nobody is asked, and the
    # step does not run.
    refused: str | None = None


@dataclass(frozen=True)
class ApprovalDecision:
    """An Approve/Reject click, delivered by ingress as the ``decide_approval`` update.

    It says who clicked, signed by the ingress (:mod:`lucy.signing`); it never says what the
    clicker may do. The worker checks the signature and reads the clicker's role from Slack
    before the workflow decides, by its own rules, whether the click counts."""

    approval_id: str
    decision: ApprovalDecisionKind  # approved | rejected
    slack_user_id: str
    slack_team_id: str = ""
    issued_at: str = ""  # ISO 8601, when the ingress signed it
    signature: str = ""
    user_name: str = ""


@dataclass(frozen=True)
class ExactViewRequest:
    """A click on "Show exactly what runs", delivered by ingress as the ``show_exact_arguments``
    update: who clicked, signed like a decision. The worker verifies who it is and the
    workflow answers only a person who may decide this approval."""

    approval_id: str
    slack_user_id: str
    slack_team_id: str = ""
    issued_at: str = ""
    signature: str = ""


@dataclass(frozen=True)
class ExactArguments:
    """The pending step exactly as it will run (for the clicker's eyes only: a modal)."""

    approval_id: str
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApprovalOutcome:
    approval_id: str
    decision: ApprovalDecisionKind
    decided_by_slack_id: str | None
    decided_at: str


@dataclass(frozen=True)
class ApprovalSettled:
    """Record a decision (``approvals`` + ``audit_log``) and update the Block Kit message."""

    workflow_id: str
    workspace_id: str
    approval_id: str
    decision: ApprovalDecisionKind
    decided_at: str
    slack_channel_id: str
    message_ts: str | None
    summary: str
    risk_level: str
    decided_by_slack_id: str | None = None


@dataclass(frozen=True)
class CancelRequest:
    """The ``cancel`` update (the Cancel button, ``/lucy cancel``): who asks, signed by the
    ingress like a decision."""

    slack_user_id: str
    slack_team_id: str = ""
    issued_at: str = ""
    signature: str = ""


def claim_terms(claim: ApprovalDecision | CancelRequest | ExactViewRequest) -> tuple[ClaimKind, str, str]:
    """What the ingress signs for a click or a cancel, and the worker checks: (kind, subject, verdict)."""
    if isinstance(claim, ApprovalDecision):
        return ClaimKind.DECISION, claim.approval_id, claim.decision
    if isinstance(claim, ExactViewRequest):
        return ClaimKind.EXACT_VIEW, claim.approval_id, SHOW_VERDICT
    return ClaimKind.CANCEL, "", CANCEL_VERDICT


@dataclass(frozen=True)
class ActorCheck:
    """Verify a signed claim and look its author up in Slack (activity ``identity.verify``)."""

    kind: ClaimKind
    workflow_id: str
    subject: str  # the approval id, or "" for a cancel
    verdict: str  # the decision (approved | rejected), CANCEL_VERDICT or SHOW_VERDICT
    slack_user_id: str
    slack_team_id: str
    issued_at: str
    signature: str
    expected_team_id: str  # the task's workspace: a click from another team never counts


@dataclass(frozen=True)
class Actor:
    """Who clicked, as the worker verified it. ``problem`` is None when the claim is genuine."""

    slack_user_id: str
    problem: str | None = None
    role: str = "member"  # owner | admin | member | guest (restricted, or another team's user)
    deleted: bool = False

    @property
    def is_admin(self) -> bool:
        return self.problem is None and not self.deleted and self.role in ("admin", "owner")

    @property
    def is_guest(self) -> bool:
        return self.role == "guest"


@dataclass(frozen=True)
class ThreadReply:
    """A person's reply in the thread of a running task (the ``thread_reply`` signal)."""

    slack_user_id: str
    text: str
    ts: str
