"""The ``/lucy`` slash command.

``/lucy <request>`` starts a task in the channel; ``/lucy tasks``, ``/lucy status [task]``,
``/lucy cancel [task]``, ``/lucy approvals``, ``/lucy schedule ...``, ``/lucy schedules``,
``/lucy monitor ...``, ``/lucy monitors``, ``/lucy budget ...``, ``/lucy usage``,
``/lucy email [connect <inbox>]``, ``/lucy settings email-channel #x``,
``/lucy settings email-outsiders ignore|accept``, ``/lucy webhook create|list|delete``
and ``/lucy help``
answer only the caller (ephemeral). Unknown words are a request, and an
empty command gets help, never an error. What the answers look like is :mod:`lucy.slack.home`'s;
whether a task is running is Temporal's.
"""

from __future__ import annotations

import uuid
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError

from ingress.claims import refusal_text, signed_cancel
from ingress.deps import ListenerDeps, listener_deps
from ingress.directory import UNVERIFIED, requester_role
from ingress.listeners import budgets, monitors, schedules
from ingress.listeners import email as email_commands
from ingress.listeners import triggers as trigger_commands
from ingress.listeners.events import DEACTIVATED
from ingress.listeners.home import pending_lines, task_lines
from ingress.tasks import WORKSPACE_REMOVED, SlackMessage
from lucy.contracts import (
    ACTIVE_TASK_STATUSES,
    QUERY_STATUS,
    UPDATE_CANCEL,
    TaskSource,
    TaskView,
    belongs_to_team,
    command_workflow_id,
)
from lucy.db import repositories as repo
from lucy.roles import is_admin
from lucy.slack.home import HELP, approvals_text, status_text, tasks_text
from lucy.slack.text import escape_mrkdwn


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


async def _my_tasks(deps: ListenerDeps, team: str, slack_user: str) -> str:
    async with deps.sessions.begin() as session:
        workspace_id = await repo.upsert_workspace(session=session, slack_team_id=team)
        user = await repo.get_user(session=session, workspace_id=workspace_id, slack_user_id=slack_user)
        tasks = (
            await repo.list_user_tasks(session=session, workspace_id=workspace_id, requester_id=user.id)
            if user
            else []
        )
    return tasks_text(task_lines(tasks))


async def _my_approvals(deps: ListenerDeps, team: str, slack_user: str, *, role: str | None) -> str:
    async with deps.sessions.begin() as session:
        workspace_id = await repo.upsert_workspace(session=session, slack_team_id=team)
        # An admin who never asked Lucy anything still approves: record them (with their role).
        user_id = await repo.upsert_user(
            session=session, workspace_id=workspace_id, slack_user_id=slack_user, role=role
        )
        pending = await repo.list_pending_approvals(
            session=session, workspace_id=workspace_id, approver_id=user_id, include_unassigned=is_admin(role)
        )
    return approvals_text(pending_lines(pending))


async def _latest(deps: ListenerDeps, team: str, slack_user: str, workflow_id: str, *, active: bool) -> Any:
    """The task the caller means (``workflow_id``, or their latest; with ``active``, their latest
    that may still run) with its requester, or None."""
    async with deps.sessions.begin() as session:
        workspace_id = await repo.upsert_workspace(session=session, slack_team_id=team)
        user = await repo.get_user(session=session, workspace_id=workspace_id, slack_user_id=slack_user)
        if workflow_id:
            row = await repo.get_task(session=session, workspace_id=workspace_id, workflow_id=workflow_id)
            return row, user
        tasks = (
            await repo.list_user_tasks(session=session, workspace_id=workspace_id, requester_id=user.id)
            if user
            else []
        )
        tasks = [t for t in tasks if t.status in ACTIVE_TASK_STATUSES] if active else tasks
        return (tasks[0] if tasks else None), user


