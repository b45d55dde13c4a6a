"""The webhook triggers' own reads: which live workspace a trigger belongs to."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from lucy.db.repositories.webhooks import InboxOwner, owner_of

_TRIGGER_OWNER = text("SELECT workspace_id, slack_team_id FROM lucy_webhook_trigger_workspace(:key) LIMIT 1")


async def trigger_owner(*, session: AsyncSession, trigger_id: str) -> InboxOwner | None:
    """The live workspace a webhook trigger belongs to (``lucy_webhook_trigger_workspace``)."""
    return await owner_of(session=session, lookup=_TRIGGER_OWNER, key=trigger_id)
