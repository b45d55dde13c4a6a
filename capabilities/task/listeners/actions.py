"""Interactivity: Approve / Reject on an approval message, *Show exactly what runs* (a modal
with the exact arguments and Approve, for a person who may decide), Cancel on a progress
message.

Each click is acknowledged at once, and the work happens in a background task right after
(Bolt's own lazy listeners deep-copy the request context, which holds the Temporal client and
cannot be copied): the click is delivered to the task as a Temporal **update** that says who
clicked, signed by the ingress (:mod:`capabilities.task.listeners.claims`). The worker verifies the signature
and
asks Slack for the clicker's role; the workflow then decides whether the click counts (who may
decide, still pending, not expired, this task's approval). A refused click changes nothing
and its clicker gets an ephemeral explanation.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.kwargs_injection.async_args import AsyncArgs
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from capabilities.approvals.contracts import ApprovalDecisionKind, ApprovalOutcome, ExactArguments
from capabilities.approvals.views import checking_modal, decided_modal, exact_modal, refused_modal
from capabilities.budgets.rules import defaults_from
from capabilities.task.listeners.claims import refusal_text, signed_cancel, signed_decision, signed_exact_view
from capabilities.task.listeners.deps import action_listener, clicker_of, listener_deps
from capabilities.task.listeners.events import tell_user
from capabilities.task.listeners.home import publish_home
from capabilities.task.listeners.priority import resume_first
from lucy.contracts.ids import (
    APPROVE_ACTION_ID,
    CANCEL_ACTION_ID,
    REJECT_ACTION_ID,
    SHOW_EXACT_ACTION_ID,
    UPDATE_CANCEL,
    UPDATE_DECIDE_APPROVAL,
    UPDATE_SHOW_EXACT,
    belongs_to_team,
)
from lucy.logging import get_logger
from lucy.metrics import SLACK_EVENTS

log = get_logger(__name__)

APPROVE = APPROVE_ACTION_ID
REJECT = REJECT_ACTION_ID
CANCEL = CANCEL_ACTION_ID
FINISHED = "This task has already finished, so there is nothing left to decide."
INVALID = "That button is not valid."


async def _tell(client: AsyncWebClient, *, channel: str, user: str, text: str, thread_ts: str | None) -> None:
    """An ephemeral note where the click happened; from App Home (no channel), a DM."""
    if channel:
        await tell_user(client, channel=channel, user=user, text=text, thread_ts=thread_ts)
        return
    try:
        await client.chat_postMessage(channel=user, text=text)
    except Exception as exc:
        log.warning("could not tell the user", error=exc.__class__.__name__)


def _where(body: dict[str, Any]) -> tuple[str, str | None]:
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""
    message = body.get("message") or {}
    return str(channel), message.get("thread_ts") or message.get("ts")


_running: set[asyncio.Task[None]] = set()


def _in_background(coro: Coroutine[Any, Any, None]) -> None:
    """Run a click's delivery after the acknowledgement; keep a reference until it is done and
    log (never raise) what goes wrong, since Slack already has its 200."""

    async def guarded() -> None:
        try:
            await coro
        except Exception:
            log.exception("a click could not be delivered")

    task = asyncio.create_task(guarded())
    _running.add(task)
    task.add_done_callback(_running.discard)


def _acknowledged(deliver: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., Awaitable[None]]:
    """A click listener: acknowledge at once, deliver in the background."""

    async def handle(args: AsyncArgs) -> None:
        _in_background(deliver(args.body, args.action or {}, args.context, args.client))

    return action_listener(handle)


@dataclass(frozen=True)
class _Click:
    """Who clicked where, and how to answer them."""

    client: AsyncWebClient
    user: str
    team: str
    channel: str
    thread_ts: str | None

    @classmethod
    def of(cls, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> _Click:
        channel, thread_ts = _where(body)
        team, user = clicker_of(body, context)
        return cls(
            client=client,
            user=user,
            team=team,
            channel=channel,
            thread_ts=thread_ts,
        )

    async def tell(self, text: str) -> None:
        await _tell(self.client, channel=self.channel, user=self.user, text=text, thread_ts=self.thread_ts)


async def _update(
    click: _Click,
    context: AsyncBoltContext,
    workflow_id: str,
    update: str,
    arg: Any,
    result_type: type,
    finished: str,
) -> Any | None:
    """Deliver one click as a workflow update; a refusal or a finished task is told to the
    clicker (ephemerally) and returns None."""
    temporal = listener_deps(context).temporal
    try:
        return await temporal.get_workflow_handle(workflow_id).execute_update(
            update, arg, result_type=result_type
        )
    except WorkflowUpdateFailedError as err:
        SLACK_EVENTS.labels("block_actions", "refused").inc()
        log.info("click refused by the task", workflow_id=workflow_id, update=update)
        await click.tell(refusal_text(err))
    except RPCError:
        SLACK_EVENTS.labels("block_actions", "finished").inc()
        await click.tell(finished)
    return None


async def _foreign(click: _Click, workflow_id: str) -> bool:
    if belongs_to_team(workflow_id, click.team):
        return False
    SLACK_EVENTS.labels("block_actions", "foreign").inc()
    log.warning("click for a task of another workspace refused", workflow_id=workflow_id)
    await click.tell(INVALID)
    return True


async def _approval_of(click: _Click, action: dict[str, Any]) -> tuple[str, str] | None:
    """The task and approval an approval button belongs to; None (and the clicker told) when
    the button is malformed or belongs to another workspace's task."""
    try:
        value = json.loads(str(action.get("value") or ""))
        workflow_id, approval_id = str(value["w"]), str(value["a"])
    except (ValueError, KeyError, TypeError, RecursionError):
        SLACK_EVENTS.labels("block_actions", "malformed").inc()
        await click.tell(INVALID)
        return None
    if await _foreign(click, workflow_id):
        return None
    return workflow_id, approval_id


