"""App Home: what waits for me, my recent tasks, and the workspace's usage this month."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lucy.blocks import Attachment, what_will_run
from lucy.contracts import approval_buttons
from lucy.db import repositories as repo
from lucy.logging import get_logger
from lucy.slack_text import escape_mrkdwn

log = get_logger(__name__)

STATUS_ICON = {  # also used by /lucy tasks and /lucy status
    "created": ":hourglass:",
    "running": ":gear:",
    "pending_approval": ":raised_hand:",
    "completed": ":white_check_mark:",
    "failed": ":x:",
    "cancelled": ":no_entry_sign:",
    "timeout": ":alarm_clock:",
}


def _pending_approval(a: Any) -> list[dict[str, Any]]:
    """One approval waiting for the viewer: what will run, in full, as in its thread, and the
    buttons. An approval recorded without its arguments gets no buttons here: it is decided in
    its thread, where they are shown."""
    details = dict(a.details or {})
    expires = f"<!date^{int(a.expires_at.timestamp())}^{{date_short_pretty}} {{time}}|soon>"
    head = _section(f":raised_hand: *{escape_mrkdwn(a.risk_level)} risk* · expires {expires}")
    arguments = details.get("arguments")
    if not isinstance(arguments, dict):
        return [head, _section(f"{escape_mrkdwn(a.summary)} (decide in its thread)")]
    raw = details.get("attachment")
    attachment = (
        Attachment(name=str(raw.get("name")), sha256=str(raw.get("sha256")), size=int(raw.get("size") or 0))
        if isinstance(raw, dict)
        else None
    )
    return [
        head,
        *what_will_run(str(details.get("tool") or "tool"), arguments, attachment),
        approval_buttons(a.workflow_id, str(a.id)),
    ]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


async def build_home(
    sessions: async_sessionmaker[AsyncSession], team_id: str, slack_user: str, *, role: str | None = None
) -> dict[str, Any]:
    """The Home tab view for one user (a ``views.publish`` view). With ``role`` (from
    ``users.info``), the user is recorded first: an admin who never asked Lucy anything still
    sees the approvals waiting for an admin."""
    today = datetime.now(UTC).date()
    async with sessions.begin() as session:
        workspace_id = await repo.upsert_workspace(session=session, slack_team_id=team_id)
        if role is not None:
            await repo.upsert_user(
                session=session, workspace_id=workspace_id, slack_user_id=slack_user, role=role
            )
        user = await repo.get_user(session=session, workspace_id=workspace_id, slack_user_id=slack_user)
        pending = (
            await repo.list_pending_approvals(
                session=session,
                workspace_id=workspace_id,
                approver_id=user.id,
                include_unassigned=user.role in ("admin", "owner"),
            )
            if user
            else []
        )
        tasks = (
            await repo.list_user_tasks(
                session=session, workspace_id=workspace_id, requester_id=user.id, limit=10
            )
            if user
            else []
        )
        workspace = await repo.get_workspace(session=session, workspace_id=workspace_id)
        cost = await repo.monthly_cost(session=session, workspace_id=workspace_id, month=today)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Lucy"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Waiting for your approval*"}},
    ]
    if pending:
        for a in pending:
            blocks.extend(_pending_approval(a))
    else:
        blocks.append(_section("Nothing is waiting for you."))
    blocks += [{"type": "divider"}, _section("*Your recent tasks*")]
    if tasks:
        for t in tasks:
            request = " ".join((t.request_text or "").split())
            request = request[:80] + ("…" if len(request) > 80 else "")
            blocks.append(
                _section(
                    f"{STATUS_ICON.get(t.status, '')} {t.status} — {escape_mrkdwn(request)}"
                    f"\n`{t.workflow_id}`"
                )
            )
    else:
        blocks.append(_section("No tasks yet. Mention @Lucy, DM me, or type `/lucy <request>`."))
    if workspace is not None:
        used = workspace.current_month_actions if workspace.usage_month == today.replace(day=1) else 0
        blocks += [
            {"type": "divider"},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": (
                            f"This month: {used} of {workspace.max_monthly_actions} tasks · "
                            f"{cost.calls} model calls · ${cost.cost_usd:.2f}"
                        ),
                    }
                ],
            },
        ]
    return {"type": "home", "blocks": blocks}


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
    profile = await context["lucy_directory"].get(client, str(team), str(user))
    await publish_home(
        client, context["lucy_sessions"], str(team), str(user), role=profile.role if profile else None
    )


async def publish_home(
    client: AsyncWebClient,
    sessions: async_sessionmaker[AsyncSession],
    team: str,
    user: str,
    *,
    role: str | None = None,
) -> None:
    """Build and publish one user's Home tab (a failure is logged: Home is a convenience)."""
    try:
        view = await build_home(sessions, team, user, role=role)
    except repo.WorkspaceRemoved:
        log.info("Home tab of a removed workspace not published")
        return
    try:
        await client.views_publish(user_id=user, view=view)
    except SlackApiError as exc:
        log.warning("could not publish the Home tab", error=str(exc.response.get("error")))


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(on_app_home_opened)
