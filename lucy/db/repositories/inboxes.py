"""The AgentMail inboxes bound to live workspaces, for the email listener's subscription.

Read through ``lucy_email_inboxes()`` (SECURITY DEFINER, migration 0013): ids only, no tenant
data, because the application role cannot see other tenants' workspace rows.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def bound_inboxes(*, session: AsyncSession) -> list[str]:
    """Every AgentMail inbox id bound with ``/lucy email connect`` (lower-cased, sorted)."""
    rows = await session.execute(text("SELECT inbox FROM lucy_email_inboxes() AS inbox"))
    return [str(r.inbox) for r in rows]