async def deliver_exact_view(
    body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """*Show exactly what runs* -> a modal opened at once ("checking"), then the task's
    ``show_exact_arguments`` update: the exact arguments with Approve / Reject for a person the
    worker verified and the policy lets decide, or why not."""
    click = _Click.of(body, context, client)
    target = await _approval_of(click, action)
    if target is None:
        return
    workflow_id, approval_id = target
    opened = await client.views_open(trigger_id=str(body.get("trigger_id") or ""), view=checking_modal())
    view_id = str((opened.get("view") or {}).get("id") or "")
    request = signed_exact_view(
        listener_deps(context).signer,
        workflow_id=workflow_id,
        approval_id=approval_id,
        user=click.user,
        team=click.team,
    )
    handle = listener_deps(context).temporal.get_workflow_handle(workflow_id)
    try:
        exact = await handle.execute_update(UPDATE_SHOW_EXACT, request, result_type=ExactArguments)
    except WorkflowUpdateFailedError as err:
        SLACK_EVENTS.labels("block_actions", "refused").inc()
        view = refused_modal(refusal_text(err))
    except RPCError:
        view = refused_modal(FINISHED)
    else:
        SLACK_EVENTS.labels("block_actions", "exact_view").inc()
        log.info("exact arguments shown", workflow_id=workflow_id, approval_id=approval_id)
        view = exact_modal(
            workflow_id=workflow_id, approval_id=approval_id, tool=exact.tool, arguments=exact.arguments
        )
    await client.views_update(view_id=view_id, view=view)


async def deliver_decision(
    body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """Approve/Reject -> the ``decide_approval`` update of the task the button belongs to."""
    click = _Click.of(body, context, client)
    target = await _approval_of(click, action)
    if target is None:
        return
    workflow_id, approval_id = target
    await resume_first(listener_deps(context).temporal, workflow_id=workflow_id, team=click.team)
    decision = signed_decision(
        listener_deps(context).signer,
        workflow_id=workflow_id,
        approval_id=approval_id,
        decision=ApprovalDecisionKind.APPROVED
        if action.get("action_id") == APPROVE
        else ApprovalDecisionKind.REJECTED,
        user=click.user,
        team=click.team,
    )
    outcome = await _update(
        click, context, workflow_id, UPDATE_DECIDE_APPROVAL, decision, ApprovalOutcome, FINISHED
    )
    if outcome is None:
        return
    SLACK_EVENTS.labels("block_actions", outcome.decision).inc()
    log.info("approval decided", workflow_id=workflow_id, approval_id=approval_id, decision=outcome.decision)
    view = body.get("view") or {}
    if view.get("type") == "modal" and view.get("id"):  # clicked in the exact view: close it
        await client.views_update(view_id=str(view["id"]), view=decided_modal(outcome.decision))
    elif (body.get("container") or {}).get("type") == "view":  # clicked in App Home: refresh it
        deps = listener_deps(context)
        await publish_home(
            client, deps.sessions, click.team, click.user, budgets=defaults_from(deps.settings.budget)
        )


async def deliver_cancel(
    body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """Cancel -> the ``cancel`` update (allowed for the requester and workspace admins)."""
    click = _Click.of(body, context, client)
    workflow_id = str(action.get("value") or "")
    if await _foreign(click, workflow_id):
        return
    request = signed_cancel(
        listener_deps(context).signer, workflow_id=workflow_id, user=click.user, team=click.team
    )
    if (
        await _update(
            click, context, workflow_id, UPDATE_CANCEL, request, str, "This task has already finished."
        )
        is None
    ):
        return
    SLACK_EVENTS.labels("block_actions", "cancel").inc()
    log.info("task cancel requested from Slack", workflow_id=workflow_id)


def register(app: AsyncApp) -> None:
    on_decision = _acknowledged(deliver_decision)
    app.action(APPROVE)(on_decision)
    app.action(REJECT)(on_decision)
    app.action(CANCEL)(_acknowledged(deliver_cancel))
    app.action(SHOW_EXACT_ACTION_ID)(_acknowledged(deliver_exact_view))
