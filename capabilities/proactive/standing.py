"""Creating and changing standing jobs for a person, once for schedules and monitors.

Ingress calls this with who asked (Slack's signed payload says who; the role comes from
``users.info``). Only the owner or a workspace admin may change a standing job; guests may not
create any; every change is an ``audit_log`` entry. The row is written first and the Temporal
Schedule second: if the second step fails, the reconciler (worker start, maintenance) finishes
it, because the row is the truth. A kind (:class:`~capabilities.proactive.service.ScheduleService`,
:class:`~capabilities.proactive.monitors.MonitorService`) says how its rows are read and written.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from capabilities.proactive.contracts.schedules import StandingAction
from capabilities.proactive.mirror import StandingMirror
from capabilities.proactive.repository.monitors import MonitorRecord
from capabilities.proactive.repository.schedules import ScheduleRecord
from capabilities.proactive.repository.standing import Store
from lucy.contracts.ids import idempotency_key
from lucy.db.repositories.ledger import record_audit
from lucy.db.repositories.tenants import (
    get_user,
    tenant_transaction,
    upsert_channel,
    upsert_user,
    upsert_workspace,
)
from lucy.roles import is_admin

R = TypeVar("R", ScheduleRecord, MonitorRecord)
# Stores a new row: called with session, workspace_id, owner_id, channel_id and the row's values.
Insert = Callable[..., Awaitable[Any]]


class ScheduleRefused(Exception):
    """A change the rules refuse; the message is for the person who asked, as is."""


@dataclass(frozen=True)
class Caller:
    """Who asks, as Slack vouches for them (signed payload) and ``users.info`` describes them."""

    slack_team_id: str
    slack_user_id: str
    role: str | None
    timezone: str = "UTC"


@dataclass(frozen=True)
class NewRow:
    """A row to create under the id its confirmation chose, and how to store it."""

    row_id: uuid.UUID
    slack_channel_id: str
    channel_type: str
    insert: Insert
    values: dict[str, Any]  # the kind's own values, for ``insert``
    details: dict[str, Any]  # for the audit entry


class StandingService(Generic[R]):
    """The rules both kinds share; a kind reads and writes its rows."""

    noun: ClassVar[str]  # "schedule" | "monitor": messages and audit actions
    store: ClassVar[Store[Any]]  # the kind's rows
    over_limit_hint: ClassVar[str] = ""  # after "Delete one first (`/lucy <noun>s`)"

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], mirror: StandingMirror, *, min_interval: timedelta
    ) -> None:
        self._sessions = sessions
        self._mirror = mirror
        self._min_interval = min_interval

    async def _live_and_limit(self, session: AsyncSession, workspace_id: uuid.UUID) -> tuple[int, int]:
        """How many live rows of the kind the workspace has, and how many it may have."""
        raise NotImplementedError

    async def _refuse_over_limit(self, session: AsyncSession, workspace_id: uuid.UUID) -> None:
        """Raise :class:`ScheduleRefused` when the workspace has all it may have."""
        live, limit = await self._live_and_limit(session, workspace_id)
        if live >= limit:
            raise ScheduleRefused(
                f"This workspace has {limit} {self.noun}s already, its limit. Delete one first "
                f"(`/lucy {self.noun}s`){self.over_limit_hint}."
            )

    async def _store_change(
        self, session: AsyncSession, record: R, action: StandingAction, caller: Caller
    ) -> None:
        """Pause, resume or delete the row (run now changes no row)."""
        raise NotImplementedError

    async def _after_change(self, record: R) -> None:
        """What a kind does once Temporal has the change (a schedule notes its next run)."""

    def refuse_guest(self, caller: Caller) -> None:
        if caller.role == "guest":
            raise ScheduleRefused(f"Guests can't create {self.noun}s. Ask a member of this workspace.")

    async def _create(self, caller: Caller, new: NewRow, *, request_key: str) -> R:
        """Create the row (idempotent: its id), then its Temporal Schedule."""
        async with self._sessions.begin() as session:
            workspace_id = await upsert_workspace(session=session, slack_team_id=caller.slack_team_id)
            record = await self.store.get(session, workspace_id, new.row_id)
            if record is None:
                await self._refuse_over_limit(session, workspace_id)
                owner_id, channel_id = await owner_and_channel(
                    session, workspace_id, caller, new.slack_channel_id, new.channel_type
                )
                await new.insert(
                    session=session,
                    workspace_id=workspace_id,
                    owner_id=owner_id,
                    channel_id=channel_id,
                    **new.values,
                )
                action = f"{self.noun}.created"
                await audit(session, workspace_id, caller, action, new.row_id, request_key, **new.details)
                record = await self.store.get(session, workspace_id, new.row_id)
        assert record is not None
        await self._mirror.put(record)
        return record

    async def change(self, item_id: str, action: StandingAction, caller: Caller, *, request_key: str) -> R:
        """Pause, resume, run now or delete, for the owner or a workspace admin.

        Raises:
            ScheduleRefused: no such item in the caller's workspace, or not theirs to change.
        """
        record = await self._changeable(item_id, caller)
        async with tenant_transaction(self._sessions, record.workspace_id) as session:
            await self._store_change(session, record, action, caller)
            await audit(
                session, record.workspace_id, caller, f"{self.noun}.{action.value}", record.id, request_key
            )
        note = f"{action.value} by {caller.slack_user_id}"
        if action == StandingAction.PAUSE:
            await self._mirror.pause(record.temporal_id, note)
        elif action == StandingAction.RESUME:
            await self._mirror.resume(record.temporal_id, note)
        elif action == StandingAction.RUN_NOW:
            await self._mirror.run_now(record.temporal_id)
        elif action == StandingAction.DELETE:
            await self._mirror.delete(record.temporal_id)
            return record
        await self._after_change(record)
        return await self.get(caller.slack_team_id, item_id) or record

    async def _changeable(self, item_id: str, caller: Caller) -> R:
        record = await self.get(caller.slack_team_id, item_id)
        if record is None:
            raise ScheduleRefused(
                f"I can't find that {self.noun} in this workspace (it may have been deleted)."
            )
        if record.owner_slack_id != caller.slack_user_id and not is_admin(caller.role):
            raise ScheduleRefused(
                f"Only <@{record.owner_slack_id}> (who created it) or a workspace admin can change it."
            )
        return record

    async def get(self, slack_team_id: str, item_id: str) -> R | None:
        try:
            wanted = uuid.UUID(item_id)
        except ValueError:
            return None
        async with self._sessions.begin() as session:
            workspace_id = await upsert_workspace(session=session, slack_team_id=slack_team_id)
            return await self.store.get(session, workspace_id, wanted)

    async def visible_to(self, caller: Caller) -> list[R]:
        """The caller's items; every item of the workspace for an admin."""
        async with self._sessions.begin() as session:
            workspace_id = await upsert_workspace(session=session, slack_team_id=caller.slack_team_id)
            if is_admin(caller.role):
                return await self.store.list(session, workspace_id, None)
            user = await get_user(
                session=session, workspace_id=workspace_id, slack_user_id=caller.slack_user_id
            )
            if user is None:
                return []
            return await self.store.list(session, workspace_id, user.id)


