"""``approvals.settle``'s parts: the decision written once (``approvals`` + ``audit_log``) and
the message that shows it in place of the buttons, keeping what was decided on in full."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from capabilities.approvals.contracts import ApprovalSettled
from capabilities.approvals.repository import close_approval, decide_approval, get_approval
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


def decided_update(settled: ApprovalSettled, row: Any) -> UpdateMessageRequest:
    """The approval message rewritten to show the decision instead of the buttons."""
    assert settled.message_ts
    details: dict[str, Any] = dict(row.details or {}) if row else {}
    text = blocks.decided_text(settled.decision, settled.decided_by_slack_id, settled.decided_at)
    return UpdateMessageRequest(
        channel=settled.slack_channel_id,
        ts=settled.message_ts,
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
