"""Starting task workflows from Slack messages: tenant upsert, then a durable start.

This is the hand-off ingress owes Slack: the caller acknowledges only after Temporal has
accepted the start. The workflow id is derived from the message, and the id reuse policy
rejects duplicates, so a redelivered event can never start a second task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from lucy.contracts import (
    SA_CHANNEL,
    SA_SOURCE,
    SA_STATUS,
    SA_THREAD,
    SA_USER,
    SA_WORKSPACE,
    TASK_WORKFLOW_NAME,
    TaskInput,
    TaskStatus,
    task_workflow_id,
)
from lucy.db import repositories as repo
from lucy.logging import get_logger

log = get_logger(__name__)

_CHANNEL_TYPES = {"channel": "public", "group": "private", "im": "im", "mpim": "mpim"}


@dataclass(frozen=True)
class SlackMessage:
    """The part of a Slack message event a task needs."""

    team_id: str
    user_id: str
    channel_id: str
    channel_type: str
    ts: str
    thread_ts: str | None
    text: str
    source: str


@dataclass(frozen=True)
class StartOutcome:
    workflow_id: str
    started: bool  # False: the workflow already existed (a redelivery)


def strip_bot_mention(text: str, bot_user_id: str | None) -> str:
    """Remove mentions of the bot itself from the request text."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text)
    return " ".join(text.split())


class TaskStarter:
    """Resolves the tenant and starts ``LucyTaskWorkflow`` for one message."""

    def __init__(
        self, *, temporal: Client, sessions: async_sessionmaker[AsyncSession], task_queue: str
    ) -> None:
        self._temporal = temporal
        self._sessions = sessions
        self._task_queue = task_queue

    async def start(self, message: SlackMessage) -> StartOutcome:
        """Upsert workspace, user and channel, then start the task workflow (idempotent)."""
        workflow_id = task_workflow_id(message.team_id, message.channel_id, message.ts)
        async with self._sessions.begin() as session:
            workspace_id = await repo.upsert_workspace(session=session, slack_team_id=message.team_id)
            user_id = await repo.upsert_user(
                session=session, workspace_id=workspace_id, slack_user_id=message.user_id
            )
            channel_id = await repo.upsert_channel(
                session=session,
                workspace_id=workspace_id,
                slack_channel_id=message.channel_id,
                channel_type=_CHANNEL_TYPES.get(message.channel_type, "public"),
            )
        thread_ts = message.thread_ts or message.ts
        task = TaskInput(
            workspace_id=str(workspace_id),
            user_id=str(user_id),
            channel_id=str(channel_id),
            slack_team_id=message.team_id,
            slack_user_id=message.user_id,
            slack_channel_id=message.channel_id,
            thread_ts=thread_ts,
            message_ts=message.ts,
            text=message.text,
            source=message.source,
        )
        attributes = TypedSearchAttributes(
            [
                SearchAttributePair(SA_WORKSPACE, message.team_id),
                SearchAttributePair(SA_USER, message.user_id),
                SearchAttributePair(SA_CHANNEL, message.channel_id),
                SearchAttributePair(SA_THREAD, thread_ts),
                SearchAttributePair(SA_SOURCE, message.source),
                SearchAttributePair(SA_STATUS, TaskStatus.CREATED.value),
            ]
        )
        try:
            await self._temporal.start_workflow(
                TASK_WORKFLOW_NAME,
                task,
                id=workflow_id,
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=attributes,
                static_summary=f"Slack {message.source} from {message.user_id} in {message.channel_id}",
            )
        except WorkflowAlreadyStartedError:
            log.info("task already started for this message", workflow_id=workflow_id)
            return StartOutcome(workflow_id=workflow_id, started=False)
        log.info("task started", workflow_id=workflow_id, workspace_id=str(workspace_id))
        return StartOutcome(workflow_id=workflow_id, started=True)
