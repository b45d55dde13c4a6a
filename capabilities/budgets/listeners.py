"""``/lucy budget ...`` (workspace admins set USD budgets; audited) and ``/lucy usage``
(month-to-date spend against the budget; admins see everyone). Parsing is
:mod:`capabilities.budgets.rules`'; the words are :mod:`capabilities.budgets.views`'."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext

from capabilities.budgets.repository import (
    USER_DEFAULT,
    WORKSPACE,
    clear_budget,
    set_budget,
    usage_report,
    user_scope,
)
from capabilities.budgets.rules import (
    BUDGET_USAGE,
    BudgetChange,
    BudgetInputError,
    defaults_from,
    parse_budget_command,
    usd,
)
from capabilities.budgets.views import usage_text
from capabilities.task.listeners.deps import ListenerDeps, listener_deps
from lucy.db.repositories.ledger import record_audit
from lucy.db.repositories.tenants import upsert_user, upsert_workspace
from lucy.logging import get_logger
from lucy.roles import is_admin

log = get_logger(__name__)

NOT_ADMIN = "Only a workspace admin or owner can change Lucy's budgets. `/lucy usage` shows them."


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


async def usage(deps: ListenerDeps, team: str, slack_user: str, *, role: str | None) -> str:
    """The caller's view of this month's spend (an admin's holds everyone)."""
    admin = is_admin(role)
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        user_id = await upsert_user(
            session=session, workspace_id=workspace_id, slack_user_id=slack_user, role=role
        )
        report = await usage_report(
            session=session,
            workspace_id=workspace_id,
            month=datetime.now(UTC).date(),
            defaults=defaults_from(deps.settings.budget),
            only_user=None if admin else user_id,
        )
    return usage_text(report, admin=admin, slack_user=slack_user)


def _what(change: BudgetChange) -> str:
    period = "daily" if change.period == "day" else "monthly"
    if change.user is None:
        return "the workspace's monthly budget"
    if change.user == "*":
        return f"every user's default {period} budget"
    return f"<@{change.user}>'s {period} budget"


async def _apply(deps: ListenerDeps, team: str, actor: str, change: BudgetChange, key: str) -> str:
    now = datetime.now(UTC)
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        if change.user is None:
            scope = WORKSPACE
        elif change.user == "*":
            scope = USER_DEFAULT
        else:
            target = await upsert_user(session=session, workspace_id=workspace_id, slack_user_id=change.user)
            scope = user_scope(target)
        previous = await set_budget(
            session=session,
            workspace_id=workspace_id,
            scope_key=scope,
            period=change.period,
            limit_usd=change.amount if change.action == "set" else None,
            updated_by=actor,
        )
        if change.action == "default":
            await clear_budget(
                session=session, workspace_id=workspace_id, scope_key=scope, period=change.period
            )
        await record_audit(
            session=session,
            workspace_id=workspace_id,
            idempotency_key=hashlib.sha256(f"budget:{team}:{key}".encode()).hexdigest(),
            occurred_at=now,
            actor_type="user",
            actor_id=actor,
            action="budget.changed",
            entity_type="budget",
            entity_id=f"{scope}:{change.period}",
            before_state={"limit_usd": str(previous) if previous is not None else None},
            after_state={
                "action": change.action,
                "limit_usd": str(change.amount) if change.amount is not None else None,
            },
        )
    what = _what(change)
    if change.action == "off":
        return f"Done: {what} is off (no limit)."
    if change.action == "default":
        return f"Done: {what} follows the deployment's setting again."
    log.info("budget changed", scope=scope, period=change.period)
    return f"Done: {what} is now {usd(change.amount)}. Work refused by the old limit can go on."


async def on_budget_help(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """``/lucy budget help``: how to set budgets."""
    await ack(_ephemeral(BUDGET_USAGE))


def on_budget_change(first: str = "") -> Callable[..., Awaitable[None]]:
    """The listener of ``/lucy budget [first] <rest>`` (``first``: the sub-word the command
    table matched, ``user``, ``off`` or ``default``; none for an amount): change a budget
    (admins only; audited)."""

    async def on_change(ack: AsyncAck, rest: str, command: dict[str, Any], context: AsyncBoltContext) -> None:
        await _change(ack, " ".join(w for w in (first, rest) if w), command, context)

    return on_change


async def _change(ack: AsyncAck, words: str, command: dict[str, Any], context: AsyncBoltContext) -> None:
    deps = listener_deps(context)
    team, user = str(command["team_id"]), str(command["user_id"])
    try:
        change = parse_budget_command(words)
    except BudgetInputError as err:
        await ack(_ephemeral(str(err)))
        return
    profile = await deps.directory.get(context.client, team, user)
    role = profile.role if profile else None
    if change is None:
        await ack(_ephemeral(await usage(deps, team, user, role=role)))
        return
    if not is_admin(role):
        await ack(_ephemeral(NOT_ADMIN))
        return
    key = str(command.get("trigger_id") or uuid.uuid4())
    await ack(_ephemeral(await _apply(deps, team, user, change, key)))


async def on_usage_command(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """``/lucy usage``: this month's spend against the budget."""
    deps = listener_deps(context)
    team, user = str(command["team_id"]), str(command["user_id"])
    profile = await deps.directory.get(context.client, team, user)
    await ack(_ephemeral(await usage(deps, team, user, role=profile.role if profile else None)))
