"""Starting task workflows from Slack: tenant upsert, protection, then a durable start.

This is the hand-off ingress owes Slack: the caller acknowledges only after Temporal has
accepted the start. In one database transaction ingress resolves the tenant, *claims* the
task row (keyed by the workflow id), and only for a new claim takes a token from the user's
and the workspace's rate-limit buckets and counts the action against the monthly quota. A
redelivered event finds its claim and is never counted twice; the workflow id and the
REJECT_DUPLICATE policy make sure it never starts a second task either.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from capabilities.approvals.contracts import ThreadReply
from capabilities.budgets.repository import blocked
from capabilities.budgets.rules import defaults_from, stopped_sentence
from capabilities.email.contracts import EmailOrigin
from capabilities.task.contracts.task import TaskInput
from capabilities.task.repository import IngressClaim, ingress_claim, latest_thread_task, record_task_finished
from lucy import tracing
from lucy.contracts.ids import (
    TASK_WORKFLOW_NAME,
    UPDATE_ADD_REPLY,
    TaskStatus,
    task_search_attributes,
    task_workflow_id,
)
from lucy.contracts.priority import task_priority
from lucy.db.repositories.tenants import WorkspaceRemoved, upsert_workspace
from lucy.logging import get_logger
from lucy.metrics import BUDGET_REFUSALS, WORKFLOW_STARTS
from lucy.settings import BudgetSettings, LimitSettings

log = get_logger(__name__)

_CHANNEL_TYPES = {"channel": "public", "group": "private", "im": "im", "mpim": "mpim"}


@dataclass(frozen=True)
class SlackMessage:
    """The part of a Slack message (or slash command) a task needs."""

    team_id: str
    user_id: str
    channel_id: str
    channel_type: str
    ts: str
    thread_ts: str | None
    text: str
    source: str
    workflow_id: str | None = None  # default: derived from (team, channel, ts)
    display_name: str | None = None  # from users.info, when known
    role: str | None = None
    timezone: str | None = None
    with_thread_history: bool = False  # a follow-up in a thread: give the task the conversation
    email: EmailOrigin | None = None  # a task from email: the message its answer replies to


@dataclass(frozen=True)
class StartOutcome:
    workflow_id: str
    started: bool  # False: a redelivery (already started) or refused
    refused: str | None = None  # a friendly sentence for the user when limits refused the task


def strip_bot_mention(text: str, bot_user_id: str | None) -> str:
    """Remove mentions of the bot itself from the request text."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text)
    return " ".join(text.split())


WORKSPACE_REMOVED = (
    "Lucy has been removed from this workspace, so I can't take requests here. "
    "A workspace admin can ask to have it restored."
)


def _wait_words(seconds: float) -> str:
    return "a few seconds" if seconds < 10 else f"about {max(1, round(seconds / 60))} minute(s)"


def _refusal_sentence(claim: IngressClaim) -> str | None:
    """A friendly sentence for a claim the limits refused; None when it may run."""
    if claim.refused == "user_rate":
        return (
            "You're sending requests faster than I can take them. "
            f"Please try again in {_wait_words(claim.retry_after_s)}."
        )
    if claim.refused == "workspace_rate":
        return (
            "Your workspace is sending me a lot of requests right now. "
            f"Please try again in {_wait_words(claim.retry_after_s)}."
        )
    if claim.refused == "quota":
        return (
            f"Your workspace has used all {claim.quota_limit} of this month's Lucy tasks. "
            "An admin can raise the limit; it resets at the start of next month."
        )
    return None


