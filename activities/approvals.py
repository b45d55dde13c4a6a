"""Approval activities: the ``approvals`` row, the Block Kit message, and the decision's record.

Both are idempotent across retries: the row is keyed by the workflow's approval key, the
message by the same key (Slack message metadata, see :mod:`activities.slack`), the decision by
``UPDATE ... WHERE status = 'pending'`` and the audit entry by workflow id + approval + decision.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.slack import SlackActivities
from lucy.contracts import (
    ApprovalPosted,
    ApprovalRequest,
    ApprovalSettled,
    ErrorType,
    PostMessageRequest,
    UpdateMessageRequest,
    approval_buttons,
    idempotency_key,
)
from lucy.db import repositories as repo
from lucy.logging import redact_text

_PERMANENT = (IntegrityError, DataError, ProgrammingError)
_ACTION_TYPES = {"send_email": "message_send", "create_file": "data_export"}
_RISK_ICON = {
    "low": ":large_blue_circle:",
    "medium": ":large_yellow_circle:",
    "high": ":large_orange_circle:",
}


def _slack_date(iso: str) -> str:
    moment = datetime.fromisoformat(iso)
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def _who(approvers: list[str]) -> str:
    if approvers:
        return " or ".join(f"<@{a}>" for a in approvers) + ", or a workspace admin"
    return "a workspace admin or owner"


def approval_blocks(request: ApprovalRequest, approval_id: str) -> list[dict[str, Any]]:
    icon = _RISK_ICON.get(request.risk_level, ":red_circle:")
    what = redact_text(request.summary)
    why = redact_text(request.reason) if request.reason else "This step is part of the task."
    return [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": (
                    f"{icon} *Approval needed* ({request.risk_level} risk)\n"
                    f"*What:* `{what}`\n*Why:* {why[:500]}"
                ),
            },
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Requested for <@{request.requester_slack_id}> · Who may decide: "
                    f"{_who(request.approver_slack_ids)} · Expires {_slack_date(request.expires_at)}",
                }
            ],
        },
        approval_buttons(request.workflow_id, approval_id),
    ]


def decided_text(settled: ApprovalSettled) -> str:
    by = f" by <@{settled.decided_by_slack_id}>" if settled.decided_by_slack_id else ""
    when = _slack_date(settled.decided_at)
    return {
        "approved": f":white_check_mark: Approved{by} at {when}",
        "rejected": f":x: Rejected{by} at {when}",
        "expired": ":hourglass: Expired: nobody decided in time, so it was not run.",
        "cancelled": f":no_entry_sign: Cancelled with the task{by}.",
    }.get(settled.decision, settled.decision)


class ApprovalActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], slack: SlackActivities) -> None:
        self._sessions = sessions
        self._slack = slack

    @activity.defn(name="approvals.request")
    async def request(self, request: ApprovalRequest) -> ApprovalPosted:
        """Record the pending approval, then post its Block Kit message in the task's thread.
        A message Slack refuses for good (channel gone) leaves the approval pending without
        buttons: it can still be decided from App Home, or it expires."""
        workspace_id = uuid.UUID(request.workspace_id)
        try:
            async with self._sessions.begin() as session:
                await repo.set_tenant(session=session, workspace_id=workspace_id)
                task = await repo.get_task(
                    session=session, workspace_id=workspace_id, workflow_id=request.workflow_id
                )
                if task is None:
                    raise ApplicationError(
                        "no task row for this approval", type="DatabaseRejected", non_retryable=True
                    )
                approver = None
                if request.approver_slack_ids:
                    approver = await repo.get_user(
                        session=session,
                        workspace_id=workspace_id,
                        slack_user_id=request.approver_slack_ids[0],
                    )
                approval_id = await repo.create_approval(
                    session=session,
                    workspace_id=workspace_id,
                    task_id=task.id,
                    workflow_id=request.workflow_id,
                    idempotency_key=request.approval_key,
                    action_type=_ACTION_TYPES.get(request.tool, "tool_execution"),
                    risk_level=request.risk_level,
                    summary=redact_text(request.summary),
                    expires_at=datetime.fromisoformat(request.expires_at),
                    requester_id=uuid.UUID(request.requester_id) if request.requester_id else None,
                    approver_id=approver.id if approver else None,  # none designated: any admin
                    details={**request.details, "reason": redact_text(request.reason)[:500]},
                    approval_id=uuid.UUID(request.approval_id),
                )
        except _PERMANENT as exc:
            raise ApplicationError(
                f"database rejected the approval ({exc.__class__.__name__})",
                type="DatabaseRejected",
                non_retryable=True,
            ) from None
        blocks = approval_blocks(request, str(approval_id))
        try:
            posted = await self._slack.post_message(
                PostMessageRequest(
                    channel=request.slack_channel_id,
                    text=f"Approval needed: {redact_text(request.summary)}",
                    idempotency_key=request.approval_key,
                    thread_ts=request.thread_ts or None,
                    format=False,
                    blocks=blocks,
                )
            )
        except ApplicationError as exc:
            if exc.non_retryable or exc.type == ErrorType.SLACK_NOT_CONFIGURED:
                activity.logger.warning(
                    "approval message could not be posted", extra={"error_type": exc.type}
                )
                return ApprovalPosted(approval_id=str(approval_id), message_ts=None)
            raise
        async with self._sessions.begin() as session:
            await repo.set_tenant(session=session, workspace_id=workspace_id)
            await repo.set_approval_message(
                session=session,
                workspace_id=workspace_id,
                approval_id=approval_id,
                channel=request.slack_channel_id,
                ts=posted.ts,
            )
        return ApprovalPosted(approval_id=str(approval_id), message_ts=posted.ts)

    @activity.defn(name="approvals.settle")
    async def settle(self, settled: ApprovalSettled) -> bool:
        """Record the decision (``approvals`` + ``audit_log``, once) and show it in place of the
        buttons. Returns whether this call changed the row (False on a retry)."""
        workspace_id = uuid.UUID(settled.workspace_id)
        approval_id = uuid.UUID(settled.approval_id)
        decided_at = datetime.fromisoformat(settled.decided_at)
        async with self._sessions.begin() as session:
            await repo.set_tenant(session=session, workspace_id=workspace_id)
            decider = None
            if settled.decided_by_slack_id:  # an approver may never have asked Lucy anything
                decider = await repo.upsert_user(
                    session=session, workspace_id=workspace_id, slack_user_id=settled.decided_by_slack_id
                )
            if settled.decision in ("approved", "rejected"):
                changed = (
                    await repo.decide_approval(
                        session=session,
                        workspace_id=workspace_id,
                        approval_id=approval_id,
                        decision=settled.decision,
                        decided_by=decider,
                        now=decided_at,
                    )
                    is not None
                )
            else:
                changed = await repo.close_approval(
                    session=session,
                    workspace_id=workspace_id,
                    approval_id=approval_id,
                    status=settled.decision,
                    now=decided_at,
                )
            row = await repo.get_approval(session=session, workspace_id=workspace_id, approval_id=approval_id)
            await repo.record_audit(
                session=session,
                workspace_id=workspace_id,
                idempotency_key=idempotency_key(
                    settled.workflow_id, "approval", settled.approval_id, settled.decision
                ),
                occurred_at=decided_at,
                actor_type="user"
                if settled.decided_by_slack_id and settled.decision != "expired"
                else "system",
                actor_id=settled.decided_by_slack_id,
                action=f"approval.{settled.decision}",
                entity_type="approval",
                entity_id=settled.approval_id,
                task_id=row.task_id if row else None,
                workflow_id=settled.workflow_id,
                before_state={"status": "pending"},
                after_state={
                    "status": settled.decision,
                    "risk": settled.risk_level,
                    "summary": redact_text(settled.summary),
                },
            )
        if settled.message_ts:
            text = decided_text(settled)
            await self._slack.update_message(
                UpdateMessageRequest(
                    channel=settled.slack_channel_id,
                    ts=settled.message_ts,
                    text=f"{text}: {redact_text(settled.summary)}",
                    blocks=[
                        {
                            "type": "section",
                            "text": {
                                "type": "mrkdwn",
                                "text": f"*Approval:* `{redact_text(settled.summary)}`",
                            },
                        },
                        {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]},
                    ],
                )
            )
        return changed
