"""The memory tools' approval rules, decided by code (the policy reads each tool's gate): a
``me``/``channel`` memory from the requester's own words is written at once; a ``workspace``
memory waits for an admin; after untrusted content the requester confirms; only an admin's
verified click approves an admin-only step."""

from __future__ import annotations

import pytest

from capabilities.approvals.contracts import Actor, ApprovalDecisionKind
from capabilities.task.workflow import policy
from lucy.contracts.risk import Risk


@pytest.mark.parametrize("scope", ["me", "channel"])
def test_own_words_write_at_once_untrusted_content_asks_the_requester(scope: str):
    args = {"text": "we ship on Tuesdays", "scope": scope}
    clean = policy.assess("remember", args, untrusted_seen=False, known_hosts=())
    assert (clean.needs_approval, clean.risk) == (False, Risk.LOW)
    tainted = policy.assess("remember", args, untrusted_seen=True, known_hosts=())
    assert tainted.needs_approval and tainted.owner_only and not tainted.admin_only


@pytest.mark.parametrize("untrusted", [False, True])
def test_a_workspace_memory_waits_for_an_admin(untrusted: bool):
    verdict = policy.assess(
        "remember", {"text": "x", "scope": "workspace"}, untrusted_seen=untrusted, known_hosts=()
    )
    assert verdict.needs_approval and verdict.admin_only and not verdict.owner_only


def test_forget_and_recall():
    assert not policy.assess("recall", {"query": "x"}, untrusted_seen=True, known_hosts=()).needs_approval
    assert not policy.assess(
        "forget", {"memory_id": "x"}, untrusted_seen=False, known_hosts=()
    ).needs_approval
    assert policy.assess("forget", {"memory_id": "x"}, untrusted_seen=True, known_hosts=()).owner_only


def test_only_an_admin_approves_an_admin_only_step():
    def refusal(actor: Actor, decision: str = ApprovalDecisionKind.APPROVED) -> str | None:
        return policy.refusal(
            actor,
            decision=decision,
            requester="U0ALICE",
            approvers=["U0APPROVER"],
            risk="medium",
            self_approval_allowed=True,
            admin_only=True,
        )

    assert refusal(Actor(slack_user_id="U0ALICE")) == "Only a workspace admin can approve this step."
    assert refusal(Actor(slack_user_id="U0APPROVER")) is not None  # a designated approver is not enough
    assert refusal(Actor(slack_user_id="UADMIN1", role="admin")) is None
    assert refusal(Actor(slack_user_id="U0ALICE"), ApprovalDecisionKind.REJECTED) is None  # may call it off
    assert refusal(Actor(slack_user_id="UGUEST1", role="guest")) is not None
