"""The console's workspace: its people, channels and DMs, and what a person in the browser does
(write a message, run ``/lucy``, press a button, open App Home, submit a modal), each turned into
the request Slack would send and delivered signed through :class:`app.devtools.console.deliver.Deliverer`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from app.devtools.console import deliver
from app.devtools.console.backend import BOT_USER_ID, SlackBackend
from app.devtools.console.blocks import find_element

TEAM_ID = "T0CONSOLE"
MEMBERS: list[dict[str, Any]] = [
    {"id": "U0ALICE", "name": "alice", "real_name": "Alice", "role": "member"},
    {"id": "U0BOB", "name": "bob", "real_name": "Bob", "role": "admin"},
    {"id": "U0CAROL", "name": "carol", "real_name": "Carol", "role": "guest"},
]
CHANNELS: list[dict[str, str]] = [
    {"id": "C0GENERAL", "name": "general"},
    {"id": "C0ENG", "name": "engineering"},
]


def dm_channel(user: str) -> str:
    """The DM between ``user`` and Lucy."""
    return "D" + user.removeprefix("U")


def profile(member: dict[str, Any]) -> dict[str, Any]:
    """What ``users.info`` says about a console member."""
    return {
        "id": member["id"],
        "team_id": TEAM_ID,
        "name": member["name"],
        "real_name": member["real_name"],
        "deleted": False,
        "is_admin": member["role"] == "admin",
        "is_owner": False,
        "is_restricted": member["role"] == "guest",
        "is_bot": False,
        "tz": "UTC",
        "profile": {"display_name": member["name"], "real_name": member["real_name"]},
    }


class ConsoleError(ValueError):
    """A request from the browser that names nothing in the workspace."""


@dataclass
class Console:
    backend: SlackBackend
    deliverer: deliver.Deliverer
    modal_owners: dict[str, str] = field(default_factory=dict)  # trigger_id -> user

    def __post_init__(self) -> None:
        self.backend.team_id = TEAM_ID
        for member in MEMBERS:
            self.backend.users[member["id"]] = profile(member)

    # ------------------------------------------------------------------ the directory

    def member(self, user: str) -> dict[str, Any]:
        found = next((m for m in MEMBERS if m["id"] == user), None)
        if found is None:
            raise ConsoleError(f"no member {user!r}")
        return found

    def channel(self, user: str, channel: str) -> dict[str, str]:
        """A channel ``user`` may see (a public channel or their own DM with Lucy)."""
        if channel == dm_channel(user):
            return {"id": channel, "name": "Lucy", "type": "im"}
        found = next((c for c in CHANNELS if c["id"] == channel), None)
        if found is None:
            raise ConsoleError(f"no channel {channel!r} for {user!r}")
        return {**found, "type": "channel"}

    def name(self, some_id: str) -> str | None:
        if some_id == BOT_USER_ID:
            return "Lucy"
        for member in MEMBERS:
            if member["id"] == some_id:
                return str(member["name"])
        return next((c["name"] for c in CHANNELS if c["id"] == some_id), None)

    def encode(self, typed: str) -> str:
        """What Slack stores for typed text: ``& < >`` entity-encoded, ``@name`` as ``<@U…>``
        and ``#channel`` as ``<#C…|name>``."""
        text = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        people = {"lucy": BOT_USER_ID, **{m["name"]: m["id"] for m in MEMBERS}}
        text = re.sub(
            r"(?<![\w@])@(\w+)",
            lambda m: f"<@{people[m.group(1).lower()]}>" if m.group(1).lower() in people else m.group(0),
            text,
        )
        rooms = {c["name"]: c["id"] for c in CHANNELS}
        return re.sub(
            r"(?<![\w#])#([\w-]+)",
            lambda m: f"<#{rooms[m.group(1)]}|{m.group(1)}>" if m.group(1) in rooms else m.group(0),
            text,
        )

    def _response_url(self, **target: Any) -> str:
        name = uuid.uuid4().hex
        self.backend.response_targets[name] = target
        return self.backend.response_url(name)

    # ------------------------------------------------------------------ what people do

    async def send(self, user: str, channel: str, typed: str, thread_ts: str | None = None) -> dict[str, Any]:
        """A message from ``user``: stored as Slack stores it, then its events delivered."""
        member, room = self.member(user), self.channel(user, channel)
        if typed.strip().startswith("/lucy") and not thread_ts:
            return await self.command(user, channel, typed.strip().removeprefix("/lucy").strip())
        text = self.encode(typed)
        ts = self.backend.add_message(channel, text, user=user, thread_ts=thread_ts)
        envelopes = deliver.message_events(
            team_id=TEAM_ID,
            user=member["id"],
            channel=channel,
            channel_type="im" if room["type"] == "im" else "channel",
            text=text,
            ts=ts,
            thread_ts=thread_ts,
            bot_user_id=BOT_USER_ID,
        )
        statuses = [(await self.deliverer.event(e)).status for e in envelopes]
        return {"ok": all(s == 200 for s in statuses), "ts": ts, "statuses": statuses}

    async def command(self, user: str, channel: str, text: str) -> dict[str, Any]:
        """``/lucy <text>``: the app's answer in the HTTP response is shown as Slack shows it."""
        member, room = self.member(user), self.channel(user, channel)
        fields = deliver.slash_command(
            team_id=TEAM_ID,
            user=user,
            user_name=member["name"],
            channel=channel,
            channel_name=room["name"],
            text=text,
            response_url=self._response_url(channel=channel, user=user),
        )
        self.modal_owners[fields["trigger_id"]] = user
        answer = await self.deliverer.form(fields)
        self._show_ack(user, channel, answer, failed="/lucy failed")
        return {"ok": answer.status == 200, "status": answer.status}

    def _show_ack(self, user: str, channel: str, answer: deliver.Delivery, *, failed: str) -> None:
        if answer.status != 200:
            self.backend.add_ephemeral(
                channel, user, {"text": f"{failed}: the app answered HTTP {answer.status}."}
            )
        elif isinstance(answer.body, dict) and (answer.body.get("text") or answer.body.get("blocks")):
            if answer.body.get("response_type") == "in_channel":
                self.backend.call("chat.postMessage", {**answer.body, "channel": channel}, self.backend.token)
            else:
                self.backend.add_ephemeral(channel, user, answer.body)
        elif isinstance(answer.body, str) and answer.body.strip():
            self.backend.add_ephemeral(channel, user, {"text": answer.body})

    async def click(
        self, user: str, where: str, *, block: int, element: str, channel: str = "", ts: str = ""
    ) -> dict[str, Any]:
        """A press of the element at (``block``, ``element``) of a message, an ephemeral, the
        Home tab or the open modal; the action is read from the server's copy."""
        member = self.member(user)
        common: dict[str, Any] = {"team_id": TEAM_ID, "user": user, "user_name": member["name"]}
        if where in ("message", "ephemeral"):
            room = self.channel(user, channel)
            if where == "message":
                shown = self.backend.find(channel, ts)
            else:
                shown = next(
                    (e for e in self.backend.ephemerals if e.get("message_ts") == ts and e["user"] == user),
                    None,
                )
            if shown is None:
                raise ConsoleError("no such message")
            blocks = shown.get("blocks") or []
            container = {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel,
                "is_ephemeral": where == "ephemeral",
                **({"thread_ts": shown["thread_ts"]} if shown.get("thread_ts") else {}),
            }
            target = {"channel": channel, "user": user}
            target["ephemeral_ts" if where == "ephemeral" else "message_ts"] = ts
            common.update(
                container=container,
                channel={"id": channel, "name": room["name"]},
                message={k: v for k, v in shown.items() if k != "metadata"} if where == "message" else None,
                response_url=self._response_url(**target, thread_ts=shown.get("thread_ts")),
            )
        elif where == "home":
            view = self.backend.views.get(user)
            if view is None:
                raise ConsoleError("no Home tab")
            blocks = view.get("blocks") or []
            view_id = str(view.get("id") or "VHOME" + user)
            common.update(
                container={"type": "view", "view_id": view_id},
                view={"id": view_id, "type": "home", "blocks": blocks, "state": {"values": {}}},
            )
        else:
            raise ConsoleError(f"unknown place {where!r}")
        action = find_element(blocks, block, element)
        if action is None:
            raise ConsoleError("no such element")
        block_id = blocks[block].get("block_id") if isinstance(blocks[block], dict) else None
        payload = deliver.block_actions(action=action, block_id=block_id, **common)
        self.modal_owners[payload["trigger_id"]] = user
        answer = await self.deliverer.interaction(payload)
        if answer.status != 200:  # Slack shows nothing of a block_actions acknowledgement but a failure
            self._show_ack(user, channel or dm_channel(user), answer, failed="That click failed")
        return {"ok": answer.status == 200, "status": answer.status}

    async def open_home(self, user: str) -> dict[str, Any]:
        """``app_home_opened`` for the Home tab."""
        self.member(user)
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user,
            "channel": dm_channel(user),
            "tab": "home",
        }
        if user in self.backend.views:
            event["view"] = {"id": self.backend.views[user].get("id", "VHOME"), "type": "home"}
        answer = await self.deliverer.event(deliver.event_callback(TEAM_ID, event))
        return {"ok": answer.status == 200, "status": answer.status}

    def modal_for(self, user: str) -> dict[str, Any] | None:
        """The modal open for ``user`` (the newest one opened with one of their triggers)."""
        for opened in reversed(self.backend.modals):
            if self.modal_owners.get(opened["trigger_id"]) == user:
                return opened
        return None

    async def submit(self, user: str, values: dict[str, dict[str, str]]) -> dict[str, Any]:
        """Submit ``user``'s open modal with ``values`` (block id -> action id -> text)."""
        member, opened = self.member(user), self.modal_for(user)
        if opened is None:
            raise ConsoleError("no open modal")
        view = dict(opened["view"])
        state: dict[str, dict[str, Any]] = {}
        for b in view.get("blocks") or []:
            el = b.get("element") or {} if isinstance(b, dict) else {}
            if b.get("type") != "input" or not el.get("action_id"):
                continue
            typed = (values.get(str(b.get("block_id"))) or {}).get(str(el["action_id"]), "")
            if el.get("type") in ("conversations_select", "channels_select"):
                key = "selected_conversation" if el["type"] == "conversations_select" else "selected_channel"
                state.setdefault(b["block_id"], {})[el["action_id"]] = {
                    "type": el["type"],
                    key: typed or None,
                }
            else:
                state.setdefault(b["block_id"], {})[el["action_id"]] = {
                    "type": el["type"],
                    "value": typed or None,
                }
        view.update(id=f"VMODAL{self.backend.next_id()}", state={"values": state})
        answer = await self.deliverer.interaction(
            deliver.view_submission(team_id=TEAM_ID, user=user, user_name=member["name"], view=view)
        )
        body = answer.body if isinstance(answer.body, dict) else {}
        if answer.status == 200 and body.get("response_action") == "errors":
            return {"ok": False, "errors": body.get("errors") or {}}
        if answer.status == 200:
            self.backend.modals.remove(opened)
            self.backend.notify()
        return {"ok": answer.status == 200, "status": answer.status}

    def close_modal(self, user: str) -> None:
        opened = self.modal_for(user)
        if opened is not None:
            self.backend.modals.remove(opened)
            self.backend.notify()
