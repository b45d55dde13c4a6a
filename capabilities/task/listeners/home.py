"""App Home: what waits for me, my recent tasks, my schedules and monitors (with their buttons),
the workspace's budget and usage this month. The rows come from the database; the view is
:mod:`capabilities.task.views.home`'s."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from capabilities.approvals.repository import list_pending_approvals
from capabilities.budgets.repository import BudgetDefaults, usage_report
from capabilities.budgets.rules import defaults_from
from capabilities.budgets.views import budget_home_blocks
from capabilities.email.repository import ignored_mail
from capabilities.feedback.repository import monthly_feedback
from capabilities.proactive.conditions import USAGE as MONITOR_USAGE
from capabilities.proactive.repository import monitors as monitor_rows
from capabilities.proactive.repository import schedules as schedule_rows
from capabilities.proactive.views import monitors as monitor_views
from capabilities.proactive.views import schedules as schedule_views
from capabilities.task.listeners.deps import listener_deps
from capabilities.task.repository import list_user_tasks
from capabilities.task.views.home import IGNORED_MAIL_DAYS, PendingLine, TaskLine, Usage, home_view
from lucy.db.repositories.ledger import monthly_cost
from lucy.db.repositories.tenants import (
    WorkspaceRemoved,
    get_user,
    get_workspace,
    upsert_user,
    upsert_workspace,
)
from lucy.logging import get_logger
from lucy.roles import is_admin

log = get_logger(__name__)

HOME_LIST_LIMIT = 5  # schedules, and monitors, shown in Home (a view holds 100 blocks)


def task_lines(rows: Iterable[Any]) -> list[TaskLine]:
    return [TaskLine(workflow_id=t.workflow_id, status=t.status, request=t.request_text or "") for t in rows]


def pending_lines(rows: Iterable[Any]) -> list[PendingLine]:
    return [
        PendingLine(
            workflow_id=a.workflow_id,
            approval_id=str(a.id),
            risk=a.risk_level,
            summary=a.summary,
            expires_at=a.expires_at,
            details=dict(a.details or {}),
        )
        for a in rows
    ]


def usage_of(workspace: Any, cost: Any, feedback: Any, month: date) -> Usage | None:
    """Home's line of the workspace's usage this month (None: the workspace is not visible)."""
    if workspace is None:
        return None
    return Usage(
        tasks_used=workspace.current_month_actions if workspace.usage_month == month else 0,
        tasks_limit=workspace.max_monthly_actions,
        model_calls=cost.calls,
        cost_usd=cost.cost_usd,
        good_answers=feedback.good,
        bad_answers=feedback.bad,
    )


async def build_home(
    sessions: async_sessionmaker[AsyncSession],
    team_id: str,
    slack_user: str,
    *,
    role: str | None = None,
    budgets: BudgetDefaults | None = None,
) -> dict[str, Any]:
    """The Home tab view for one user. With ``role`` (from ``users.info``), the user is recorded
    first: an admin who never asked Lucy anything still sees the approvals waiting for an admin."""
    now = datetime.now(UTC)
    month = now.date().replace(day=1)
    async with sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team_id)
        if role is not None:
            await upsert_user(session=session, workspace_id=workspace_id, slack_user_id=slack_user, role=role)
        user = await get_user(session=session, workspace_id=workspace_id, slack_user_id=slack_user)
        pending, tasks, schedules, monitors = [], [], [], []
        if user is not None:
            schedules = await schedule_rows.list_schedules(
                session=session, workspace_id=workspace_id, owner_id=user.id
            )
            monitors = await monitor_rows.list_monitors(
                session=session, workspace_id=workspace_id, owner_id=user.id
            )
            pending = await list_pending_approvals(
                session=session,
                workspace_id=workspace_id,
                approver_id=user.id,
                include_unassigned=is_admin(user.role),
            )
            tasks = await list_user_tasks(
                session=session, workspace_id=workspace_id, requester_id=user.id, limit=10
            )
        workspace = await get_workspace(session=session, workspace_id=workspace_id)
        cost = await monthly_cost(session=session, workspace_id=workspace_id, month=month)
        feedback = await monthly_feedback(session=session, workspace_id=workspace_id, month=month)
        budget = await usage_report(
            session=session, workspace_id=workspace_id, month=month, defaults=budgets or BudgetDefaults()
        )
        ignored = await ignored_mail(
            session=session, workspace_id=workspace_id, since=now - timedelta(days=IGNORED_MAIL_DAYS)
        )
    usage = usage_of(workspace, cost, feedback, month)
    proactive: list[dict[str, Any]] = []
    if schedules:
        lines = [schedule_views.line_of(r) for r in schedules]
        proactive += schedule_views.schedule_list(lines, admin_view=False, limit=HOME_LIST_LIMIT)
    if monitors:
        found = [monitor_views.line_of(r) for r in monitors]
        proactive += monitor_views.monitor_list(
            found, admin_view=False, usage=MONITOR_USAGE, limit=HOME_LIST_LIMIT
        )
    proactive += budget_home_blocks(budget)
    return home_view(pending_lines(pending), task_lines(tasks), usage, proactive, ignored)


async def on_app_home_opened(
    event: dict[str, Any],
    body: dict[str, Any],
    context: AsyncBoltContext,
    ack: AsyncAck,
    client: AsyncWebClient,
) -> None:
    """Publish the Home tab. Ack first: nothing here needs to be durable."""
    await ack()
    if event.get("tab") not in (None, "home"):
        return
    team = body.get("team_id") or context.team_id
    user = event.get("user")
    if not (team and user):
        return
    deps = listener_deps(context)
    profile = await deps.directory.get(client, str(team), str(user))
    await publish_home(
        client,
        deps.sessions,
        str(team),
        str(user),
        role=profile.role if profile else None,
        budgets=defaults_from(deps.settings.budget),
    )


async def publish_home(
    client: AsyncWebClient,
    sessions: async_sessionmaker[AsyncSession],
    team: str,
    user: str,
    *,
    role: str | None = None,
    budgets: BudgetDefaults | None = None,
) -> None:
    """Build and publish one user's Home tab (a failure is logged: Home is a convenience)."""
    try:
        view = await build_home(sessions, team, user, role=role, budgets=budgets)
    except WorkspaceRemoved:
        log.info("Home tab of a removed workspace not published")
        return
    try:
        await client.views_publish(user_id=user, view=view)
    except SlackApiError as exc:
        log.warning("could not publish the Home tab", error=str(exc.response.get("error")))


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(on_app_home_opened)
