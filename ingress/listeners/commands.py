"""The ``/lucy`` slash command.

``/lucy <request>`` starts a task in the channel; ``/lucy tasks``, ``/lucy status [task]``,
``/lucy approvals`` and ``/lucy help`` answer only the caller (ephemeral). Unknown words are a
request, and an empty command gets help, never an error.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError

from ingress.claims import refusal_text, signed_cancel
from ingress.listeners.events import DEACTIVATED
from ingress.listeners.home import STATUS_ICON
from ingress.tasks import WORKSPACE_REMOVED, SlackMessage, TaskStarter
from lucy.contracts import TaskSource, command_workflow_id
from lucy.db import repositories as repo
from lucy.db.models import ACTIVE_TASK_STATUSES
from lucy.roles import is_admin
from lucy.signing import ClaimSigner
from lucy.slack_text import escape_mrkdwn

HELP = (
    "*Lucy* — your AI coworker. Every request is a durable task.\n"
    "• `/lucy <request>` — ask me something; I answer in this channel\n"
    "• `/lucy tasks` — your recent tasks\n"
    "• `/lucy status [task id]` — where a task is (default: your latest)\n"
    "• `/lucy cancel [task id]` — stop a task (default: your latest running one)\n"
    "• `/lucy approvals` — approvals waiting for you\n"
    "• `/lucy help` — this message\n"
    "You can also @mention me in a channel or send me a DM."
)


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


async def _for_user(
    sessions: async_sessionmaker[AsyncSession],
    team_id: str,
    slack_user: str,
    fetch: Callable[[AsyncSession, uuid.UUID, uuid.UUID], Awaitable[list[Any]]],
) -> list[Any]:
    """Run ``fetch(session, workspace_id, user_id)`` in the caller's tenant; [] for an unknown user."""
    async with sessions.begin() as session:
        workspace_id = await repo.upsert_workspace(session=session, slack_team_id=team_id)
        user = await repo.get_user(session=session, workspace_id=workspace_id, slack_user_id=slack_user)
        return await fetch(session, workspace_id, user.id) if user else []


async def _my_tasks(sessions: async_sessionmaker[AsyncSession], team_id: str, slack_user: str) -> str:
    tasks = await _for_user(
        sessions,
        team_id,
        slack_user,
        lambda s, w, u: repo.list_user_tasks(session=s, workspace_id=w, requester_id=u),
    )
    if not tasks:
        return "You have no tasks yet. Try `/lucy <request>`."
    lines = ["*Your recent tasks*"]
    for t in tasks:
        request = (t.request_text or "").replace("\n", " ")
        request = request[:60] + ("…" if len(request) > 60 else "")
        lines.append(
            f"{STATUS_ICON.get(t.status, '')} `{t.workflow_id}` {t.status} — {escape_mrkdwn(request)}"
        )
    return "\n".join(lines)


async def _my_approvals(
    sessions: async_sessionmaker[AsyncSession], team_id: str, slack_user: str, *, role: str | None
) -> str:
    admin = is_admin(role)
    async with sessions.begin() as session:
        workspace_id = await repo.upsert_workspace(session=session, slack_team_id=team_id)
        # An admin who never asked Lucy anything still approves: record them (with their role).
        user_id = await repo.upsert_user(
            session=session, workspace_id=workspace_id, slack_user_id=slack_user, role=role
        )
        pending = await repo.list_pending_approvals(
            session=session, workspace_id=workspace_id, approver_id=user_id, include_unassigned=admin
        )
    if not pending:
        return "Nothing is waiting for your approval."
    lines = ["*Waiting for your approval*"]
    for a in pending:
        expires = f"<!date^{int(a.expires_at.timestamp())}^{{date_short_pretty}} {{time}}|soon>"
        lines.append(
            f"• {a.risk_level} — {escape_mrkdwn(a.summary)} "
            f"(expires {expires}; decide in its thread or in my Home tab)"
        )
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


async def _status(
    temporal: Client,
    sessions: async_sessionmaker[AsyncSession],
    team_id: str,
    slack_user: str,
    task: str,
    *,
    role: str | None,
) -> str:
    """Where a task is: the caller's own (their latest by default), or any for an admin."""
    workflow_id = task.strip()
    async with sessions.begin() as session:
        workspace_id = await repo.upsert_workspace(session=session, slack_team_id=team_id)
        user = await repo.get_user(session=session, workspace_id=workspace_id, slack_user_id=slack_user)
        if workflow_id:
            row = await repo.get_task(session=session, workspace_id=workspace_id, workflow_id=workflow_id)
        else:
            latest = (
                await repo.list_user_tasks(
                    session=session, workspace_id=workspace_id, requester_id=user.id, limit=1
                )
                if user
                else []
            )
            if not latest:
                return "You have no tasks yet."
            row = latest[0]
    mine = row is not None and user is not None and row.requester_id == user.id
    if row is None or not (mine or is_admin(role)):
        # The same answer whether the task does not exist or is someone else's.
        return f"I can't find a task `{escape_mrkdwn(workflow_id)}` of yours in this workspace."
    workflow_id = row.workflow_id
    handle = temporal.get_workflow_handle(workflow_id)
    try:
        desc = await handle.describe()
    except RPCError:
        return f"I can't find task `{workflow_id}`."
    if desc.status == WorkflowExecutionStatus.RUNNING:
        state = await handle.query("status")
        icon = STATUS_ICON.get(state["status"], "")
        line = f"{icon} `{workflow_id}` is {state['status']}: {escape_mrkdwn(state['step'])}"
        if state.get("elapsed_seconds") is not None:
            line += f" ({_duration(float(state['elapsed_seconds']))} so far, {state.get('steps', 0)} step(s))"
        pending = state.get("pending_approval")
        if pending:
            expires = int(datetime.fromisoformat(pending["expires_at"]).timestamp())
            who = " or ".join(f"<@{a}>" for a in pending.get("approvers") or []) or "a workspace admin"
            line += (
                f"\nWaiting for {who} to approve `{escape_mrkdwn(pending['summary'])}` "
                f"({pending['risk']} risk), "
                f"until <!date^{expires}^{{date_short_pretty}} {{time}}|then>."
            )
        return line + "."
    attrs = {p.key.name: p.value for p in desc.typed_search_attributes}
    status = str(attrs.get("LucyStatus", desc.status.name.lower() if desc.status else "unknown"))
    return f"{STATUS_ICON.get(status, '')} `{workflow_id}` is {status}."


