"""Inbound email: an AgentMail ``message.received`` event becomes a task (or reaches one).

The webhook (``POST /webhooks/agentmail``, :mod:`app.ingress.app`) verifies the Svix signature,
then hands the event to :meth:`EmailIngress.handle`. In order:

1. **Shape.** Only ``message.received`` with an inbox, a thread and a message id is work; other
   event types (sent, delivered, ``message.received.spam|blocked|unauthenticated``) and
   malformed payloads are recorded as ``ignored``.
2. **Tenant.** The inbox must be bound to a live workspace (``settings.email_inbox``, found
   through ``lucy_email_inbox_workspace``); mail to an unbound inbox is recorded ``ignored``
   under no workspace.
3. **Record.** The delivery is claimed in ``webhook_deliveries`` by its AgentMail message id:
   a redelivery of a message already handled (or being handled) starts nothing; one that
   failed before is retried, its attempts counted. Status: processing, then completed, failed
   (the webhook answers 500 and AgentMail delivers again) or ignored.
4. **Who.** Forged and automatic mail (:mod:`capabilities.email.auth`) are ``ignored``. Only a
   sender proven by the receiving MX's results is looked up among the members
   (:mod:`capabilities.email.sender`); anyone else is from outside: shown in the notification
   channel, not answered (:mod:`capabilities.email.outside`), unless the workspace accepts outside
   senders (``/lucy settings email-outsiders accept``). App Home counts all three kinds.
5. **Where.** The workspace's notification channel: ``settings.email_channel`` when an admin
   set one, else the first of ``talk-to-lucy``, ``lucy-my-ai``, ``lucy``, ``general`` that
   exists (the original Lucy's order).
6. **Route.** A new email thread is announced in that channel and starts ``LucyTaskWorkflow``
   (source ``email``) in the announcement's thread, its workflow id derived from the AgentMail
   thread id. A later message in the same email thread is shown in that Slack thread and goes
   to the thread's task like a Slack thread reply: the running task gets it (``add_reply``);
   after the task ended it starts a follow-up that reads the thread, unless the email thread
   had ``MAX_THREAD_TASKS`` tasks (each answered by mail) in the last 24 hours: then the mail
   is shown in Slack, not answered, and the Slack thread says so (a loop breaker).

Trust: an email is never the requester's words, a member's included. The task's request is a
sentence Lucy wrote with the mail quoted inside it, marked as information; a task from email
starts with untrusted content in its context and every tool call waits for an approval decided
in Slack. The task's answer goes back by email (``TaskInput.email``): to a member at once, to
anyone else after an approval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from slack_sdk.web.async_client import AsyncWebClient

from capabilities.email import deliveries
from capabilities.email.auth import DEFAULT_TRUSTED_AUTHSERV_IDS
from capabilities.email.message import InboundEmail, parse_event, quoted_request, requester_id
from capabilities.email.outside import SHOWN_TEXT_LIMIT, ignored_senders, notice_blocks, notice_text
from capabilities.email.repository import email_inbox_owner
from capabilities.email.routing import (
    CAPPED_NOTE,
    MAX_THREAD_TASKS,
    announcement,
    notification_channel,
    thread_capped,
)
from capabilities.email.sender import (
    AttachmentLimits,
    Member,
    attachments_note,
    find_member,
    limit_attachments,
    origin,
    outsiders_policy,
)
from capabilities.task.listeners.start import SlackMessage, TaskStarter
from lucy.contracts.ids import TaskSource, email_workflow_id
from lucy.db.repositories.webhooks import NO_WORKSPACE, DeliveryClaim
from lucy.logging import get_logger

log = get_logger(__name__)

MAX_EMAIL_BYTES = 2_000_000  # AgentMail's ``size`` of the message; beyond: ignored, said so


@dataclass(frozen=True)
class EmailOutcome:
    """How one delivery ended: ``started``, ``delivered`` (reached the thread's running task),
    ``followup``, ``duplicate``, ``ignored``, ``refused`` or ``busy`` (another copy is being
    handled right now: the webhook answers 409 so that AgentMail delivers again later)."""

    status: str
    workflow_id: str | None = None
    reason: str | None = None
    ignored: str | None = None  # counted in App Home: automatic, forged or outside


class EmailIngress:
    """Turns AgentMail events into tasks; the same handler serves the webhook and the listener."""

    def __init__(
        self,
        *,
        starter: TaskStarter,
        slack: AsyncWebClient | None,
        sessions: Any,
        attachments: AttachmentLimits | None = None,
        trusted_authserv_ids: frozenset[str] = frozenset(DEFAULT_TRUSTED_AUTHSERV_IDS),
    ) -> None:
        self._starter = starter
        self._slack = slack
        self._sessions = sessions
        self._limits = attachments or AttachmentLimits()
        self._trusted = trusted_authserv_ids

    async def handle(self, document: Any, *, delivery_id: str) -> EmailOutcome:
        """Handle one verified event. Raises when the work could not be done (the delivery is
        then recorded ``failed`` and AgentMail's redelivery retries it)."""
        now = datetime.now(UTC)
        event_type, email, problem = parse_event(document, self._trusted)
        structlog.contextvars.bind_contextvars(email_delivery=delivery_id[:64])
        if email is None:
            await deliveries.record_ignored(
                self._sessions,
                NO_WORKSPACE,
                delivery_id[:255] or "none",
                event_type or None,
                problem or "",
                now,
            )
            log.info("AgentMail event ignored", event_type=event_type[:64], reason=problem)
            return EmailOutcome("ignored", reason=problem)
        async with self._sessions.begin() as session:
            owner = await email_inbox_owner(session=session, inbox_id=email.inbox_id)
        if owner is None:
            reason = "the inbox is not bound to a workspace (/lucy email connect)"
            await deliveries.record_ignored(
                self._sessions, NO_WORKSPACE, email.message_id, event_type, reason, now, email
            )
            log.info("mail to an unbound inbox ignored", inbox_id=email.inbox_id)
            return EmailOutcome("ignored", reason=reason)
        workspace_id, team_id = owner.workspace_id, owner.slack_team_id
        structlog.contextvars.bind_contextvars(workspace_id=str(workspace_id), slack_team_id=team_id)
        claim, settings = await deliveries.claim(self._sessions, workspace_id, email, event_type, now)
        if not claim.claimed and claim.status == "processing":  # another copy is at work now
            log.info("mail is being handled by another delivery: deliver again later")
            return EmailOutcome("busy", reason="another delivery of this message is being handled")
        if not claim.claimed:
            log.info("redelivered mail: nothing new starts", prior_status=claim.status)
            return EmailOutcome("duplicate", workflow_id=claim.payload.get("workflow_id"))
        try:
            outcome = await self._process(email, claim, workspace_id, team_id, settings)
        except Exception as exc:
            await self._finish(workspace_id, claim, "failed", error=exc.__class__.__name__)
            log.warning(
                "mail could not be handled; AgentMail will deliver it again", error=exc.__class__.__name__
            )
            raise
        status = "completed" if outcome.status in ("started", "delivered", "followup") else "ignored"
        payload = {**claim.payload, "outcome": outcome.status}
        if outcome.ignored:
            payload["ignored"] = outcome.ignored
        if outcome.workflow_id:
            payload["workflow_id"] = outcome.workflow_id
        await self._finish(workspace_id, claim, status, error=outcome.reason, payload=payload)
        log.info(
            "mail handled", outcome=outcome.status, workflow_id=outcome.workflow_id, attempt=claim.attempts
        )
        return outcome

    async def _process(
        self,
        email: InboundEmail,
        claim: DeliveryClaim,
        workspace_id: Any,
        team_id: str,
        settings: dict[str, Any],
    ) -> EmailOutcome:
        unanswered = _never_answered(email, settings)
        if unanswered is not None:
            return unanswered
        if self._slack is None:
            raise RuntimeError("Slack is not configured: no bot token")
        # Only a sender proven by an aligned pass is looked up as a member (capabilities.email.auth).
        member = await find_member(self._slack, team_id, email.address) if email.authenticated else None
        if member is None and outsiders_policy(settings) != "accept":
            return await self._show_outside(email, claim, workspace_id, settings)
        earlier = await deliveries.thread_announcement(self._sessions, workspace_id, email.thread_id)
        if earlier is not None and earlier.get("message_id") != email.message_id:
            return await self._reply(email, claim, workspace_id, team_id, earlier, member)
        return await self._start_thread(email, claim, workspace_id, team_id, settings, member)

    async def _start_thread(
        self,
        email: InboundEmail,
        claim: DeliveryClaim,
        workspace_id: Any,
        team_id: str,
        settings: dict[str, Any],
        member: Member | None,
    ) -> EmailOutcome:
        """A new email thread: announced in the notification channel, its task started in the
        announcement's thread."""
        user = member.slack_user_id if member else requester_id(email.address or email.sender)
        channel, ts = await self._announce(email, claim, workspace_id, settings)
        outcome = await self._starter.start(
            SlackMessage(
                team_id=team_id,
                user_id=user,
                channel_id=channel,
                channel_type="channel",
                ts=ts,
                thread_ts=ts,
                text=self._request(email, member, reply=False),
                source=TaskSource.EMAIL.value,
                workflow_id=email_workflow_id(team_id, email.thread_id),
                **self._who(email, member),
            )
        )
        return await self._started(outcome, channel, ts)

    async def _announce(
        self, email: InboundEmail, claim: DeliveryClaim, workspace_id: Any, settings: dict[str, Any]
    ) -> tuple[str, str]:
        """The channel and ts of the new thread's announcement, posted once: a retried delivery
        reuses the one its claim recorded."""
        channel = str(claim.payload.get("slack_channel") or "") or await notification_channel(
            self._slack, settings
        )
        if not channel:
            raise RuntimeError("no notification channel: set one with /lucy settings email-channel")
        ts = str(claim.payload.get("slack_ts") or "")
        if not ts:  # announced once: a retried delivery reuses the announcement
            ts = await self._post(channel, None, announcement(email, self._limits))
            await self._finish(
                workspace_id,
                claim,
                "processing",
                payload={**claim.payload, "slack_channel": channel, "slack_ts": ts},
            )
        return channel, ts

    async def _show_outside(
        self, email: InboundEmail, claim: DeliveryClaim, workspace_id: Any, settings: dict[str, Any]
    ) -> EmailOutcome:
        """Mail from outside under ``email-outsiders ignore``: shown once in the notification
        channel with the members' two buttons (:mod:`capabilities.email.outside`), never answered."""
        if email.address and email.address in ignored_senders(settings):
            return EmailOutcome(
                "ignored", reason="a member chose to ignore this sender (Ignore sender)", ignored="outside"
            )
        log.info(
            "mail from outside shown, not answered", sender_domain=email.address.rpartition("@")[2][:100]
        )
        if not claim.payload.get("notice_ts"):  # shown once: a retried delivery reuses it
            channel = await notification_channel(self._slack, settings)
            if not channel:
                raise RuntimeError("no notification channel: set one with /lucy settings email-channel")
            ts = await self._post(channel, None, notice_text(email), notice_blocks(email))
            shown = {"notice_channel": channel, "notice_ts": ts, "shown_text": email.text[:SHOWN_TEXT_LIMIT]}
            await self._finish(workspace_id, claim, "processing", payload={**claim.payload, **shown})
        return EmailOutcome(
            "ignored",
            reason="the sender is not a member of this workspace: shown in Slack, not answered "
            "(/lucy settings email-outsiders)",
            ignored="outside",
        )

    async def _reply(
        self,
        email: InboundEmail,
        claim: DeliveryClaim,
        workspace_id: Any,
        team_id: str,
        earlier: dict[str, Any],
        member: Member | None,
    ) -> EmailOutcome:
        channel, thread = str(earlier["slack_channel"]), str(earlier["slack_ts"])
        if not claim.payload.get("slack_ts"):
            shown = await self._post(channel, thread, announcement(email, self._limits, reply=True))
            await self._finish(
                workspace_id,
                claim,
                "processing",
                payload={**claim.payload, "reply": "true", "slack_channel": channel, "slack_ts": shown},
            )
        user = member.slack_user_id if member else requester_id(email.address or email.sender)
        text = self._request(email, member, reply=True)
        routed = await self._starter.route_reply(
            team_id=team_id,
            channel_id=channel,
            thread_ts=thread,
            user_id=user,
            text=text,
            ts=email.message_id,
        )
        if routed == "delivered":
            return EmailOutcome("delivered", workflow_id=email_workflow_id(team_id, email.thread_id))
        if await thread_capped(self._sessions, workspace_id, email):  # a loop with an auto-responder?
            if not claim.payload.get("capped"):
                await self._post(channel, thread, CAPPED_NOTE)
                await self._finish(
                    workspace_id, claim, "processing", payload={**claim.payload, "capped": "1"}
                )
            return EmailOutcome("ignored", reason=f"the email thread had {MAX_THREAD_TASKS} answers in 24 h")
        outcome = await self._starter.start(
            SlackMessage(
                team_id=team_id,
                user_id=user,
                channel_id=channel,
                channel_type="channel",
                ts=str(claim.payload.get("slack_ts") or thread),
                thread_ts=thread,
                text=text,
                source=TaskSource.EMAIL.value,
                workflow_id=email_workflow_id(team_id, email.thread_id, email.message_id),
                with_thread_history=True,
                **self._who(email, member),
            )
        )
        result = await self._started(outcome, channel, thread)
        return EmailOutcome("followup", result.workflow_id) if result.status == "started" else result

    def _request(self, email: InboundEmail, member: Member | None, *, reply: bool) -> str:
        note = attachments_note(limit_attachments(email.files, self._limits))
        return quoted_request(
            email, reply=reply, member=member.slack_user_id if member else None, attached=note
        )

    def _who(self, email: InboundEmail, member: Member | None) -> dict[str, Any]:
        """The task's requester (a member, or the outside sender with a guest's role) and the
        message its answer replies to."""
        files = limit_attachments(email.files, self._limits)
        if member is not None:
            name, role = member.display_name, member.role
        else:
            name, role = (email.address or email.sender)[:80] or None, "guest"  # never a display name
        return {"display_name": name, "role": role, "email": origin(email, member, files)}

    async def _started(self, outcome: Any, channel: str, thread: str) -> EmailOutcome:
        if outcome.refused:
            await self._post(channel, thread, outcome.refused)
            return EmailOutcome("refused", outcome.workflow_id, reason=outcome.refused)
        return EmailOutcome("started", outcome.workflow_id)

    async def _post(self, channel: str, thread_ts: str | None, text: str, blocks: Any = None) -> str:
        assert self._slack is not None
        response = await self._slack.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=text,
            blocks=blocks,
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(response["ts"])

    async def _finish(
        self,
        workspace_id: Any,
        claim: DeliveryClaim,
        status: str,
        *,
        error: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        await deliveries.finish(self._sessions, workspace_id, claim, status, error=error, payload=payload)


def _never_answered(email: InboundEmail, settings: dict[str, Any]) -> EmailOutcome | None:
    """Why a mail is ignored before anyone is looked up (too large, from Lucy's own inbox,
    forged, automatic), or None."""
    if email.size > MAX_EMAIL_BYTES:
        return EmailOutcome("ignored", reason=f"the mail is larger than {MAX_EMAIL_BYTES} bytes")
    inbox = str(settings.get("email_inbox") or "").lower()
    if email.address and email.address == inbox:
        return EmailOutcome("ignored", reason="mail from Lucy's own inbox")
    if email.spoofed:
        log.warning("mail with a forged sender ignored", reason=email.spoofed)
        return EmailOutcome(
            "ignored", reason=f"the sender could not be authenticated: {email.spoofed}", ignored="forged"
        )
    if email.automatic:  # an auto-responder answering Lucy would start a mail loop
        log.info("automatic mail ignored", reason=email.automatic)
        return EmailOutcome(
            "ignored", reason=f"{email.automatic}: automatic mail is never answered", ignored="automatic"
        )
    return None