async def _status(deps: ListenerDeps, team: str, slack_user: str, task: str, *, role: str | None) -> str:
    """Where a task is: the caller's own (their latest by default), or any for an admin."""
    row, user = await _latest(deps, team, slack_user, task.strip(), active=False)
    if row is None and not task.strip():
        return "You have no tasks yet."
    mine = row is not None and user is not None and row.requester_id == user.id
    if row is None or not (mine or is_admin(role)):
        # The same answer whether the task does not exist or is someone else's.
        return f"I can't find a task `{escape_mrkdwn(task.strip())}` of yours in this workspace."
    handle = deps.temporal.get_workflow_handle(row.workflow_id)
    try:
        desc = await handle.describe()
        if desc.status == WorkflowExecutionStatus.RUNNING:
            return status_text(row.workflow_id, await handle.query(QUERY_STATUS, result_type=TaskView))
    except RPCError:
        return f"I can't find task `{row.workflow_id}`."
    attrs = {p.key.name: p.value for p in desc.typed_search_attributes}
    final = str(attrs.get("LucyStatus", desc.status.name.lower() if desc.status else "unknown"))
    return status_text(row.workflow_id, None, final_status=final)


async def _cancel(deps: ListenerDeps, team: str, slack_user: str, task: str) -> str:
    """Ask a task to stop, through the same ``cancel`` update as the Cancel button: the task
    decides (the requester or a workspace admin, as the worker verifies them)."""
    workflow_id = task.strip()
    if not workflow_id:
        row, _ = await _latest(deps, team, slack_user, "", active=True)
        if row is None:
            return "You have no running task to cancel."
        workflow_id = row.workflow_id
    if not belongs_to_team(workflow_id, team):
        return f"I can't find task `{escape_mrkdwn(workflow_id)}` in this workspace."
    request = signed_cancel(deps.signer, workflow_id=workflow_id, user=slack_user, team=team)
    try:
        await deps.temporal.get_workflow_handle(workflow_id).execute_update(
            UPDATE_CANCEL, request, result_type=str
        )
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
    deps = listener_deps(context)
    sub = word.lower()
    if sub in ("", "help"):
        await ack(_ephemeral(HELP))
        return
    if sub == "tasks" and not rest:
        await ack(_ephemeral(await _my_tasks(deps, team, user)))
        return
    if sub == "cancel":
        await ack(_ephemeral(await _cancel(deps, team, user, rest)))
        return
    if sub == "schedule":
        await schedules.on_schedule_command(ack, rest, command, context)
        return
    if sub == "schedules" and not rest:
        await schedules.on_schedules_command(ack, command, context)
        return
    if sub == "monitor":
        await monitors.on_monitor_command(ack, rest, command, context)
        return
    if sub == "monitors" and not rest:
        await monitors.on_monitors_command(ack, command, context)
        return
    if sub == "budget":
        await budgets.on_budget_command(ack, rest, command, context)
        return
    if sub == "usage" and not rest:
        await budgets.on_usage_command(ack, command, context)
        return
    if sub == "webhook":
        await trigger_commands.on_webhook_command(ack, rest, command, context)
        return
    if sub == "email":
        await email_commands.on_email_command(ack, rest, command, context)
        return
    if sub == "settings" and rest.lower().startswith(("email-channel", "email-outsiders")):
        await email_commands.on_settings_command(ack, rest, command, context)
        return
    profile = await deps.directory.get(context.client, team, user)
    role = profile.role if profile else None
    if sub == "approvals" and not rest:
        await ack(_ephemeral(await _my_approvals(deps, team, user, role=role)))
    elif sub == "status":
        await ack(_ephemeral(await _status(deps, team, user, rest, role=role)))
    elif profile is not None and profile.deleted:
        await ack(_ephemeral(DEACTIVATED))
    else:
        outcome = await deps.starter.start(
            SlackMessage(
                team_id=team,
                user_id=user,
                channel_id=channel,
                channel_type="im" if str(channel).startswith("D") else "channel",
                ts="",
                thread_ts=None,
                text=text,
                source=TaskSource.COMMAND.value,
                role=requester_role(profile),
                workflow_id=command_workflow_id(
                    team, channel, str(command.get("trigger_id") or uuid.uuid4())
                ),
            )
        )
        if outcome.refused:
            await ack(_ephemeral(outcome.refused))
        else:
            started = f"On it. I'll answer here. (task `{outcome.workflow_id}`)"
            await ack(_ephemeral(started if profile is not None else f"{UNVERIFIED}\n{started}"))


def register(app: AsyncApp) -> None:
    app.command("/lucy")(on_lucy)
