"""What a fire of any standing job does before it works: claim itself like a request.

A schedule's run and a monitor's probe are both task rows, taken against the owner's quota and
rate limits with the same database function as ingress (so they count like any request), then
against the owner's budgets. A fire that may not work keeps its row, cancelled with the reason.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from capabilities.budgets.repository import BudgetDefaults, blocked
from capabilities.budgets.rules import stopped_sentence
from capabilities.task.repository import IngressClaim, get_task, ingress_claim, record_task_finished
from lucy.contracts.ids import TaskStatus
from lucy.settings import LimitSettings


@dataclass(frozen=True)
class Fire:
    """One fire of a standing job, as the claim sees it."""

    workspace_id: uuid.UUID
    workflow_id: str
    slack_team_id: str
    slack_user_id: str  # the owner: the fire is theirs (quota, limits, budgets)
    slack_channel_id: str
    source: str  # TaskSource
    request_text: str


async def claim_fire(session: AsyncSession, fire: Fire, limits: LimitSettings) -> IngressClaim:
    """The fire's task row, taken against quota and rate limits as ingress takes a request."""
    return await ingress_claim(
        session=session,
        slack_team_id=fire.slack_team_id,
        slack_user_id=fire.slack_user_id,
        slack_channel_id=fire.slack_channel_id,
        channel_type="public",  # the channel exists: its type is kept
        workflow_id=fire.workflow_id,
        source=fire.source,
        request_text=fire.request_text,
        slack_thread_ts=None,
        user_capacity=limits.rate_limit_user_per_minute,
        user_refill_per_second=limits.rate_limit_user_per_minute / 60,
        workspace_capacity=limits.rate_limit_workspace_per_minute,
        workspace_refill_per_second=limits.rate_limit_workspace_per_minute / 60,
        month=datetime.now(UTC).date(),
    )


async def budget_refusal(
    session: AsyncSession, fire: Fire, claim: IngressClaim, defaults: BudgetDefaults
) -> str | None:
    """Why the owner's budgets stop this fire (a sentence for people), or None."""
    budget = await blocked(
        session=session,
        workspace_id=fire.workspace_id,
        user_id=claim.user_id,
        now=datetime.now(UTC),
        defaults=defaults,
    )
    return stopped_sentence(budget) if budget is not None else None


async def claim_still_stands(session: AsyncSession, fire: Fire) -> bool:
    """For a fire whose row exists already: whether this is a retry of the activity that made it
    (the row still waits as created). Any other state means an earlier execution of the same fire
    had it, and this one is a duplicate."""
    task = await get_task(session=session, workspace_id=fire.workspace_id, workflow_id=fire.workflow_id)
    return task is not None and task.status == TaskStatus.CREATED.value


async def record_refused(session: AsyncSession, fire: Fire, error_type: str, why: str) -> None:
    """Keep the record of a fire that did not run (the task row, as ingress does for a refusal)."""
    await record_task_finished(
        session=session,
        workspace_id=fire.workspace_id,
        workflow_id=fire.workflow_id,
        status=TaskStatus.CANCELLED.value,
        completed_at=datetime.now(UTC),
        error_type=error_type,
        error_message=why,
    )
