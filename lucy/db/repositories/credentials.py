"""Integration credentials at rest: re-encryption under the primary key (``lucy db rotate-keys``)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lucy.crypto import KeyRing
from lucy.db.models import (
    IntegrationCredential,
)


def _credential_aad(workspace_id: uuid.UUID, integration_id: uuid.UUID, credential_type: str) -> bytes:
    return f"{workspace_id}|{integration_id}|{credential_type}".encode()


async def rotate_credentials(*, session: AsyncSession, workspace_id: uuid.UUID, keyring: KeyRing) -> int:
    """Re-encrypt this workspace's credentials that are not under the primary key; returns how many."""
    rows = (
        await session.execute(
            select(IntegrationCredential)
            .where(
                IntegrationCredential.workspace_id == workspace_id,
                IntegrationCredential.key_id != keyring.primary_id,
            )
            .with_for_update()
        )
    ).scalars()
    count = 0
    for row in rows:
        aad = _credential_aad(workspace_id, row.integration_id, row.credential_type)
        row.key_id, row.encrypted_value = keyring.encrypt(
            keyring.decrypt(row.key_id, row.encrypted_value, aad=aad), aad=aad
        )
        count += 1
    await session.flush()
    return count
