"""The ``/lucy`` slash command.

Its subcommands are declared once, in :data:`TABLE` (name, arguments, one line of help, who
may run it, handler; a group such as ``settings`` has sub-words of its own): the help, a
group's usage error and the dispatch are generated from it (:mod:`app.ingress.command_table`).
Subcommands answer only the caller (ephemeral). Anything else is a request and starts a task
in the channel; an empty command gets help, never an error. What the answers look like is
:mod:`capabilities.task.views.home`'s; whether a task is running is Temporal's.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError

from app.ingress.command_table import CommandCall, Handler, Subcommand, Who, dispatch, help_lines
from capabilities.approvals.repository import list_pending_approvals
from capabilities.budgets import listeners as budgets
from capabilities.email.listeners import commands as email_commands
from capabilities.proactive.listeners import monitors, patterns, schedules
from capabilities.task.contracts.task import TaskView
from capabilities.task.listeners.claims import refusal_text, signed_cancel
from capabilities.task.listeners.deps import ListenerDeps, listener_deps
from capabilities.task.listeners.directory import UNVERIFIED, requester_role
from capabilities.task.listeners.events import DEACTIVATED
from capabilities.task.listeners.home import pending_lines, task_lines
from capabilities.task.listeners.start import WORKSPACE_REMOVED, SlackMessage
from capabilities.task.repository import get_task, list_user_tasks
from capabilities.task.views.home import approvals_text, status_text, tasks_text
from capabilities.triggers.listeners import commands as trigger_commands
from lucy.contracts.ids import (
    ACTIVE_TASK_STATUSES,
    QUERY_STATUS,
    UPDATE_CANCEL,
    TaskSource,
    belongs_to_team,
    command_workflow_id,
)
from lucy.db.repositories.tenants import WorkspaceRemoved, get_user, upsert_user, upsert_workspace
from lucy.roles import is_admin
from lucy.slack.text import escape_mrkdwn


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


async def _my_tasks(deps: ListenerDeps, team: str, slack_user: str) -> str:
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        user = await get_user(session=session, workspace_id=workspace_id, slack_user_id=slack_user)
        tasks = (
            await list_user_tasks(session=session, workspace_id=workspace_id, requester_id=user.id)
            if user
            else []
        )
    return tasks_text(task_lines(tasks))


async def _my_approvals(deps: ListenerDeps, team: str, slack_user: str, *, role: str | None) -> str:
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        # An admin who never asked Lucy anything still approves: record them (with their role).
        user_id = await upsert_user(
            session=session, workspace_id=workspace_id, slack_user_id=slack_user, role=role
        )
        pending = await list_pending_approvals(
            session=session, workspace_id=workspace_id, approver_id=user_id, include_unassigned=is_admin(role)
        )
    return approvals_text(pending_lines(pending))


async def _latest(deps: ListenerDeps, team: str, slack_user: str, workflow_id: str, *, active: bool) -> Any:
    """The task the caller means (``workflow_id``, or their latest; with ``active``, their latest
    that may still run) with its requester, or None."""
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        user = await get_user(session=session, workspace_id=workspace_id, slack_user_id=slack_user)
        if workflow_id:
            row = await get_task(session=session, workspace_id=workspace_id, workflow_id=workflow_id)
            return row, user
        tasks = (
            await list_user_tasks(session=session, workspace_id=workspace_id, requester_id=user.id)
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


async def _help(call: CommandCall) -> None:
    await call.ack(_ephemeral(HELP))


async def _tasks(call: CommandCall) -> None:
    await call.ack(_ephemeral(await _my_tasks(listener_deps(call.context), call.team, call.user)))


async def _cancel_command(call: CommandCall) -> None:
    await call.ack(_ephemeral(await _cancel(listener_deps(call.context), call.team, call.user, call.rest)))


async def _role(call: CommandCall) -> str | None:
    profile = await listener_deps(call.context).directory.get(call.context.client, call.team, call.user)
    return profile.role if profile else None


async def _approvals(call: CommandCall) -> None:
    text = await _my_approvals(listener_deps(call.context), call.team, call.user, role=await _role(call))
    await call.ack(_ephemeral(text))


async def _status_command(call: CommandCall) -> None:
    deps, role = listener_deps(call.context), await _role(call)
    await call.ack(_ephemeral(await _status(deps, call.team, call.user, call.rest, role=role)))


Listener = Callable[[AsyncAck, str, dict[str, Any], AsyncBoltContext], Awaitable[None]]
BareListener = Callable[[AsyncAck, dict[str, Any], AsyncBoltContext], Awaitable[None]]


def _with_args(listener: Listener) -> Handler:
    async def handle(call: CommandCall) -> None:
        await listener(call.ack, call.rest, call.command, call.context)

    return handle


def _bare(listener: BareListener) -> Handler:
    return _with_args(lambda ack, _rest, command, context: listener(ack, command, context))


PREFIX = "/lucy"
TABLE: tuple[Subcommand, ...] = (
    Subcommand("tasks", "your recent tasks", _tasks, takes_args=False),
    Subcommand("status", "where a task is (default: your latest)", _status_command, usage="[task id]"),
    Subcommand(
        "cancel", "stop a task (default: your latest running one)", _cancel_command, usage="[task id]"
    ),
    Subcommand("approvals", "approvals waiting for you", _approvals, takes_args=False),
    Subcommand(
        "schedule",
        "a recurring task (`/lucy schedules` lists them)",
        _with_args(schedules.on_schedule_command),
        usage='"every weekday at 9:00" <request>',
    ),
    Subcommand(
        "schedules", "your schedules", _bare(schedules.on_schedules_command), takes_args=False, listed=False
    ),
    Subcommand(
        "monitor",
        "watch something and alert here (`/lucy monitors`)",
        _with_args(monitors.on_monitor_command),
        usage='"every 15 minutes" health <url>',
    ),
    Subcommand(
        "monitors", "your monitors", _bare(monitors.on_monitors_command), takes_args=False, listed=False
    ),
    Subcommand(
        "patterns", "what I noticed you ask regularly", _bare(patterns.on_patterns_command), takes_args=False
    ),
    Subcommand(
        "usage",
        "this month's spend against the budget (`/lucy budget help`: admins set it)",
        _bare(budgets.on_usage_command),
        takes_args=False,
    ),
    Subcommand("budget", "show or set the budget", _with_args(budgets.on_budget_command), listed=False),
    Subcommand(
        "email",
        "the email inbox that brings work here (`/lucy email connect <inbox>`: admins)",
        _with_args(email_commands.on_email_command),
    ),
    Subcommand(
        "settings",
        "where mail is announced, whether outside senders' mail becomes work (admins); your `patterns`",
        who=Who.ADMIN,
        words=(
            Subcommand(
                "email-channel",
                "where mail to the inbox is announced",
                _with_args(email_commands.on_email_channel_setting),
                usage="#channel",
                who=Who.ADMIN,
            ),
            Subcommand(
                "email-outsiders",
                "whether mail from outside senders becomes work",
                _with_args(email_commands.on_email_outsiders_setting),
                usage="ignore|accept",
                who=Who.ADMIN,
            ),
            Subcommand(
                "patterns",
                "whether I look for requests you repeat and offer to schedule them (yours only)",
                _with_args(patterns.on_patterns_setting),
                usage="on|off",
            ),
            Subcommand(
                "patterns-channel",
                "whether I look for recurring requests in this channel",
                _with_args(patterns.on_channel_setting),
                usage="on|off",
                who=Who.ADMIN,
            ),
        ),
    ),
    Subcommand(
        "webhook",
        "signed webhooks that start tasks (admins: `create`, `list`, `delete`)",
        _with_args(trigger_commands.on_webhook_command),
        usage="list",
        who=Who.ADMIN,
    ),
    Subcommand("help", "this message", _help),
)
HELP = "\n".join(
    [
        "*Lucy* — your AI coworker. Every request is a durable task.",
        f"• `{PREFIX} <request>` — ask me something; I answer in this channel",
        *help_lines(TABLE, prefix=PREFIX),
        "You can also @mention me in a channel or send me a DM.",
    ]
)


async def on_lucy(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """``/lucy ...``: subcommands answer the caller; anything else becomes a task."""
    try:
        await _lucy(ack, command, context)
    except WorkspaceRemoved:
        await ack(_ephemeral(WORKSPACE_REMOVED))


async def _lucy(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    text = " ".join(str(command.get("text") or "").split())
    if not (command.get("team_id") and command.get("user_id") and command.get("channel_id")):
        await ack(_ephemeral("Sorry, that command arrived incomplete. Please try again."))
        return
    found = dispatch(TABLE, text or "help", prefix=PREFIX)
    if found is not None:
        handler, rest = found
        await handler(CommandCall(ack=ack, command=command, context=context, text=text, rest=rest))
    else:
        await _request(ack, text, command, context)


async def _request(ack: AsyncAck, text: str, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """Anything that is not a subcommand: a task, started in the channel."""
    deps = listener_deps(context)
    team, user, channel = str(command["team_id"]), str(command["user_id"]), str(command["channel_id"])
    profile = await deps.directory.get(context.client, team, user)
    if profile is not None and profile.deleted:
        await ack(_ephemeral(DEACTIVATED))
        return
    outcome = await deps.starter.start(
        SlackMessage(
            team_id=team,
            user_id=user,
            channel_id=channel,
            channel_type="im" if channel.startswith("D") else "channel",
            ts="",
            thread_ts=None,
            text=text,
            source=TaskSource.COMMAND.value,
            role=requester_role(profile),
            workflow_id=command_workflow_id(team, channel, str(command.get("trigger_id") or uuid.uuid4())),
        )
    )
    if outcome.refused:
        await ack(_ephemeral(outcome.refused))
    else:
        started = f"On it. I'll answer here. (task `{outcome.workflow_id}`)"
        await ack(_ephemeral(started if profile is not None else f"{UNVERIFIED}\n{started}"))


def register(app: AsyncApp) -> None:
    app.command("/lucy")(on_lucy)
