"""Feedback buttons under Lucy's answers (``lucy_feedback``, Slack's ``feedback_buttons``): a
click is recorded against its task in the clicker's workspace (``task_feedback`` and an
``audit_log`` entry), before the click is acknowledged. A repeated click of the same person
replaces their earlier one; the same click delivered twice changes nothing. A button naming a
task of another workspace, or a value Lucy did not put there, is refused without a write."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from sqlalchemy.exc import SQLAlchemyError

from capabilities.feedback.repository import record_feedback
from capabilities.task.listeners.deps import clicker_of, listener_deps
from lucy.contracts.ids import FEEDBACK_ACTION_ID, FEEDBACK_VALUES, belongs_to_team
from lucy.db.repositories.tenants import WorkspaceRemoved, upsert_workspace
from lucy.logging import get_logger
from lucy.metrics import SLACK_EVENTS

log = get_logger(__name__)


def _clicked_at(action: dict[str, Any]) -> datetime:
    """When the click happened, by Slack's ``action_ts`` (so a redelivery is the same click)."""
    try:
        return datetime.fromtimestamp(float(action.get("action_ts") or ""), UTC)
    except (TypeError, ValueError, OverflowError):
        return datetime.now(UTC)


def parse_value(raw: Any) -> tuple[str, str] | None:
    """(workflow id, good|bad) from a feedback button's value, or None when it is not Lucy's."""
    try:
        value = json.loads(str(raw or ""))
        workflow_id, feedback = str(value["w"]), str(value["f"])
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return (workflow_id, feedback) if feedback in FEEDBACK_VALUES and workflow_id else None


async def on_feedback(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
) -> None:
    team, user = clicker_of(body, context)
    parsed = parse_value(action.get("value"))
    if parsed is None or not user:
        SLACK_EVENTS.labels("block_actions", "malformed").inc()
        await ack()
        return
    workflow_id, feedback = parsed
    if not belongs_to_team(workflow_id, team):
        SLACK_EVENTS.labels("block_actions", "foreign").inc()
        log.warning("feedback for a task of another workspace refused", workflow_id=workflow_id)
        await ack()
        return
    try:
        async with listener_deps(context).sessions.begin() as session:
            workspace_id = await upsert_workspace(session=session, slack_team_id=team)
            outcome = await record_feedback(
                session=session,
                workspace_id=workspace_id,
                workflow_id=workflow_id,
                slack_user_id=user,
                feedback=feedback,
                clicked_at=_clicked_at(action),
            )
    except (SQLAlchemyError, OSError, WorkspaceRemoved) as exc:
        log.warning("feedback not recorded", workflow_id=workflow_id, error=exc.__class__.__name__)
        SLACK_EVENTS.labels("block_actions", "feedback_failed").inc()
        await ack()
        return
    if outcome is None:
        SLACK_EVENTS.labels("block_actions", "feedback_unknown").inc()
        log.info("feedback for an unknown task ignored", workflow_id=workflow_id)
    elif not outcome.recorded:
        SLACK_EVENTS.labels("block_actions", "feedback_stale").inc()
        log.info("feedback click ignored: the same or a newer one is recorded", workflow_id=workflow_id)
    else:
        SLACK_EVENTS.labels("block_actions", "feedback").inc()
        log.info("feedback recorded", workflow_id=workflow_id, feedback=feedback, changed=outcome.changed)
    await ack()


def register(app: AsyncApp) -> None:
    app.action(FEEDBACK_ACTION_ID)(on_feedback)
