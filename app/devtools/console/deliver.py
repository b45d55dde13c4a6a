"""Slack's side of the request: events, slash commands and clicks built as Slack builds them and
signed as Slack signs them (``v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")``), then posted to
the app's Request URL. The console reaches Lucy only this way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

APP_ID = "A0LUCYCONSOLE"


def signature_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` for ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def _trigger_id() -> str:
    return f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:12]}"


def event_callback(team_id: str, event: dict[str, Any]) -> dict[str, Any]:
    """The Events API envelope around one event."""
    return {
        "token": "console-verification-token",
        "team_id": team_id,
        "api_app_id": APP_ID,
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team_id, "is_bot": True}],
        "event": event,
    }


def message_events(
    *,
    team_id: str,
    user: str,
    channel: str,
    channel_type: str,
    text: str,
    ts: str,
    thread_ts: str | None,
    bot_user_id: str,
) -> list[dict[str, Any]]:
    """What Slack sends for a person's message: ``message`` (``message.channels`` or
    ``message.im``) and, in a channel where the bot is mentioned, ``app_mention`` too."""
    base: dict[str, Any] = {
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "team": team_id,
    }
    if thread_ts:
        base["thread_ts"] = thread_ts
    events = [{"type": "message", "channel_type": channel_type, **base}]
    if channel_type != "im" and f"<@{bot_user_id}>" in text:
        events.insert(0, {"type": "app_mention", **base})
    return [event_callback(team_id, e) for e in events]


def slash_command(
    *, team_id: str, user: str, user_name: str, channel: str, channel_name: str, text: str, response_url: str
) -> dict[str, str]:
    """A ``/lucy`` command, as the form fields Slack posts."""
    return {
        "token": "console-verification-token",
        "team_id": team_id,
        "team_domain": "console",
        "channel_id": channel,
        "channel_name": channel_name,
        "user_id": user,
        "user_name": user_name,
        "command": "/lucy",
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": _trigger_id(),
    }


def block_actions(
    *,
    team_id: str,
    user: str,
    user_name: str,
    action: dict[str, Any],
    block_id: str | None,
    container: dict[str, Any],
    channel: dict[str, str] | None = None,
    message: dict[str, Any] | None = None,
    view: dict[str, Any] | None = None,
    response_url: str | None = None,
    selected: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``block_actions`` payload for one pressed element."""
    pressed = {
        "action_id": action.get("action_id"),
        "block_id": block_id or "",
        "type": action.get("type", "button"),
        "action_ts": f"{time.time():.6f}",
    }
    if "value" in action:
        pressed["value"] = action["value"]
    if "text" in action:
        pressed["text"] = action["text"]
    if selected is not None:
        pressed["selected_option"] = selected
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": team_id, "domain": "console"},
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": APP_ID,
        "token": "console-verification-token",
        "container": container,
        "trigger_id": _trigger_id(),
        "actions": [pressed],
    }
    if channel is not None:
        payload["channel"] = channel
    if message is not None:
        payload["message"] = message
    if view is not None:
        payload["view"] = view
    if response_url is not None:
        payload["response_url"] = response_url
    return payload


def view_submission(*, team_id: str, user: str, user_name: str, view: dict[str, Any]) -> dict[str, Any]:
    """A modal's submission with its ``state.values``."""
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "console"},
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": APP_ID,
        "token": "console-verification-token",
        "trigger_id": _trigger_id(),
        "view": view,
    }


@dataclass
class Delivery:
    """What the app answered: its HTTP status and body (JSON when it sent JSON)."""

    status: int
    body: Any


@dataclass
class Deliverer:
    """Posts signed requests to the app's Request URL (``events_url``)."""

    events_url: str
    signing_secret: str
    http: httpx.AsyncClient

    async def _post(self, body: bytes, content_type: str) -> Delivery:
        headers = {"Content-Type": content_type, **signature_headers(self.signing_secret, body)}
        response = await self.http.post(self.events_url, content=body, headers=headers, timeout=10.0)
        try:
            parsed: Any = response.json() if response.content else None
        except ValueError:
            parsed = response.text
        return Delivery(status=response.status_code, body=parsed)

    async def event(self, envelope: dict[str, Any]) -> Delivery:
        return await self._post(json.dumps(envelope).encode(), "application/json")

    async def form(self, fields: dict[str, str]) -> Delivery:
        return await self._post(urlencode(fields).encode(), "application/x-www-form-urlencoded")

    async def interaction(self, payload: dict[str, Any]) -> Delivery:
        return await self.form({"payload": json.dumps(payload)})
