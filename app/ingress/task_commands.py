"""The ``/lucy`` subcommands about tasks, answered only to the caller: ``tasks`` (your recent
tasks), ``approvals`` (the ones waiting for you), ``status`` and ``cancel`` (a task, by default
your latest). Declared in :data:`app.ingress.commands.TABLE`; what the answers look like is
:mod:`capabilities.task.views.home`'s, whether a task runs is Temporal's.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError

from app.ingress.command_table import CommandCall
from capabilities.approvals.repository import list_pending_approvals
from capabilities.task.contracts.task import TaskView
from capabilities.task.listeners.claims import refusal_text, signed_cancel
from capabilities.task.listeners.deps import ListenerDeps, listener_deps
from capabilities.task.listeners.home import pending_lines, task_lines
from capabilities.task.repository import get_task, list_user_tasks
from capabilities.task.views.home import approvals_text, status_text, tasks_text
from lucy.contracts.ids import (
    ACTIVE_TASK_STATUSES,
    QUERY_STATUS,
    UPDATE_CANCEL,
    belongs_to_team,
)
from lucy.db.repositories.tenants import get_user, upsert_user, upsert_workspace
from lucy.roles import is_admin
from lucy.slack.text import escape_mrkdwn


def ephemeral(text: str) -> dict[str, Any]:
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


async def tasks_command(call: CommandCall) -> None:
    await call.ack(ephemeral(await _my_tasks(listener_deps(call.context), call.team, call.user)))


async def cancel_command(call: CommandCall) -> None:
    await call.ack(ephemeral(await _cancel(listener_deps(call.context), call.team, call.user, call.rest)))


async def _role(call: CommandCall) -> str | None:
    profile = await listener_deps(call.context).directory.get(call.context.client, call.team, call.user)
    return profile.role if profile else None


async def approvals_command(call: CommandCall) -> None:
    text = await _my_approvals(listener_deps(call.context), call.team, call.user, role=await _role(call))
    await call.ack(ephemeral(text))


async def status_command(call: CommandCall) -> None:
    deps, role = listener_deps(call.context), await _role(call)
    await call.ack(ephemeral(await _status(deps, call.team, call.user, call.rest, role=role)))
