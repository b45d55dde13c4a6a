"""The task's approval gate: ask a person, wait durably for a verified decision or the expiry,
settle it once. Who may decide is :mod:`capabilities.task.workflow.policy`'s; who clicked is verified by
the worker (``identity.verify``), never taken from the click."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from capabilities.approvals.activities.identity import IdentityActivities
    from capabilities.approvals.activities.requests import ApprovalActivities
from capabilities.approvals.contracts import (
    Actor,
    ActorCheck,
    ApprovalDecision,
    ApprovalDecisionKind,
    ApprovalOutcome,
    ApprovalPosted,
    ApprovalRequest,
    ApprovalSettled,
    CancelRequest,
    ExactArguments,
    ExactViewRequest,
    claim_terms,
)
from capabilities.task.contracts.task import PendingApproval, TaskInput, TaskState
from capabilities.task.workflow import options, policy
from capabilities.task.workflow.models import error_type
from capabilities.task.workflow.posting import ProgressMessage, thread_of
from capabilities.task.workflow.recorder import StepRecorder
from capabilities.task.workflow.status import set_status
from lucy.contracts.errors import ErrorType
from lucy.contracts.ids import UPDATE_SHOW_EXACT, TaskStatus, idempotency_key
from lucy.contracts.slack import Progress

OWNER_ONLY_PROGRESS_PATCH = "redesign2-owner-only-progress"
# The decision is recorded and shown (``approvals.settle``) while the approved step runs, not
# before it: histories recorded before it settle first.
APPROVAL_PARALLEL_PATCH = "speed-approval-parallel"
# Who clicked is verified by a local activity (no round trip through the server's queue).
VERIFY_LOCAL_PATCH = "speed-verify-local"


async def verify(task: TaskInput, claim: ApprovalDecision | CancelRequest | ExactViewRequest) -> Actor:
    """Who really sent a click or a cancel: the worker checks the ingress's signature and asks Slack."""
    kind, subject, verdict = claim_terms(claim)
    check = ActorCheck(
        kind=kind,
        workflow_id=workflow.info().workflow_id,
        subject=subject,
        verdict=verdict,
        slack_user_id=claim.slack_user_id,
        slack_team_id=claim.slack_team_id,
        issued_at=claim.issued_at,
        signature=claim.signature,
        expected_team_id=task.slack_team_id,
    )
    summary = f"verify who sent the {kind}"
    try:
        if workflow.patched(VERIFY_LOCAL_PATCH):
            # A read (the signature, then Slack's users.info): run by this worker inside the
            # click's own workflow task, so the decision's effects leave with that task.
            return await workflow.execute_local_activity_method(
                IdentityActivities.verify,
                check,
                start_to_close_timeout=options.VERIFY_TIMEOUT,
                schedule_to_close_timeout=options.VERIFY_TIMEOUT * 3,
                retry_policy=options.VERIFY["retry_policy"],
                summary=summary,
            )
        return await workflow.execute_activity_method(
            IdentityActivities.verify, check, **options.VERIFY, summary=summary
        )
    except ActivityError as err:
        workflow.logger.warning("could not verify a click", extra={"error_type": error_type(err)})
        return Actor(
            slack_user_id=claim.slack_user_id, problem="Slack could not confirm who you are; try again"
        )


def validate_click(state: TaskState, decision: ApprovalDecision) -> None:
    """The cheap checks of a click, before anything runs (raise: the click is refused)."""
    if decision.decision not in (ApprovalDecisionKind.APPROVED, ApprovalDecisionKind.REJECTED):
        raise ValueError("A decision is either approved or rejected.")
    p = state.pending
    if p is None or p.approval_id != decision.approval_id:
        raise ValueError("This approval is not waiting for a decision any more.")
    if p.decision is not None:
        raise ValueError(f"This approval was already {p.decision} by <@{p.decided_by}>.")
    if workflow.now() >= p.expires_at:
        raise ValueError("This approval has expired.")
    if not decision.signature:
        raise ValueError("That click could not be verified (it is not signed).")


