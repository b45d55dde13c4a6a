"""Repository functions. Keyword-only, take ``session=`` (and ``workspace_id=`` for tenant
data), never commit: the caller owns the transaction.

Every write here is an upsert or a guarded update so that an activity retried after a
crash, or a Slack event delivered twice, converges on the same row.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from lucy.contracts import TaskStatus
from lucy.db.models import Channel, Task, User, Workspace

TERMINAL_STATUSES = (
    TaskStatus.COMPLETED.value,
    TaskStatus.FAILED.value,
    TaskStatus.CANCELLED.value,
    TaskStatus.TIMEOUT.value,
)


async def upsert_workspace(
    *, session: AsyncSession, slack_team_id: str, name: str | None = None, domain: str | None = None
) -> uuid.UUID:
    """The workspace id for a Slack team, creating the workspace on first contact."""
    stmt = (
        insert(Workspace)
        .values(slack_team_id=slack_team_id, name=name, domain=domain)
        .on_conflict_do_update(
            index_elements=[Workspace.slack_team_id],
            set_={
                "name": func.coalesce(insert(Workspace).excluded.name, Workspace.name),
                "domain": func.coalesce(insert(Workspace).excluded.domain, Workspace.domain),
                "deleted_at": None,
                "updated_at": func.now(),
            },
        )
        .returning(Workspace.id)
    )
    return (await session.execute(stmt)).scalar_one()


async def upsert_user(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    slack_user_id: str,
    display_name: str | None = None,
    is_bot: bool = False,
) -> uuid.UUID:
    """The user id for a Slack user in a workspace, creating the user on first contact."""
    ins = insert(User).values(
        workspace_id=workspace_id, slack_user_id=slack_user_id, display_name=display_name, is_bot=is_bot
    )
    stmt = ins.on_conflict_do_update(
        constraint="uq_users_workspace_slack_user",
        set_={
            "display_name": func.coalesce(ins.excluded.display_name, User.display_name),
            "updated_at": func.now(),
        },
    ).returning(User.id)
    return (await session.execute(stmt)).scalar_one()


async def upsert_channel(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    slack_channel_id: str,
    channel_type: str = "public",
    name: str | None = None,
) -> uuid.UUID:
    """The channel id for a Slack conversation in a workspace, creating it on first contact."""
    ins = insert(Channel).values(
        workspace_id=workspace_id,
        slack_channel_id=slack_channel_id,
        channel_type=channel_type,
        name=name,
        memory_scope_key=f"{workspace_id}:{slack_channel_id}",
    )
    stmt = ins.on_conflict_do_update(
        constraint="uq_channels_workspace_slack_channel",
        set_={"name": func.coalesce(ins.excluded.name, Channel.name), "updated_at": func.now()},
    ).returning(Channel.id)
    return (await session.execute(stmt)).scalar_one()


async def record_task_running(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    workflow_id: str,
    run_id: str,
    requester_id: uuid.UUID | None,
    channel_id: uuid.UUID | None,
    source: str,
    request_text: str,
    slack_channel_id: str,
    slack_thread_ts: str,
    started_at: datetime,
) -> uuid.UUID:
    """Create the task row as running, or move an existing one there.

    A row that already reached a terminal status is left as it is (a late retry never
    resurrects a finished task).
    """
    ins = insert(Task).values(
        workspace_id=workspace_id,
        workflow_id=workflow_id,
        run_id=run_id,
        requester_id=requester_id,
        channel_id=channel_id,
        source=source,
        status=TaskStatus.RUNNING.value,
        request_text=request_text,
        slack_channel_id=slack_channel_id,
        slack_thread_ts=slack_thread_ts,
        started_at=started_at,
    )
    stmt = ins.on_conflict_do_update(
        index_elements=[Task.workflow_id],
        set_={
            "status": TaskStatus.RUNNING.value,
            "run_id": ins.excluded.run_id,
            "started_at": func.coalesce(Task.started_at, ins.excluded.started_at),
            "updated_at": func.now(),
        },
        where=(Task.status.not_in(TERMINAL_STATUSES)) & (Task.workspace_id == workspace_id),
    ).returning(Task.id)
    task_id = (await session.execute(stmt)).scalar_one_or_none()
    if task_id is None:  # terminal already: return the existing row's id
        task_id = (
            await session.execute(
                select(Task.id).where(Task.workflow_id == workflow_id, Task.workspace_id == workspace_id)
            )
        ).scalar_one()
    return task_id


async def record_task_finished(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    workflow_id: str,
    status: str,
    completed_at: datetime,
    model: str | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cost_usd: float = 0.0,
    error_type: str | None = None,
    error_message: str | None = None,
    result_data: dict[str, Any] | None = None,
) -> bool:
    """Move a task to a terminal status once. Returns False when it was already terminal."""
    if status not in TERMINAL_STATUSES:
        raise ValueError(f"{status!r} is not a terminal task status")
    stmt = (
        update(Task)
        .where(
            Task.workflow_id == workflow_id,
            Task.workspace_id == workspace_id,
            Task.status.not_in(TERMINAL_STATUSES),
        )
        .values(
            status=status,
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=Decimal(str(cost_usd)),
            error_type=error_type,
            error_message=error_message,
            result_data=result_data or {},
            completed_at=completed_at,
        )
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def get_task(*, session: AsyncSession, workspace_id: uuid.UUID, workflow_id: str) -> Task | None:
    """The task row of a workflow, if any."""
    return (
        await session.execute(
            select(Task).where(Task.workflow_id == workflow_id, Task.workspace_id == workspace_id)
        )
    ).scalar_one_or_none()
