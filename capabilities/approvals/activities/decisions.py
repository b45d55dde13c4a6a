"""``approvals.settle``'s parts: the decision written once (``approvals`` + ``audit_log``) and
the message that shows it in place of the buttons, keeping what was decided on in full."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from capabilities.approvals.contracts import ApprovalSettled
from capabilities.approvals.repository import (
    DECISION_SHOWN,
    close_approval,
    decide_approval,
    get_approval,
    slack_id_of,
)
from capabilities.task.views import blocks
from lucy.contracts.ids import idempotency_key
from lucy.contracts.slack import UpdateMessageRequest
from lucy.db.repositories.ledger import record_audit
from lucy.db.repositories.tenants import upsert_user
from lucy.redact import redact_secrets
from lucy.slack.masking import recorded_masking
from lucy.slack.text import escape_mrkdwn


async def record_decision(session: AsyncSession, settled: ApprovalSettled) -> tuple[bool, Any]:
    """Decide or close the approval (once) and audit it; whether this call changed the row, and
    the row as it stands."""
    workspace_id = uuid.UUID(settled.workspace_id)
    approval_id = uuid.UUID(settled.approval_id)
    decided_at = datetime.fromisoformat(settled.decided_at)
    decider = None
    if settled.decided_by_slack_id:  # an approver may never have asked Lucy anything
        decider = await upsert_user(
            session=session, workspace_id=workspace_id, slack_user_id=settled.decided_by_slack_id
        )
    if settled.decision in ("approved", "rejected"):
        changed = (
            await decide_approval(
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
        changed = await close_approval(
            session=session,
            workspace_id=workspace_id,
            approval_id=approval_id,
            status=settled.decision,
            now=decided_at,
            decided_by=decider,
        )
    row = await get_approval(session=session, workspace_id=workspace_id, approval_id=approval_id)
    await _audit_decision(session, settled, row)
    return changed, row


async def _audit_decision(session: AsyncSession, settled: ApprovalSettled, row: Any) -> None:
    await record_audit(
        session=session,
        workspace_id=uuid.UUID(settled.workspace_id),
        idempotency_key=idempotency_key(
            settled.workflow_id, "approval", settled.approval_id, settled.decision
        ),
        occurred_at=datetime.fromisoformat(settled.decided_at),
        actor_type="user" if settled.decided_by_slack_id and settled.decision != "expired" else "system",
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
            "summary": redact_secrets(settled.summary),
            "arguments_sha256": (row.details or {}).get("arguments_sha256") if row else None,
        },
    )


def recorded_attachment(details: dict[str, Any]) -> blocks.Attachment | None:
    """The attached arguments file the record names, if any."""
    raw = details.get("attachment")
    if not isinstance(raw, dict):
        return None
    return blocks.Attachment(
        name=str(raw.get("name")), sha256=str(raw.get("sha256")), size=int(raw.get("size") or 0)
    )


def decided_update(settled: ApprovalSettled, row: Any) -> UpdateMessageRequest | None:
    """The approval message rewritten to show the decision instead of the buttons; None when
    there is no message (yet: its poster then shows the decision) or it shows it already. The
    workflow may not know the message (cancelled while it was posted): the record does."""
    details: dict[str, Any] = dict(row.details or {}) if row else {}
    channel, ts = settled.slack_channel_id, settled.message_ts
    if not ts and row is not None and row.slack_message_ts:
        channel, ts = row.slack_channel_id or channel, row.slack_message_ts
    if not ts or details.get(DECISION_SHOWN) == ts:
        return None
    text = blocks.decided_text(settled.decision, settled.decided_by_slack_id, settled.decided_at)
    return UpdateMessageRequest(
        channel=channel,
        ts=ts,
        text=f"{text}: {escape_mrkdwn(redact_secrets(settled.summary))}",
        blocks=blocks.decided_message(
            tool=str(details.get("tool") or settled.summary),
            arguments=dict(details.get("arguments") or {}),
            attachment=recorded_attachment(details),
            decision=settled.decision,
            decided_by=settled.decided_by_slack_id,
            decided_at=settled.decided_at,
            masked=recorded_masking(details),
        ),
        builder="decided_message",
    )


async def settled_from_record(session: AsyncSession, row: Any, channel: str) -> ApprovalSettled:
    """A decision as the record holds it (the workflow settled it before its message was known)."""
    decided_at = row.decided_at or row.updated_at
    return ApprovalSettled(
        workflow_id=row.workflow_id,
        workspace_id=str(row.workspace_id),
        approval_id=str(row.id),
        decision=row.status,
        decided_at=decided_at.isoformat(),
        slack_channel_id=channel,
        message_ts=row.slack_message_ts,
        summary=row.summary,
        risk_level=row.risk_level,
        decided_by_slack_id=await slack_id_of(
            session=session, workspace_id=row.workspace_id, user_id=row.decided_by
        ),
    )
