"""Store helpers the tests use and production does not (moved out of lucy.db.repositories)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from lucy.crypto import KeyRing
from lucy.db.models import (
    CostLog,
    FeatureFlag,
    Integration,
    IntegrationCredential,
)
from lucy.db.repositories.credentials import _credential_aad
from lucy.db.repositories.ledger import CostRollup


async def set_feature_flag(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    flag_key: str,
    enabled: bool,
    value: dict[str, Any] | None = None,
) -> None:
    ins = insert(FeatureFlag).values(
        workspace_id=workspace_id, flag_key=flag_key, enabled=enabled, value=value or {}
    )
    await session.execute(
        ins.on_conflict_do_update(
            constraint="uq_feature_flags_workspace_key",
            set_={"enabled": ins.excluded.enabled, "value": ins.excluded.value, "updated_at": func.now()},
            where=FeatureFlag.workspace_id == workspace_id,
        )
    )


async def upsert_integration(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    provider: str,
    name: str = "default",
    provider_config: dict[str, Any] | None = None,
) -> uuid.UUID:
    ins = insert(Integration).values(
        workspace_id=workspace_id, provider=provider, name=name, provider_config=provider_config or {}
    )
    stmt = ins.on_conflict_do_update(
        constraint="uq_integrations_workspace_provider_name",
        set_={"provider_config": ins.excluded.provider_config, "updated_at": func.now()},
        where=Integration.workspace_id == workspace_id,
    ).returning(Integration.id)
    return (await session.execute(stmt)).scalar_one()


async def store_credential(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    integration_id: uuid.UUID,
    credential_type: str,
    plaintext: str,
    keyring: KeyRing,
    expires_at: datetime | None = None,
) -> None:
    """Encrypt and store (or replace) one credential of an integration."""
    key_id, blob = keyring.encrypt(
        plaintext, aad=_credential_aad(workspace_id, integration_id, credential_type)
    )
    ins = insert(IntegrationCredential).values(
        workspace_id=workspace_id,
        integration_id=integration_id,
        credential_type=credential_type,
        key_id=key_id,
        encrypted_value=blob,
        expires_at=expires_at,
    )
    await session.execute(
        ins.on_conflict_do_update(
            constraint="uq_integration_credentials_type",
            set_={
                "key_id": ins.excluded.key_id,
                "encrypted_value": ins.excluded.encrypted_value,
                "expires_at": ins.excluded.expires_at,
                "updated_at": func.now(),
            },
            where=IntegrationCredential.workspace_id == workspace_id,
        )
    )


async def read_credential(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    integration_id: uuid.UUID,
    credential_type: str,
    keyring: KeyRing,
) -> str | None:
    """The decrypted credential, or None if there is none."""
    row = (
        await session.execute(
            select(IntegrationCredential).where(
                IntegrationCredential.workspace_id == workspace_id,
                IntegrationCredential.integration_id == integration_id,
                IntegrationCredential.credential_type == credential_type,
                IntegrationCredential.deleted_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return keyring.decrypt(
        row.key_id, row.encrypted_value, aad=_credential_aad(workspace_id, integration_id, credential_type)
    )


async def monthly_cost_from_log(*, session: AsyncSession, workspace_id: uuid.UUID, month: date) -> CostRollup:
    """The same totals summed from ``cost_log`` itself (slow; for audits and tests)."""
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    row = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(CostLog.prompt_tokens), 0),
                func.coalesce(func.sum(CostLog.completion_tokens), 0),
                func.coalesce(func.sum(CostLog.cost_usd), 0),
            ).where(
                CostLog.workspace_id == workspace_id, CostLog.created_at >= start, CostLog.created_at < end
            )
        )
    ).one()
    return CostRollup(int(row[0]), int(row[1]), int(row[2]), Decimal(row[3]))
