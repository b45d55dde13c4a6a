"""What ingress needs, built once by the composition root (CLI, tests), and how Bolt listeners
get it: typed, from the request context (:func:`listener_deps`), never by string keys."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.async_app import AsyncBoltContext
from slack_bolt.kwargs_injection.async_args import AsyncArgs
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from capabilities.task.listeners.directory import UserDirectory
from capabilities.task.listeners.start import TaskStarter
from lucy.db.session import create_sessionmaker
from lucy.settings import Settings
from lucy.signing import ClaimSigner

CONTEXT_KEY = "lucy"


@dataclass
class IngressDeps:
    """What ingress needs; the composition root (CLI, tests) builds it."""

    settings: Settings
    engine: AsyncEngine
    temporal: Callable[[], Awaitable[Client]]
    sessions: async_sessionmaker[AsyncSession] = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = create_sessionmaker(self.engine)


def secret_text(value: Any) -> str | None:
    """A ``SecretStr`` setting's text, or None when it is not set."""
    return value.get_secret_value() if value is not None else None


def lazy_temporal(connect: Callable[[], Awaitable[Client]]) -> Callable[[], Awaitable[Client]]:
    """Connect on first use and keep the client; a failed connect is retried on the next call."""
    client: Client | None = None
    lock = asyncio.Lock()

    async def get() -> Client:
        nonlocal client
        if client is None:
            async with lock:
                if client is None:
                    client = await connect()
        return client

    return get


@dataclass(frozen=True)
class ListenerDeps:
    """What one Bolt listener may use: the task starter, the Temporal client, database sessions,
    the cached Slack user directory, the click signer and the settings."""

    starter: TaskStarter
    temporal: Client
    sessions: async_sessionmaker[AsyncSession]
    directory: UserDirectory
    signer: ClaimSigner
    settings: Settings


def modal_metadata(view: dict[str, Any]) -> dict[str, Any]:
    """A modal's ``private_metadata`` (JSON Lucy wrote when it opened it); {} when unreadable."""
    try:
        found = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def clicker_of(body: dict[str, Any], context: AsyncBoltContext) -> tuple[str, str]:
    """(team, user) of an interaction payload (a button, a modal): Slack's own ids, never content."""
    team = str((body.get("team") or {}).get("id") or context.team_id or "")
    return team, str((body.get("user") or {}).get("id") or "")


def listener_deps(context: AsyncBoltContext) -> ListenerDeps:
    """The listener's dependencies, put in the request context by the ingress middleware."""
    deps = context[CONTEXT_KEY]
    assert isinstance(deps, ListenerDeps)
    return deps


def action_listener(handle: Callable[[AsyncArgs], Awaitable[None]]) -> Callable[[AsyncArgs], Awaitable[None]]:
    """The Bolt listener of a Block Kit action: acknowledge at once, then ``handle`` it with
    Bolt's own bundle of the listener's arguments (``args``: body, action, context, client,
    respond)."""

    async def listener(args: AsyncArgs) -> None:
        await args.ack()
        await handle(args)

    return listener
