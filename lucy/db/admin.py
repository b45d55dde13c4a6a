"""Chores of the database's owner (``lucy db partitions`` and ``lucy db rotate-keys``): partition
maintenance with retention, and re-encrypting integration credentials under the primary key."""

from __future__ import annotations

from lucy.settings import Settings


async def run(settings: Settings, action: str, months_ahead: int) -> str:
    """Partition maintenance and key rotation, as the schema owner."""
    from datetime import UTC, datetime

    from lucy.crypto import KeyRing
    from lucy.db import partitions
    from lucy.db.repositories.credentials import rotate_credentials
    from lucy.db.repositories.tenants import list_workspace_ids, tenant_transaction
    from lucy.db.session import create_engine, create_sessionmaker

    engine = create_engine(
        settings.database, url=settings.database.migration_url, pool_size=1, max_overflow=0
    )
    try:
        if action == "partitions":
            async with engine.begin() as conn:
                report = await partitions.maintain(
                    conn,
                    today=datetime.now(UTC).date(),
                    retention_months=settings.database.database_retention_months,
                    months_ahead=months_ahead,
                )
            drained = ", ".join(f"{n} from {t}_default" for t, n in report.drained.items())
            return (
                f"partitions created: {', '.join(report.created) or 'none'}; "
                f"dropped: {', '.join(report.dropped) or 'none'}"
                + (f"; rows moved: {drained}" if drained else "")
            )
        keys = settings.security.encryption_keys
        keyring = KeyRing.parse(keys.get_secret_value() if keys else None)
        sessions = create_sessionmaker(engine)
        async with sessions.begin() as session:
            workspace_ids = await list_workspace_ids(session=session)
        total = 0
        for workspace_id in workspace_ids:
            async with tenant_transaction(sessions, workspace_id) as session:
                total += await rotate_credentials(session=session, workspace_id=workspace_id, keyring=keyring)
        return f"re-encrypted {total} credential(s) with key {keyring.primary_id!r}"
    finally:
        await engine.dispose()
