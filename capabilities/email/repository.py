"""The AgentMail inboxes bound to live workspaces: binding one, and the list the email
listener subscribes to.

Read through ``lucy_email_inboxes()`` (SECURITY DEFINER, migration 0013): ids only, no tenant
data, because the application role cannot see other tenants' workspace rows. A binding is
unique across tenants by ``uq_workspaces_email_inbox`` (migration 0015), which no tenant-scoped
read could check: two workspaces binding one inbox at once cannot both win.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lucy.db.repositories.webhooks import update_workspace_settings

UNIQUE_INBOX = "uq_workspaces_email_inbox"


async def bind_inbox(*, session: AsyncSession, workspace_id: uuid.UUID, inbox_id: str) -> bool:
    """Bind ``inbox_id`` (lower-cased) to the workspace the transaction is scoped to; False when
    another live workspace holds it (the transaction stays usable: a savepoint is rolled back).
    Binding the workspace's own inbox again is a no-op that returns True."""
    try:
        async with session.begin_nested():
            await update_workspace_settings(
                session=session, workspace_id=workspace_id, values={"email_inbox": inbox_id.lower()}
            )
    except IntegrityError as exc:
        if UNIQUE_INBOX not in str(exc.orig):
            raise
        return False
    return True


async def bound_inboxes(*, session: AsyncSession) -> list[str]:
    """Every AgentMail inbox id bound with ``/lucy email connect`` (lower-cased, sorted)."""
    rows = await session.execute(text("SELECT inbox FROM lucy_email_inboxes() AS inbox"))
    return [str(r.inbox) for r in rows]
