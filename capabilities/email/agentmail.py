"""Where the official AgentMail SDK is pointed: its environment (HTTP and WebSocket URLs) from
``LUCY_AGENTMAIL_BASE_URL``, and an ``AsyncAgentMail`` client built from the tool settings.

Shared by the activities (sends, replies: ``capabilities.email.activities.agentmail_sdk``) and the ingress's
listener mode (``capabilities.email.listeners.websocket``), which may not import each other. The SDK is
imported lazily, inside the functions, so processes that never talk to AgentMail do not load it.

``LUCY_AGENTMAIL_BASE_URL`` keeps its documented form (``https://api.agentmail.to/v0``); the SDK
adds ``v0/...`` to every path itself, so the ``/v0`` suffix is removed for it. AgentMail's own
hosts map onto the SDK's named environments (``api.agentmail.to`` -> ``wss://ws.agentmail.to``);
any other host (a local fake, a proxy) serves both on the same host: ``http`` -> ``ws``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import httpx

from lucy.settings import ToolSettings

if TYPE_CHECKING:
    from agentmail import AsyncAgentMail
    from agentmail.environment import AgentMailEnvironment

# Seconds for one HTTP call (the SDK takes one number; connect errors surface as httpx errors).
AGENTMAIL_TIMEOUT_S = 45.0
# The SDK's named production hosts: HTTP origin -> WebSocket origin.
_KNOWN_WS = {
    "https://api.agentmail.to": "wss://ws.agentmail.to",
    "https://x402.api.agentmail.to": "wss://x402.ws.agentmail.to",
    "https://mpp.api.agentmail.to": "wss://mpp.ws.agentmail.to",
    "https://api.agentmail.eu": "wss://ws.agentmail.eu",
}


def agentmail_origin(base_url: str) -> str:
    """``LUCY_AGENTMAIL_BASE_URL`` without its ``/v0`` suffix: what the SDK prefixes its paths with."""
    base = base_url.rstrip("/")
    return base.removesuffix("/v0")


def agentmail_ws_url(base_url: str) -> str:
    """The WebSocket origin that goes with ``LUCY_AGENTMAIL_BASE_URL``."""
    origin = agentmail_origin(base_url)
    if origin in _KNOWN_WS:
        return _KNOWN_WS[origin]
    parts = urlsplit(origin)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


def agentmail_environment(base_url: str) -> AgentMailEnvironment:
    """The SDK environment for ``LUCY_AGENTMAIL_BASE_URL``."""
    from agentmail.environment import AgentMailEnvironment

    return AgentMailEnvironment(http=agentmail_origin(base_url), websockets=agentmail_ws_url(base_url))


def build_agentmail_client(
    settings: ToolSettings, *, http: httpx.AsyncClient | None = None
) -> AsyncAgentMail:
    """An ``AsyncAgentMail`` for these settings (the API key must be set; callers check first).

    Args:
        settings: the tool settings (``LUCY_AGENTMAIL_*``).
        http: a shared ``httpx.AsyncClient`` to send through (the worker's); without it the SDK
            makes its own.

    The SDK's own retries are turned off per request (``request_options={"max_retries": 0}``,
    see ``capabilities.email.activities.agentmail_sdk.NO_RETRIES``): it has no client-wide switch.
    """
    from agentmail import AsyncAgentMail

    key = settings.agentmail_api_key
    if key is None:
        raise ValueError("LUCY_AGENTMAIL_API_KEY is not set")
    return AsyncAgentMail(
        api_key=key.get_secret_value(),
        environment=agentmail_environment(settings.agentmail_base_url),
        timeout=AGENTMAIL_TIMEOUT_S,
        httpx_client=http,
        follow_redirects=False if http is None else None,
    )


# What AgentMail answers for an inbox that is not the organisation's (or not an inbox at all).
_NOT_OURS = frozenset({400, 403, 404, 422})
# Seconds for the binding check: ``/lucy email connect`` answers within Slack's 3 seconds.
INBOX_CHECK_TIMEOUT_S = 2


async def inbox_in_organisation(settings: ToolSettings, inbox_id: str) -> bool | None:
    """Whether ``inbox_id`` is one of the inboxes of the AgentMail organisation Lucy's API key
    belongs to (``inboxes.get``): True, False (AgentMail says not found, forbidden or invalid),
    or None when it could not be asked (email not configured, key refused, AgentMail down)."""
    from agentmail.core.api_error import ApiError

    if settings.agentmail_api_key is None:
        return None
    async with httpx.AsyncClient(follow_redirects=False) as http:
        client = build_agentmail_client(settings, http=http)
        try:
            await client.inboxes.get(
                inbox_id, request_options={"max_retries": 0, "timeout_in_seconds": INBOX_CHECK_TIMEOUT_S}
            )
        except ApiError as exc:
            return False if exc.status_code in _NOT_OURS else None
        except httpx.HTTPError:
            return None
    return True
