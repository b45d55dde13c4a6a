"""The memory tools' activities against the real PostgreSQL (as ``lucy_app``): bad arguments are
refused in plain words and write nothing, a retried step writes once, an expiry is kept, and
``forget`` deletes only the requester's own memory unless an admin asks. Without a Slack client
the role is the one the ingress recorded."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select
from temporalio.exceptions import ApplicationError

from capabilities.memory.activities.tools import MemoryActivities
from capabilities.tools.contracts import ToolRequest
from capabilities.tools.deps import ToolDeps
from capabilities.tools.egress import EgressGuard
from lucy.db.models import Memory
from lucy.db.repositories.tenants import set_tenant, upsert_user, upsert_workspace
from lucy.db.session import create_sessionmaker
from lucy.settings import Settings


def _request(
    workspace_id: uuid.UUID, tool: str, user: str = "U0ALICE", step: int = 1, **args: object
) -> ToolRequest:
    return ToolRequest(
        workflow_id=f"lucy-task-T1-C0GENERAL-{uuid.uuid4().hex[:6]}",
        step=step,
        tool=tool,
        arguments=dict(args),
        workspace_id=str(workspace_id),
        slack_channel_id="C0GENERAL",
        thread_ts="1.2",
        slack_user_id=user,
    )


async def test_remember_refuses_bad_arguments_writes_once_and_forget_checks_whose(engine, settings: Settings):
    sessions = create_sessionmaker(engine)
    async with sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=f"T{uuid.uuid4().hex[:10]}")
        for user, role in (("U0ALICE", "member"), ("U0BOB", "member"), ("U0BOSS", "admin")):
            await upsert_user(session=session, workspace_id=workspace_id, slack_user_id=user, role=role)
    async with httpx.AsyncClient() as http:
        acts = MemoryActivities(
            ToolDeps(settings=settings, http=http, slack=None, egress=EgressGuard(), sessions=sessions)
        )
        for args, why in (
            ({"text": "x" * 1001, "scope": "me"}, "at most 1000 characters"),
            ({"text": "   ", "scope": "me"}, "nothing to remember"),
            ({"text": "hi", "scope": "everyone"}, "scope must be one of"),
            ({"text": "hi", "scope": "me", "expires_in_days": -3}, "expires_in_days"),
        ):
            with pytest.raises(ApplicationError, match=why) as refused:
                await acts.remember(_request(workspace_id, "remember", **args))
            assert refused.value.non_retryable
        request = _request(
            workspace_id, "remember", text="the demo is on Friday", scope="channel", expires_in_days=7
        )
        first = await acts.remember(request)
        again = await acts.remember(request)  # Temporal retried the step
        assert first.output == again.output and "Remembered as memory" in first.output
        async with sessions.begin() as session:
            await set_tenant(session=session, workspace_id=workspace_id)
            (row,) = (
                await session.execute(select(Memory).where(Memory.workspace_id == workspace_id))
            ).scalars()
            assert row.expires_at is not None and row.source_ts == "1.2"
        memory_id = str(row.id)

        with pytest.raises(ApplicationError, match="only its author or a workspace admin"):
            await acts.forget(_request(workspace_id, "forget", user="U0BOB", memory_id=memory_id))
        found = await acts.recall(_request(workspace_id, "recall", user="U0BOB", query="when is the demo"))
        assert memory_id in found.output  # a channel memory: Bob may read it, not forget it
        assert (
            "Forgot"
            in (
                await acts.forget(_request(workspace_id, "forget", user="U0BOSS", memory_id=memory_id))
            ).output
        )
        gone = await acts.forget(_request(workspace_id, "forget", memory_id=memory_id))
        assert not gone.ok and "There is no memory" in gone.output
        assert (
            await acts.recall(_request(workspace_id, "recall", query="demo"))
        ).output == "No memory matches that."
