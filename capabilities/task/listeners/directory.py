"""Who is asking: Slack user profiles from ``users.info``, cached per process.

A burst of events from one person becomes one ``users.info`` call, not one per event. A
failed look-up (Slack down, missing scope) never blocks a task, but it fails closed: the
request runs as a guest's (:func:`requester_role`) until the next successful look-up, and
the person is told (``UNVERIFIED``).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from lucy.logging import get_logger
from lucy.roles import role_of

log = get_logger(__name__)


@dataclass(frozen=True)
class SlackUser:
    user_id: str
    display_name: str | None
    timezone: str | None
    role: str  # owner / admin / member / guest (restricted, or from another organisation)
    is_bot: bool
    deleted: bool


UNVERIFIED = (
    "I couldn't verify your Slack account just now, so I'm handling this as a guest's request: "
    "I'll answer, but without tools. Please try again in a few minutes."
)


def requester_role(profile: SlackUser | None) -> str:
    """The role a request runs with: Slack's own record, or ``guest`` when Slack could not be
    asked (identity is never assumed)."""
    return profile.role if profile is not None else "guest"


class UserDirectory:
    """A small TTL + LRU cache in front of ``users.info``."""

    def __init__(self, ttl_s: float = 300.0, max_entries: int = 10_000) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[float, SlackUser]] = OrderedDict()
        self._in_flight: dict[tuple[str, str], asyncio.Future[SlackUser | None]] = {}

    async def get(self, client: AsyncWebClient, team_id: str, user_id: str) -> SlackUser | None:
        """The user's profile: from the cache, from a look-up already under way, or from Slack."""
        key = (team_id, user_id)
        hit = self._entries.get(key)
        if hit is not None and hit[0] > time.monotonic():
            self._entries.move_to_end(key)
            return hit[1]
        pending = self._in_flight.get(key)
        if pending is None:  # single flight: concurrent requests share one users.info call
            pending = asyncio.ensure_future(self._fetch(client, key))
            self._in_flight[key] = pending
            pending.add_done_callback(lambda _: self._in_flight.pop(key, None))
        return await asyncio.shield(pending)

    async def _fetch(self, client: AsyncWebClient, key: tuple[str, str]) -> SlackUser | None:
        user_id = key[1]
        try:
            response = await client.users_info(user=user_id)
        except SlackApiError as exc:
            log.warning(
                "users.info failed; continuing with the id only", error=str(exc.response.get("error"))
            )
            return None
        except Exception as exc:  # a profile is a nicety, never a blocker
            log.warning("users.info unreachable; continuing with the id only", error=exc.__class__.__name__)
            return None
        raw = response.get("user") or {}
        profile = raw.get("profile") or {}
        user = SlackUser(
            user_id=user_id,
            display_name=profile.get("display_name") or profile.get("real_name") or raw.get("name"),
            timezone=raw.get("tz"),
            role=role_of(raw, key[0]),
            is_bot=bool(raw.get("is_bot")),
            deleted=bool(raw.get("deleted")),
        )
        self._entries[key] = (time.monotonic() + self._ttl, user)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return user