class TaskStarter:
    """Resolves the tenant, applies limits, and starts ``LucyTaskWorkflow`` for one message."""

    def __init__(
        self,
        *,
        temporal: Client,
        sessions: async_sessionmaker[AsyncSession],
        task_queue: str,
        limits: LimitSettings | None = None,
        budgets: BudgetSettings | None = None,
    ) -> None:
        self._temporal = temporal
        self._sessions = sessions
        self._task_queue = task_queue
        self._limits = limits or LimitSettings()
        self._budgets = defaults_from(budgets or BudgetSettings())

    async def start(self, message: SlackMessage) -> StartOutcome:
        """Upsert the tenant, claim and check limits, then start the task workflow (idempotent)."""
        workflow_id = message.workflow_id or task_workflow_id(message.team_id, message.channel_id, message.ts)
        tracing.tag(workspace=message.team_id, task=workflow_id)
        structlog.contextvars.bind_contextvars(workflow_id=workflow_id)
        thread_ts = message.thread_ts or message.ts
        async with self._sessions.begin() as session:
            claim = await self._claim(session, message, workflow_id, thread_ts)
            if claim.workspace_id is None:  # removed from Lucy: nothing is recorded in it
                WORKFLOW_STARTS.labels("refused").inc()
                return StartOutcome(workflow_id=workflow_id, started=False, refused=WORKSPACE_REMOVED)
            structlog.contextvars.bind_contextvars(workspace_id=str(claim.workspace_id))
            if not claim.claimed and claim.prior_error == "Refused":
                log.info("redelivery of a refused request ignored", workflow_id=workflow_id)
                return StartOutcome(workflow_id=workflow_id, started=False)
            refused = await self._refusal(session, claim, claim.workspace_id, workflow_id)
        if refused is not None:
            WORKFLOW_STARTS.labels("refused").inc()
            log.info("task refused by limits", workflow_id=workflow_id, workspace_id=str(claim.workspace_id))
            return StartOutcome(workflow_id=workflow_id, started=False, refused=refused)
        return await self._start_workflow(message, claim, workflow_id, thread_ts)

    async def _claim(
        self, session: AsyncSession, message: SlackMessage, workflow_id: str, thread_ts: str
    ) -> IngressClaim:
        """Upsert the tenant, user and channel, record the request and take from its rate limits."""
        limits = self._limits
        return await ingress_claim(
            session=session,
            slack_team_id=message.team_id,
            slack_user_id=message.user_id,
            slack_channel_id=message.channel_id,
            channel_type=_CHANNEL_TYPES.get(message.channel_type, "public"),
            workflow_id=workflow_id,
            source=message.source,
            request_text=message.text,
            slack_thread_ts=thread_ts or None,
            user_capacity=limits.rate_limit_user_per_minute,
            user_refill_per_second=limits.rate_limit_user_per_minute / 60,
            workspace_capacity=limits.rate_limit_workspace_per_minute,
            workspace_refill_per_second=limits.rate_limit_workspace_per_minute / 60,
            month=datetime.now(UTC).date(),
            display_name=message.display_name,
            role=message.role,
            timezone=message.timezone,
        )

    async def _refusal(
        self, session: AsyncSession, claim: IngressClaim, workspace_id: uuid.UUID, workflow_id: str
    ) -> str | None:
        """Why the limits or a used-up budget refuse the claimed request (the refusal is recorded
        as the task's end), or None when it may run."""
        refused = _refusal_sentence(claim)
        if refused is None and claim.claimed:  # a budget used up: refused here, cheaply
            budget = await blocked(
                session=session,
                workspace_id=workspace_id,
                user_id=claim.user_id,
                now=datetime.now(UTC),
                defaults=self._budgets,
            )
            if budget is not None:
                BUDGET_REFUSALS.labels("ingress").inc()
                refused = f"I can't take this request: {stopped_sentence(budget)}"
        if refused is not None:  # keep the record: the request, and why it did not run
            await record_task_finished(
                session=session,
                workspace_id=workspace_id,
                workflow_id=workflow_id,
                status=TaskStatus.CANCELLED.value,
                completed_at=datetime.now(UTC),
                error_type="Refused",
                error_message=refused,
            )
        return refused

    async def _start_workflow(
        self, message: SlackMessage, claim: IngressClaim, workflow_id: str, thread_ts: str
    ) -> StartOutcome:
        """Start the task workflow; a redelivery finds it already started."""
        try:
            await self._temporal.start_workflow(
                TASK_WORKFLOW_NAME,
                _task_input(message, claim, thread_ts),
                id=workflow_id,
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=_search_attributes(message, thread_ts),
                static_summary=f"Slack {message.source} from {message.user_id} in {message.channel_id}",
                priority=task_priority(message.source, message.team_id),
            )
        except WorkflowAlreadyStartedError:
            WORKFLOW_STARTS.labels("duplicate").inc()
            log.info("task already started for this message", workflow_id=workflow_id)
            return StartOutcome(workflow_id=workflow_id, started=False)
        except Exception:
            WORKFLOW_STARTS.labels("error").inc()
            raise
        WORKFLOW_STARTS.labels("started").inc()
        log.info("task started", workflow_id=workflow_id, workspace_id=str(claim.workspace_id))
        return StartOutcome(workflow_id=workflow_id, started=True)

    async def route_reply(
        self, *, team_id: str, channel_id: str, thread_ts: str, user_id: str, text: str, ts: str
    ) -> str | None:
        """A message in a thread: ``"delivered"`` when it reached the thread's task (the
        ``add_reply`` update, which the task refuses once its answer is going out),
        ``"followup"`` when that task is not running (start a new task with the thread as
        context), None when the thread has no Lucy task. Postgres says which task the thread
        holds; Temporal says whether it is running."""
        async with self._sessions.begin() as session:
            try:
                workspace_id = await upsert_workspace(session=session, slack_team_id=team_id)
            except WorkspaceRemoved:
                return None
            task = await latest_thread_task(
                session=session,
                workspace_id=workspace_id,
                slack_channel_id=channel_id,
                slack_thread_ts=thread_ts,
            )
        if task is None:
            return None
        try:
            await self._temporal.get_workflow_handle(task.workflow_id).execute_update(
                UPDATE_ADD_REPLY, ThreadReply(slack_user_id=user_id, text=text, ts=ts), result_type=bool
            )
        except (RPCError, WorkflowUpdateFailedError) as exc:  # ended, or its answer is going out
            log.info(
                "thread's task is not taking replies: the reply starts a follow-up",
                workflow_id=task.workflow_id,
                error=exc.__class__.__name__,
            )
            return "followup"
        log.info("reply delivered to the running task", workflow_id=task.workflow_id)
        return "delivered"


def _task_input(message: SlackMessage, claim: IngressClaim, thread_ts: str) -> TaskInput:
    """The workflow's input: the claimed ids and the message."""
    return TaskInput(
        workspace_id=str(claim.workspace_id),
        user_id=str(claim.user_id),
        channel_id=str(claim.channel_id),
        slack_team_id=message.team_id,
        slack_user_id=message.user_id,
        slack_channel_id=message.channel_id,
        thread_ts=thread_ts,
        message_ts=message.ts,
        text=message.text,
        source=message.source,
        with_thread_history=message.with_thread_history,
        email=message.email,
    )


def _search_attributes(message: SlackMessage, thread_ts: str) -> TypedSearchAttributes:
    """The task's search attributes at its start (status ``created``)."""
    return task_search_attributes(
        team=message.team_id,
        user=message.user_id,
        channel=message.channel_id,
        thread=thread_ts,
        source=message.source,
    )