async def _cancel(
    temporal: Client,
    sessions: async_sessionmaker[AsyncSession],
    signer: ClaimSigner,
    team_id: str,
    slack_user: str,
    task: str,
) -> str:
    """Ask a task to stop, through the same ``cancel`` update as the Cancel button: the task
    decides (the requester or a workspace admin, as the worker verifies them)."""
    workflow_id = task.strip()
    if not workflow_id:
        async with sessions.begin() as session:
            workspace_id = await repo.upsert_workspace(session=session, slack_team_id=team_id)
            user = await repo.get_user(session=session, workspace_id=workspace_id, slack_user_id=slack_user)
            active = [
                t
                for t in (
                    await repo.list_user_tasks(
                        session=session, workspace_id=workspace_id, requester_id=user.id
                    )
                    if user
                    else []
                )
                if t.status in ACTIVE_TASK_STATUSES
            ]
        if not active:
            return "You have no running task to cancel."
        workflow_id = active[0].workflow_id
    if not workflow_id.startswith(f"lucy-task-{team_id}-"):
        return f"I can't find task `{escape_mrkdwn(workflow_id)}` in this workspace."
    request = signed_cancel(signer, workflow_id=workflow_id, user=slack_user, team=team_id)
    try:
        await temporal.get_workflow_handle(workflow_id).execute_update("cancel", request, result_type=str)
    except WorkflowUpdateFailedError as err:
        return refusal_text(err)
    except RPCError:
        return f"`{escape_mrkdwn(workflow_id)}` is not running (it has finished, or there is no such task)."
    return f"Cancelling `{workflow_id}`. I'll confirm in its thread."


async def on_lucy(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """``/lucy ...``: subcommands answer the caller; anything else becomes a task."""
    try:
        await _lucy(ack, command, context)
    except repo.WorkspaceRemoved:
        await ack(_ephemeral(WORKSPACE_REMOVED))


async def _lucy(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    text = " ".join(str(command.get("text") or "").split())
    word, _, rest = text.partition(" ")
    team, user, channel = command.get("team_id"), command.get("user_id"), command.get("channel_id")
    if not (team and user and channel):
        await ack(_ephemeral("Sorry, that command arrived incomplete. Please try again."))
        return
    sessions: async_sessionmaker[AsyncSession] = context["lucy_sessions"]
    sub = word.lower()
    if sub in ("", "help"):
        await ack(_ephemeral(HELP))
    elif sub == "tasks" and not rest:
        await ack(_ephemeral(await _my_tasks(sessions, team, user)))
    elif sub == "approvals" and not rest:
        profile = await context["lucy_directory"].get(context.client, team, user)
        await ack(
            _ephemeral(await _my_approvals(sessions, team, user, role=profile.role if profile else None))
        )
    elif sub == "cancel":
        signer = context["lucy_signer"]
        await ack(_ephemeral(await _cancel(context["lucy_temporal"], sessions, signer, team, user, rest)))
    elif sub == "status":
        profile = await context["lucy_directory"].get(context.client, team, user)
        role = profile.role if profile else None
        await ack(_ephemeral(await _status(context["lucy_temporal"], sessions, team, user, rest, role=role)))
    else:
        profile = await context["lucy_directory"].get(context.client, team, user)
        if profile is not None and profile.deleted:
            await ack(_ephemeral(DEACTIVATED))
            return
        starter: TaskStarter = context["lucy_starter"]
        outcome = await starter.start(
            SlackMessage(
                team_id=team,
                user_id=user,
                channel_id=channel,
                channel_type="im" if str(channel).startswith("D") else "channel",
                ts="",
                thread_ts=None,
                text=text,
                source=TaskSource.COMMAND.value,
                workflow_id=command_workflow_id(
                    team, channel, str(command.get("trigger_id") or uuid.uuid4())
                ),
            )
        )
        if outcome.refused:
            await ack(_ephemeral(outcome.refused))
        else:
            await ack(_ephemeral(f"On it. I'll answer here. (task `{outcome.workflow_id}`)"))


def register(app: AsyncApp) -> None:
    app.command("/lucy")(on_lucy)
