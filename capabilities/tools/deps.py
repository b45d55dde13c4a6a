"""What the worker hands every tool's ``build``: the clients and settings a tool activity needs."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from capabilities.tools.egress import EgressGuard
from lucy.settings import Settings


@dataclass(frozen=True)
class ToolDeps:
    settings: Settings
    http: httpx.AsyncClient
    slack: AsyncWebClient | None
    egress: EgressGuard
    # The store, for tools that read or write the workspace's own records (memory, ``use_skill``).
    sessions: async_sessionmaker[AsyncSession] | None = None