def validate_exact_view(state: TaskState, request: ExactViewRequest) -> None:
    """The cheap checks of a click on *Show exactly what runs* (raise: refused)."""
    p = state.pending
    if p is None or p.approval_id != request.approval_id or p.decision is not None:
        raise ValueError("This approval is not waiting for a decision any more.")
    if not request.signature:
        raise ValueError("That click could not be verified (it is not signed).")


def _refusal(
    task: TaskInput, state: TaskState, p: PendingApproval, actor: Actor, decision: str
) -> str | None:
    return policy.refusal(
        actor,
        decision=decision,
        requester=task.slack_user_id,
        approvers=p.approvers,
        risk=p.risk,
        self_approval_allowed=bool(state.context and state.context.self_approval_allowed),
        owner_only=p.owner_only,
        admin_only=p.admin_only,
    )


async def _allowed(
    task: TaskInput, state: TaskState, claim: ApprovalDecision | ExactViewRequest, decision: str
) -> tuple[PendingApproval, Actor, bool]:
    """The pending approval and the clicker, verified by the worker and allowed by the policy
    to decide it (else ``APPROVAL_REFUSED``), and whether the approval still waits (it may have
    been decided while the click was verified)."""
    p = state.pending
    assert p is not None  # the validator saw it pending
    actor = await verify(task, claim)
    refused = _refusal(task, state, p, actor, decision)
    if refused:
        raise ApplicationError(refused, type=ErrorType.APPROVAL_REFUSED)
    return p, actor, state.pending is p and p.decision is None


async def show_exact(task: TaskInput, state: TaskState, request: ExactViewRequest) -> ExactArguments:
    """The pending step's exact arguments, for a clicker the worker verified and the policy
    lets approve it; anyone else is refused (the exact text may hold secrets)."""
    p, _, waiting = await _allowed(task, state, request, ApprovalDecisionKind.APPROVED)
    if not waiting:
        raise ApplicationError(
            "This approval is not waiting for a decision any more.", type=ErrorType.APPROVAL_CLOSED
        )
    return ExactArguments(approval_id=p.approval_id, tool=p.tool, arguments=dict(p.arguments))


class ExactViewUpdate:
    """The task workflow's *Show exactly what runs* update, as a base class of
    ``LucyTaskWorkflow`` (Temporal collects inherited handlers): it reads the workflow's
    ``_task`` and ``_state``."""

    _task: TaskInput
    _state: TaskState

    @workflow.update(name=UPDATE_SHOW_EXACT)
    async def show_exact_arguments(self, request: ExactViewRequest) -> ExactArguments:
        """The pending step's exact arguments, only for a person the worker verified and the
        policy lets decide (they approve from that view)."""
        return await show_exact(self._task, self._state, request)

    @show_exact_arguments.validator
    def _validate_exact_view(self, request: ExactViewRequest) -> None:
        validate_exact_view(self._state, request)


async def decide(task: TaskInput, state: TaskState, decision: ApprovalDecision) -> ApprovalOutcome:
    """A click, once verified and allowed, decides the pending approval (the first one wins);
    returns when the decision is recorded and shown."""
    p, actor, waiting = await _allowed(task, state, decision, decision.decision)
    if not waiting:
        decided = f" by <@{p.decided_by}>" if p.decided_by else ""
        raise ApplicationError(
            f"This approval was already {p.decision or 'decided'}{decided}.", type=ErrorType.APPROVAL_CLOSED
        )
    p.decision, p.decided_by, p.decided_at = decision.decision, actor.slack_user_id, workflow.now()
    await workflow.wait_condition(lambda: p.settled)
    return ApprovalOutcome(
        approval_id=p.approval_id,
        decision=p.decision,
        decided_by_slack_id=p.decided_by,
        decided_at=p.decided_at.isoformat(),
    )


async def _released(pending: PendingApproval, settling: Awaitable[None]) -> None:
    """Settle in the background; the click's caller is let go even if it fails for good (the
    step that awaits it fails then, as when the settle came first)."""
    try:
        await settling
    finally:
        pending.settled = True


