"""Approval activities: the ``approvals`` row, the Block Kit message, and the decision's record.

``approvals.request`` shows the approver every argument of the call in full (see
:mod:`lucy.blocks`): in the message when it fits, otherwise in a text file attached to the
thread. When the arguments cannot be shown in full (too large even for a file, or the file
could not be shared), nobody is asked: the activity answers ``refused`` and the step does not
run (also when arguments holding a secret are too long for the exact view, see
:mod:`lucy.slack.masking`). The record keeps the arguments masked, their SHA-256 and the exact
arguments encrypted (:mod:`capabilities.approvals.activities.sealed_arguments`).

Both activities are idempotent across retries: the row is keyed by the workflow's approval
key, the message by the same key (Slack message metadata, see :mod:`capabilities.task.activities.slack`), the
attached file by its name (which carries the key), the decision by
``UPDATE ... WHERE status = 'pending'`` and the audit entries by workflow id + approval.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from capabilities.approvals.activities.decisions import decided_update, record_decision, settled_from_record
from capabilities.approvals.activities.sealed_arguments import sealed_arguments
from capabilities.approvals.contracts import ApprovalPosted, ApprovalRequest, ApprovalSettled
from capabilities.approvals.repository import create_approval, mark_decision_shown, set_approval_message
from capabilities.task.activities.slack import SlackActivities, slack_error
from capabilities.task.repository import get_task
from capabilities.task.views import blocks
from capabilities.tools.activities import registry
from lucy.contracts.errors import ErrorType
from lucy.contracts.ids import idempotency_key
from lucy.contracts.slack import PostMessageRequest, UpdateMessageRequest
from lucy.crypto import KeyRing
from lucy.db.repositories.ledger import record_audit
from lucy.db.repositories.tenants import get_user, tenant_transaction
from lucy.redact import redact_secrets
from lucy.slack.masking import Masking, masking
from lucy.slack.text import escape_mrkdwn

_PERMANENT = (IntegrityError, DataError, ProgrammingError)
_STEP_ACTIONS = {"email_reply": "message_send"}  # steps that are not tools (a tool's: its ToolSpec)
_LOOKUP_PAGES = 10


def _rejected(exc: Exception) -> ApplicationError:
    return ApplicationError(
        f"database rejected the approval ({exc.__class__.__name__})",
        type="DatabaseRejected",
        non_retryable=True,
    )


def redacted_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments as the record keeps them: every value in full, secrets masked."""
    return {name: blocks.argument_text(value) for name, value in arguments.items()}


def _unshowable(view: blocks.ArgumentView, masked: Masking) -> str | None:
    """Why the step cannot be shown to an approver in full, or None when it can."""
    if not view.showable:
        return (
            f"its arguments are {view.size:,} characters, more than an approver can be shown "
            f"({blocks.SHOWABLE_LIMIT:,})"
        )
    if masked.needs_exact_view and not view.inline:
        return "its arguments hold secrets and are too long for the private view of exactly what runs"
    return None


class ApprovalActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        slack: SlackActivities,
        keyring: KeyRing | None = None,
    ) -> None:
        self._sessions = sessions
        self._slack = slack
        self._keyring = keyring  # seals the exact arguments in the record

    @activity.defn(name="approvals.request")
    async def request(self, request: ApprovalRequest) -> ApprovalPosted:
        """Show the step in full, record the pending approval, then post the Block Kit message in
        the task's thread. A message Slack refuses for good (channel gone) leaves the approval
        pending without buttons: it can still be decided from App Home, or it expires."""
        view = blocks.plan_view(request.arguments)
        masked = masking(request.arguments)
        why = _unshowable(view, masked)
        if why is not None:
            return await self._refuse(request, why)
        attachment: blocks.Attachment | None = None
        if not view.inline:
            attachment, problem = await self._attach_arguments(request)
            if problem is not None:
                return await self._refuse(request, problem)
        workspace_id = uuid.UUID(request.workspace_id)
        details = self._details(request, workspace_id, masked, attachment)
        approval_id = await self._record(request, workspace_id, details)
        ts = await self._post(request, approval_id, attachment, masked)
        if ts is None:
            return ApprovalPosted(approval_id=str(approval_id), message_ts=None)
        async with tenant_transaction(self._sessions, workspace_id) as session:
            row = await set_approval_message(
                session=session,
                workspace_id=workspace_id,
                approval_id=approval_id,
                channel=request.slack_channel_id,
                ts=ts,
            )
            # Settled while the message was being posted (the task was cancelled): the workflow
            # never learns this ts, so the decision is shown here, in place of the buttons.
            late = None
            if row is not None and row.status != "pending":
                late = await settled_from_record(session, row, request.slack_channel_id)
        if late is not None:
            await self._show_decision(decided_update(late, row), workspace_id, approval_id)
        return ApprovalPosted(approval_id=str(approval_id), message_ts=ts)

    async def _attach_arguments(self, request: ApprovalRequest) -> tuple[blocks.Attachment, str | None]:
        """The arguments too long for the message, as a file in the thread; why not, if not."""
        document = blocks.arguments_document(request.tool, request.arguments)
        attachment = blocks.Attachment(
            name=f"approval-{request.approval_key[:10]}-arguments.txt",
            sha256=blocks.arguments_digest({"document": document}),
            size=len(document),
        )
        return attachment, await self._attach(request, attachment, document)

    def _details(
        self,
        request: ApprovalRequest,
        workspace_id: uuid.UUID,
        masked: Masking,
        attachment: blocks.Attachment | None,
    ) -> dict[str, Any]:
        """What the record keeps: the arguments masked, their digest, sealed, and why asked."""
        details: dict[str, Any] = {
            **request.details,
            "tool": request.tool,
            "arguments": redacted_arguments(request.arguments),
            "arguments_sha256": blocks.arguments_digest(request.arguments),
            "secrets_masked": masked.secrets,
            "masked_faithful": masked.faithful,
            **sealed_arguments(self._keyring, workspace_id, request.approval_id, request.arguments),
            "because": request.because,
            "reason": redact_secrets(request.reason)[: blocks.REASON_LIMIT],
        }
        if attachment is not None:
            details["attachment"] = {
                "name": attachment.name,
                "sha256": attachment.sha256,
                "size": attachment.size,
            }
        return details

    async def _post(
        self,
        request: ApprovalRequest,
        approval_id: uuid.UUID,
        attachment: blocks.Attachment | None,
        masked: Masking,
    ) -> str | None:
        """Post the approval message in the task's thread; its ts, None when Slack refused it for good."""
        message = blocks.approval_message(
            workflow_id=request.workflow_id,
            approval_id=str(approval_id),
            tool=request.tool,
            arguments=request.arguments,
            attachment=attachment,
            risk=request.risk_level,
            because=request.because,
            reason=request.reason,
            requester=request.requester_slack_id,
            approvers=request.approver_slack_ids,
            expires_at=request.expires_at,
            masked=masked,
            owner_only=request.owner_only,
            subtask=request.subtask,
        )
        try:
            posted = await self._slack.post_message(
                PostMessageRequest(
                    channel=request.slack_channel_id,
                    text=f"Approval needed: {escape_mrkdwn(redact_secrets(request.summary))}"
                    + (f" ({escape_mrkdwn(redact_secrets(request.subtask))})" if request.subtask else ""),
                    idempotency_key=request.approval_key,
                    thread_ts=request.thread_ts or None,
                    format=False,
                    blocks=message,
                    builder="approval_message",
                )
            )
        except ApplicationError as exc:
            if exc.non_retryable or exc.type == ErrorType.SLACK_NOT_CONFIGURED:
                activity.logger.warning(
                    "approval message could not be posted", extra={"error_type": exc.type}
                )
                return None
            raise
        return posted.ts

    async def _record(
        self, request: ApprovalRequest, workspace_id: uuid.UUID, details: dict[str, Any]
    ) -> uuid.UUID:
        """The pending ``approvals`` row and an ``approval.requested`` audit entry, once."""
        try:
            async with tenant_transaction(self._sessions, workspace_id) as session:
                task = await get_task(
                    session=session, workspace_id=workspace_id, workflow_id=request.workflow_id
                )
                if task is None:
                    raise ApplicationError(
                        "no task row for this approval", type="DatabaseRejected", non_retryable=True
                    )
                approver = None
                if request.approver_slack_ids:
                    approver = await get_user(
                        session=session,
                        workspace_id=workspace_id,
                        slack_user_id=request.approver_slack_ids[0],
                    )
                approval_id = await create_approval(
                    session=session,
                    workspace_id=workspace_id,
                    task_id=task.id,
                    workflow_id=request.workflow_id,
                    idempotency_key=request.approval_key,
                    action_type=_STEP_ACTIONS.get(request.tool) or registry.TOOLS.audit_action(request.tool),
                    risk_level=request.risk_level,
                    summary=redact_secrets(request.summary),
                    expires_at=datetime.fromisoformat(request.expires_at),
                    requester_id=uuid.UUID(request.requester_id) if request.requester_id else None,
                    approver_id=approver.id if approver else None,  # none designated: any admin
                    details=details,
                    approval_id=uuid.UUID(request.approval_id),
                )
                await self._audit(session, request, workspace_id, "approval.requested", task.id, details)
        except _PERMANENT as exc:
            raise _rejected(exc) from None
        return approval_id

    async def _audit(
        self,
        session: AsyncSession,
        request: ApprovalRequest,
        workspace_id: uuid.UUID,
        action: str,
        task_id: uuid.UUID | None,
        details: dict[str, Any],
    ) -> None:
        await record_audit(
            session=session,
            workspace_id=workspace_id,
            idempotency_key=idempotency_key(request.workflow_id, "approval", request.approval_id, action),
            occurred_at=datetime.fromisoformat(request.requested_at or request.expires_at),
            actor_type="lucy",
            action=action,
            entity_type="approval",
            entity_id=request.approval_id,
            task_id=task_id,
            workflow_id=request.workflow_id,
            after_state={"risk": request.risk_level, "tool": request.tool},
            details=details,
        )

    async def _refuse(self, request: ApprovalRequest, why: str) -> ApprovalPosted:
        """Nobody is asked: audit it and tell the workflow the step does not run."""
        activity.logger.warning(
            "approval not asked: the step cannot be shown in full", extra={"tool": request.tool}
        )
        workspace_id = uuid.UUID(request.workspace_id)
        details = {
            "tool": request.tool,
            "why": why,
            "arguments_sha256": blocks.arguments_digest(request.arguments),
            "arguments_size": sum(len(blocks.argument_text(v)) for v in request.arguments.values()),
        }
        try:
            async with tenant_transaction(self._sessions, workspace_id) as session:
                task = await get_task(
                    session=session, workspace_id=workspace_id, workflow_id=request.workflow_id
                )
                await self._audit(
                    session, request, workspace_id, "approval.refused", task.id if task else None, details
                )
        except _PERMANENT as exc:
            raise _rejected(exc) from None
        return ApprovalPosted(approval_id=request.approval_id, message_ts=None, refused=why)

    async def _attach(
        self, request: ApprovalRequest, attachment: blocks.Attachment, document: str
    ) -> str | None:
        """Share the arguments as a file in the thread (once); None when it is there, otherwise
        why it could not be shared."""
        client = self._slack.client
        if client is None:
            return "Slack is not configured, so the arguments cannot be attached"
        if activity.info().attempt > 1 and await self._already_attached(request, attachment.name):
            return None
        try:
            await client.files_upload_v2(
                filename=attachment.name,
                content=document.encode(),
                title=f"Arguments of {request.tool} waiting for approval",
                channel=request.slack_channel_id,
                thread_ts=request.thread_ts or None,
            )
        except SlackApiError as exc:
            error = slack_error(exc, "file upload")
            if error.non_retryable:
                code = error.details[0] if error.details else "error"
                return f"Slack refused the file with the arguments ({code})"
            raise error from None
        except (SlackRequestError, aiohttp.ClientError, TimeoutError) as exc:
            raise ApplicationError(
                f"Slack file upload failed ({exc.__class__.__name__})", type=ErrorType.SLACK_RETRYABLE
            ) from None
        return None

    async def _already_attached(self, request: ApprovalRequest, name: str) -> bool:
        client = self._slack.client
        assert client is not None
        cursor: str | None = None
        for _ in range(_LOOKUP_PAGES):
            try:
                response = await client.conversations_replies(
                    channel=request.slack_channel_id, ts=request.thread_ts, limit=200, cursor=cursor
                )
            except SlackApiError as exc:
                raise slack_error(exc, "conversations.replies") from None
            for message in response.get("messages") or []:
                if any(f.get("name") == name for f in message.get("files") or []):
                    return True
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return False
        return False

    @activity.defn(name="approvals.settle")
    async def settle(self, settled: ApprovalSettled) -> bool:
        """Record the decision (``approvals`` + ``audit_log``, once) and show it in place of the
        buttons, keeping what was decided on in full. Returns whether this call changed the
        row (False on a retry)."""
        workspace_id = uuid.UUID(settled.workspace_id)
        async with tenant_transaction(self._sessions, workspace_id) as session:
            changed, row = await record_decision(session, settled)
        await self._show_decision(decided_update(settled, row), workspace_id, uuid.UUID(settled.approval_id))
        return changed

    async def _show_decision(
        self, update: UpdateMessageRequest | None, workspace_id: uuid.UUID, approval_id: uuid.UUID
    ) -> None:
        """Rewrite the message to show the decision, then note it (a retry rewrites it no more)."""
        if update is None:
            return
        await self._slack.update_message(update)
        async with tenant_transaction(self._sessions, workspace_id) as session:
            await mark_decision_shown(
                session=session, workspace_id=workspace_id, approval_id=approval_id, ts=update.ts
            )