async def owner_and_channel(
    session: AsyncSession, workspace_id: uuid.UUID, caller: Caller, slack_channel_id: str, channel_type: str
) -> tuple[uuid.UUID, uuid.UUID]:
    """The ids of who creates a schedule or monitor, and of the channel it posts in (both
    recorded on the way, as ingress records everyone it meets)."""
    owner_id = await upsert_user(
        session=session, workspace_id=workspace_id, slack_user_id=caller.slack_user_id, role=caller.role
    )
    channel_id = await upsert_channel(
        session=session,
        workspace_id=workspace_id,
        slack_channel_id=slack_channel_id,
        channel_type=channel_type,
    )
    return owner_id, channel_id


async def audit(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    caller: Caller,
    action: str,
    entity_id: uuid.UUID,
    request_key: str,
    **details: Any,
) -> None:
    """One ``audit_log`` entry for a change to a schedule or a monitor (``action``'s first word
    is the entity type), once per request."""
    await record_audit(
        session=session,
        workspace_id=workspace_id,
        idempotency_key=idempotency_key(action, str(entity_id), request_key),
        occurred_at=datetime.now(UTC),
        actor_type="user",
        actor_id=caller.slack_user_id,
        action=action,
        entity_type="heartbeat" if action.startswith("monitor.") else action.split(".")[0],
        entity_id=str(entity_id),
        details={"role": caller.role or "", **{k: v for k, v in details.items() if v}},
    )