class ApprovalGate:
    """Asks for approvals for one task (one at a time)."""

    def __init__(
        self, task: TaskInput, state: TaskState, recorder: StepRecorder, progress: ProgressMessage
    ) -> None:
        self._task = task
        self._state = state
        self._recorder = recorder
        self._progress = progress
        self._settling: asyncio.Task[None] | None = None

    async def ask(
        self,
        tool: str,
        args: dict[str, Any],
        *,
        risk: str,
        summary: str,
        reason: str,
        because: str,
        owner_only: bool = False,
        admin_only: bool = False,
    ) -> tuple[ApprovalDecisionKind, str | None]:
        """Ask a person, showing every argument in full; wait durably for the decision or the
        expiry; settle it once. Returns ``refused`` without asking anyone when the step cannot
        be shown in full. ``owner_only``: the requester alone may approve (they are the one
        asked); ``admin_only``: only a workspace admin may approve."""
        ctx = self._state.context
        assert ctx is not None
        ttl = timedelta(seconds=ctx.approval_ttl_seconds)
        index = self._recorder.next_index()
        pending = self._open(tool, args, risk=risk, summary=summary, ttl=ttl, owner_only=owner_only)
        pending.admin_only = admin_only
        if admin_only:
            pending.approvers = []  # shown as "Who may decide: a workspace admin"
        posted = await self._post(pending, index, reason=reason, because=because)
        pending.message_ts = posted.message_ts
        if posted.refused is not None:
            return self._not_asked(index, pending, why=posted.refused)
        decision = await self._wait(pending, ttl)
        self._state.step = f"approval {decision}"
        settling = self.settle(pending, decision, pending.decided_by)
        if workflow.patched(APPROVAL_PARALLEL_PATCH):
            # The decision is verified and durable (it is in the workflow's state): the step
            # runs now, while the record and the message catch up (see :meth:`settled`).
            self._settling = asyncio.create_task(_released(pending, settling))
        else:
            await settling
        self._record(index, pending)
        self._state.pending = None
        set_status(self._state, TaskStatus.RUNNING, f"approval {decision}")
        return decision, pending.decided_by

    def _open(
        self, tool: str, args: dict[str, Any], *, risk: str, summary: str, ttl: timedelta, owner_only: bool
    ) -> PendingApproval:
        """The pending approval, in the task's state before the message is posted."""
        state, task = self._state, self._task
        ctx = state.context
        assert ctx is not None
        approvers = [task.slack_user_id] if owner_only else [a for a in ctx.approver_slack_ids if a]
        # The approval's id is the workflow's own (deterministic) UUID, and the workflow waits
        # for it before the message is posted: a click that arrives with the message is valid.
        pending = PendingApproval(
            approval_id=str(workflow.uuid4()),
            tool=tool,
            summary=summary,
            risk=risk,
            approvers=approvers,
            expires_at=workflow.now() + ttl,
            arguments=args,
            owner_only=owner_only,
        )
        state.pending = pending
        set_status(state, TaskStatus.PENDING_APPROVAL, f"waiting for approval: {summary}")
        return pending

    async def _post(
        self, pending: PendingApproval, index: int, *, reason: str, because: str
    ) -> ApprovalPosted:
        """Post the approval message (``approvals.request``); returns what the activity did."""
        task, workflow_id = self._task, workflow.info().workflow_id
        return await workflow.execute_activity_method(
            ApprovalActivities.request,
            ApprovalRequest(
                workflow_id=workflow_id,
                workspace_id=task.workspace_id,
                approval_id=pending.approval_id,
                approval_key=idempotency_key(workflow_id, "approval", str(index)),
                tool=pending.tool,
                summary=pending.summary,
                reason=(reason or "").strip()[:1000],
                risk_level=pending.risk,
                slack_channel_id=task.slack_channel_id,
                thread_ts=thread_of(task, self._state),
                requester_slack_id=task.slack_user_id,
                approver_slack_ids=pending.approvers,
                expires_at=pending.expires_at.isoformat(),
                requester_id=task.user_id or None,
                details={"tool": pending.tool},
                arguments=pending.arguments,
                because=because,
                requested_at=workflow.now().isoformat(),
                owner_only=pending.owner_only,  # True only under the trust2-account-owner-approval patch
                subtask=task.delegation.label if task.delegation else "",
            ),
            **options.RECORD,
            summary=f"approval: ask for {pending.summary}",
        )

    def _not_asked(
        self, index: int, pending: PendingApproval, *, why: str
    ) -> tuple[ApprovalDecisionKind, str | None]:
        """The step could not be shown in full: refused, nobody asked."""
        workflow.logger.warning("approval not asked: the step cannot be shown in full")
        pending.decision, pending.decided_at, pending.settled = (
            ApprovalDecisionKind.REFUSED,
            workflow.now(),
            True,
        )
        self._record(index, pending, extra={"why": why})
        self._state.pending = None
        set_status(self._state, TaskStatus.RUNNING, "approval refused")
        return ApprovalDecisionKind.REFUSED, None

    async def _wait(self, pending: PendingApproval, ttl: timedelta) -> ApprovalDecisionKind:
        """Show that the task waits, then wait durably for a decision or the expiry."""
        # Says the owner alone may approve; a history recorded before it replays as it was.
        owner_only = pending.owner_only and workflow.patched(OWNER_ONLY_PROGRESS_PATCH)
        view = self._progress.view(
            Progress.WAITING, detail=pending.summary, approvers=pending.approvers, owner_only=owner_only
        )
        await self._progress.show(view)
        self._recorder.flush()  # the wait may be long: write what happened so far
        try:
            await workflow.wait_condition(
                lambda: pending.decision is not None, timeout=ttl, timeout_summary="approval expiry"
            )
        except TimeoutError:
            pending.decision, pending.decided_at = ApprovalDecisionKind.EXPIRED, workflow.now()
        return pending.decision or ApprovalDecisionKind.EXPIRED

    def _record(self, index: int, pending: PendingApproval, extra: dict[str, Any] | None = None) -> None:
        self._recorder.add(
            kind="approval_wait",
            name=pending.tool,
            status="completed" if pending.decision == ApprovalDecisionKind.APPROVED else "skipped",
            input={"summary": pending.summary, "risk": pending.risk, "approval_id": pending.approval_id},
            output={
                "decision": pending.decision or "",
                "decided_by": pending.decided_by or "",
                **(extra or {}),
            },
            index=index,
        )

    async def settle(
        self, pending: PendingApproval, decision: ApprovalDecisionKind, decided_by: str | None
    ) -> None:
        """Record the decision and show it in place of the buttons (``approvals.settle``)."""
        await workflow.execute_activity_method(
            ApprovalActivities.settle,
            ApprovalSettled(
                workflow_id=workflow.info().workflow_id,
                workspace_id=self._task.workspace_id,
                approval_id=pending.approval_id,
                decision=decision,
                decided_at=(pending.decided_at or workflow.now()).isoformat(),
                slack_channel_id=self._task.slack_channel_id,
                message_ts=pending.message_ts,
                summary=pending.summary,
                risk_level=pending.risk,
                decided_by_slack_id=decided_by,
            ),
            **options.RECORD,
            summary=f"approval: {decision}",
        )
        pending.settled = True

    async def settled(self) -> None:
        """Wait for the last decision's record and message (started by :meth:`ask`); its
        failure fails the step as it did when the settle came first."""
        settling, self._settling = self._settling, None
        if settling is not None:
            await settling

    async def close_for_cancel(self, by: str | None) -> None:
        """The task is being cancelled: a pending approval is closed (or a click being settled
        is let go)."""
        pending = self._state.pending
        if pending is None:
            return
        if pending.decision is not None:
            pending.settled = True  # cancelled while settling: let the click's caller go
            return
        pending.decided_at = workflow.now()
        await self.settle(pending, ApprovalDecisionKind.CANCELLED, by)
