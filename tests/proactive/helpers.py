"""Helpers shared by the schedule and monitor tests: forgetting a team's rows and their Temporal
Schedules (the servers are shared by the whole run), and clicking a button on an ephemeral
message, whose answer goes to the click's ``response_url``."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError

from tests.conftest import Lucy, eventually
from tests.fakes.slack import FakeSlack


async def forget(client: Client, admin: AsyncEngine, team: str, table: str) -> None:
    """Soft-delete the team's ``schedules`` or ``monitors`` rows and delete their Temporal
    Schedules, so that no later reconciliation brings them back."""
    assert table in ("schedules", "monitors")
    async with admin.begin() as conn:
        ids = (
            await conn.execute(
                text(
                    f"UPDATE {table} r SET deleted_at = now() FROM workspaces w "
                    "WHERE w.id = r.workspace_id AND w.slack_team_id = :team RETURNING r.temporal_schedule_id"
                ),
                {"team": team},
            )
        ).scalars()
        for schedule_id in list(ids):
            with contextlib.suppress(RPCError):
                await client.get_schedule_handle(schedule_id).delete()


async def click_ephemeral(
    lucy: Lucy,
    slack: FakeSlack,
    blocks: list[dict[str, Any]],
    action_id: str,
    *,
    team: str,
    user: str,
    channel: str,
    value: str | None = None,
) -> dict[str, Any]:
    """Click a button on an ephemeral message; returns what Lucy sent to the response_url."""
    name = uuid.uuid4().hex[:8]
    response = await lucy.click(
        {"ts": "1700000000.000100", "blocks": blocks},
        action_id,
        team=team,
        user=user,
        channel=channel,
        value=value,
        ephemeral=True,
        response_url=slack.response_url(name),
    )
    assert response.status_code == 200
    return await eventually(
        lambda: next((r for r in slack.responses if r["name"] == name), None), f"the answer to {action_id}"
    )
