"""A slash command's table: each subcommand declared once, and its help, usage and dispatch
generated from the table.

A :class:`Subcommand` is a word (``tasks``), the arguments it takes (``[task id]``), one line
of help, who may run it, and its handler; a group (``settings``) has sub-words of its own,
each a :class:`Subcommand`. :func:`dispatch` finds the entry for the words typed, or says
there is none (the caller then treats the text as a request); :func:`help_lines` and
:func:`usage_text` write the help and a group's usage error from the same entries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext


class Who(StrEnum):
    """Who may run a subcommand (an admin-only one refuses everyone else, in its own words)."""

    EVERYONE = "everyone"
    ADMIN = "admin"


@dataclass(frozen=True)
class CommandCall:
    """One invocation: ``rest`` is the text after the subcommand's words (spaces collapsed)."""

    ack: AsyncAck
    command: dict[str, Any]
    context: AsyncBoltContext
    text: str
    rest: str

    @property
    def team(self) -> str:
        return str(self.command["team_id"])

    @property
    def user(self) -> str:
        return str(self.command["user_id"])


Handler = Callable[[CommandCall], Awaitable[None]]


@dataclass(frozen=True)
class Subcommand:
    """One word of the command. ``takes_args=False``: with anything after it, the text is not
    this subcommand (``/lucy tasks for today`` is a request). ``listed=False``: not a line of
    its own in the help (another entry's help names it). A group has ``words`` and may have a
    handler for its bare word (``/lucy memory``); an unknown sub-word gets the group's
    generated usage."""

    name: str
    help: str
    handler: Handler | None = None
    usage: str = ""
    who: Who = Who.EVERYONE
    takes_args: bool = True
    listed: bool = True
    words: tuple[Subcommand, ...] = field(default=())

    def invocation(self, prefix: str = "") -> str:
        """``prefix name usage``; a group's usage, unless it declares one, lists its sub-words."""
        usage = self.usage or " | ".join(w.invocation() for w in self.words)
        return " ".join(part for part in (prefix, self.name, usage) if part)


Dispatch = tuple[Handler, str]


def dispatch(table: Sequence[Subcommand], text: str, *, prefix: str) -> Dispatch | None:
    """The handler for ``text`` (its words, spaces collapsed) and the rest of the text after
    the subcommand's words, or None when no entry matches (then ``text`` is a request)."""
    word, _, rest = text.partition(" ")
    entry = next((e for e in table if e.name == word.lower()), None)
    if entry is None or (rest and not entry.takes_args):
        return None
    if entry.words and not rest and entry.handler is not None:
        return entry.handler, rest  # a group with a handler of its own answers its bare word
    if entry.words:
        found = dispatch(entry.words, rest, prefix=f"{prefix} {entry.name}")
        return found or (_usage_handler(usage_text(entry, prefix=prefix)), rest)
    assert entry.handler is not None, f"{entry.name}: a subcommand without words needs a handler"
    return entry.handler, rest


def help_lines(table: Sequence[Subcommand], *, prefix: str) -> list[str]:
    """One bullet per listed entry: ``• `/lucy name usage` — help``."""
    return [f"• `{e.invocation(prefix)}` — {e.help}" for e in table if e.listed]


def usage_text(group: Subcommand, *, prefix: str) -> str:
    """The usage error of a group: each of its sub-words, with their arguments."""
    return "Usage: " + " or ".join(f"`{w.invocation(f'{prefix} {group.name}')}`" for w in group.words)


def _usage_handler(text: str) -> Handler:
    async def usage(call: CommandCall) -> None:
        await call.ack({"response_type": "ephemeral", "text": text})

    return usage
