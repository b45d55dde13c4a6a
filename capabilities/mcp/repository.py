"""A workspace's MCP servers in PostgreSQL (``mcp_servers``) and their tokens (an
``integrations`` row of provider ``mcp`` with its encrypted ``integration_credentials`` row,
so ``lucy db rotate-keys`` re-encrypts them with the others). Every function takes a session
whose tenant is already set: row-level security keeps each workspace to its own servers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from capabilities.mcp import rules
from capabilities.tools.contracts import WorkspaceTool
from lucy.crypto import CryptoError, KeyRing
from lucy.db.models import Integration, IntegrationCredential, McpServer
from lucy.db.repositories.credentials import _credential_aad
from lucy.settings import Settings

PROVIDER = "mcp"
TOKEN = "bearer_token"


@dataclass(frozen=True)
class ServerRow:
    """One server as the commands and activities need it (never its token)."""

    name: str
    url: str
    catalog: dict[str, Any]
    risk_overrides: dict[str, Any]
    has_token: bool
    added_by: str
    refreshed_at: datetime | None


def _row(server: McpServer) -> ServerRow:
    return ServerRow(
        name=server.name,
        url=server.url,
        catalog=dict(server.catalog or {}),
        risk_overrides=dict(server.risk_overrides or {}),
        has_token=server.integration_id is not None,
        added_by=server.added_by,
        refreshed_at=server.refreshed_at,
    )


async def _get(session: AsyncSession, workspace_id: uuid.UUID, name: str) -> McpServer | None:
    return (
        await session.execute(
            select(McpServer).where(McpServer.workspace_id == workspace_id, McpServer.name == name)
        )
    ).scalar_one_or_none()


async def get_server(*, session: AsyncSession, workspace_id: uuid.UUID, name: str) -> ServerRow | None:
    server = await _get(session, workspace_id, name)
    return _row(server) if server else None


async def list_servers(*, session: AsyncSession, workspace_id: uuid.UUID) -> list[ServerRow]:
    rows = await session.execute(
        select(McpServer).where(McpServer.workspace_id == workspace_id).order_by(McpServer.name)
    )
    return [_row(s) for s in rows.scalars()]


async def save_server(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    name: str,
    url: str,
    catalog: dict[str, Any],
    added_by: str,
) -> None:
    """Add the server, or replace its address and catalog (its overrides and token stay)."""
    server = await _get(session, workspace_id, name)
    if server is None:
        server = McpServer(
            workspace_id=workspace_id, name=name, risk_overrides={}, added_by=added_by, url=url
        )
        session.add(server)
    server.url, server.catalog, server.refreshed_at = url, catalog, datetime.now(UTC)
    await session.flush()


async def save_catalog(
    *, session: AsyncSession, workspace_id: uuid.UUID, name: str, catalog: dict[str, Any]
) -> bool:
    server = await _get(session, workspace_id, name)
    if server is None:
        return False
    server.catalog, server.refreshed_at = catalog, datetime.now(UTC)
    await session.flush()
    return True


async def set_risk(
    *, session: AsyncSession, workspace_id: uuid.UUID, name: str, tool: str, risk: str
) -> bool:
    server = await _get(session, workspace_id, name)
    if server is None:
        return False
    server.risk_overrides = {**(server.risk_overrides or {}), tool: risk}
    await session.flush()
    return True


async def remove_server(*, session: AsyncSession, workspace_id: uuid.UUID, name: str) -> ServerRow | None:
    server = await _get(session, workspace_id, name)
    if server is None:
        return None
    gone = _row(server)
    if server.integration_id is not None:
        await session.execute(delete(Integration).where(Integration.id == server.integration_id))
    await session.delete(server)
    await session.flush()
    return gone


async def _credential(session: AsyncSession, integration_id: uuid.UUID) -> IntegrationCredential | None:
    return (
        await session.execute(
            select(IntegrationCredential).where(
                IntegrationCredential.integration_id == integration_id,
                IntegrationCredential.credential_type == TOKEN,
            )
        )
    ).scalar_one_or_none()


def token_keyring(settings: Settings) -> KeyRing | None:
    """The key ring that encrypts servers' tokens (``LUCY_ENCRYPTION_KEYS``); None without keys
    or with malformed ones (then no token is stored or read)."""
    keys = settings.security.encryption_keys
    if keys is None or not keys.get_secret_value().strip():
        return None
    try:
        return KeyRing.parse(keys.get_secret_value())
    except CryptoError:
        return None


async def store_token(
    *, session: AsyncSession, workspace_id: uuid.UUID, name: str, token: str, keyring: KeyRing
) -> bool:
    """Encrypt ``token`` for server ``name`` (bound to its row); False when there is no server."""
    server = await _get(session, workspace_id, name)
    if server is None:
        return False
    if server.integration_id is None:
        integration = Integration(workspace_id=workspace_id, provider=PROVIDER, name=name, provider_config={})
        session.add(integration)
        await session.flush()
        server.integration_id = integration.id
    aad = _credential_aad(workspace_id, server.integration_id, TOKEN)
    key_id, blob = keyring.encrypt(token, aad=aad)
    credential = await _credential(session, server.integration_id)
    if credential is None:
        credential = IntegrationCredential(
            workspace_id=workspace_id, integration_id=server.integration_id, credential_type=TOKEN
        )
        session.add(credential)
    credential.key_id, credential.encrypted_value = key_id, blob
    await session.flush()
    return True


async def read_token(
    *, session: AsyncSession, workspace_id: uuid.UUID, name: str, keyring: KeyRing | None
) -> str | None:
    """The server's token in clear, for the one request that sends it; None when it has none."""
    server = await _get(session, workspace_id, name)
    if server is None or server.integration_id is None or keyring is None:
        return None
    credential = await _credential(session, server.integration_id)
    if credential is None:
        return None
    aad = _credential_aad(workspace_id, server.integration_id, TOKEN)
    return keyring.decrypt(credential.key_id, credential.encrypted_value, aad=aad)


async def workspace_tools(*, session: AsyncSession, workspace_id: uuid.UUID) -> list[WorkspaceTool]:
    """Every tool of the workspace's servers, as a task is offered them (from the cached catalogs)."""
    found: list[WorkspaceTool] = []
    for server in await list_servers(session=session, workspace_id=workspace_id):
        found.extend(rules.workspace_tools(server.name, server.catalog, server.risk_overrides))
    return found


async def servers_due(*, session: AsyncSession, stale_hours: int, most: int) -> list[tuple[uuid.UUID, str]]:
    """(workspace id, server name) of every catalog older than ``stale_hours``, across tenants
    (``lucy_mcp_servers_due``: ids and names only)."""
    rows = await session.execute(
        text("SELECT workspace_id, name FROM lucy_mcp_servers_due(make_interval(hours => :h), :n)"),
        {"h": stale_hours, "n": most},
    )
    return [(uuid.UUID(str(r[0])), str(r[1])) for r in rows]
