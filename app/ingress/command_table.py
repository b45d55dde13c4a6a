"""A slash command's table: each subcommand declared once, and its help, usage and dispatch
generated from the table.

A :class:`Subcommand` is a word (``tasks``), the arguments it takes (``[task id]``), one line
of help, who may run it, and its handler; a group (``settings``, ``webhook``) has sub-words of
its own, each a :class:`Subcommand`, and may answer the group's word alone (``bare``: ``/lucy
email``) and a form whose next word is no sub-word (``otherwise``: ``/lucy schedule "<when>"
<request>``). :func:`dispatch` finds the entry for the words typed, or says there is none (the
caller then treats the text as a request); :func:`help_lines` and :func:`usage_text` write the
help and a group's usage error from the same entries.
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
    its own in the help (another entry's help names it). A group has ``words`` and no handler;
    an unknown sub-word gets ``otherwise``, if the group has one, else the group's usage
    (``usage_reply``, or one generated from its sub-words); the group's word alone gets
    ``bare``, if it has one."""

    name: str
    help: str
    handler: Handler | None = None
    usage: str = ""
    who: Who = Who.EVERYONE
    takes_args: bool = True
    listed: bool = True
    words: tuple[Subcommand, ...] = field(default=())
    bare: Handler | None = None
    otherwise: Handler | None = None
    usage_reply: str = ""

    @property
    def group(self) -> bool:
        return bool(self.words or self.bare or self.otherwise)

    @property
    def lists_words(self) -> bool:
        """Whether the group's own invocation lists its sub-words: it declares no usage and does
        not answer its word alone (``/lucy email`` is an invocation of its own)."""
        return bool(self.words) and not self.usage and self.bare is None

    def invocation(self, prefix: str = "") -> str:
        """``prefix name usage``; a group's usage, unless it declares one or answers its word
        alone, lists its sub-words."""
        usage = " | ".join(w.invocation() for w in self.words) if self.lists_words else self.usage
        return " ".join(part for part in (prefix, self.name, usage) if part)


Dispatch = tuple[Handler, str]


def dispatch(table: Sequence[Subcommand], text: str, *, prefix: str) -> Dispatch | None:
    """The handler for ``text`` (its words, spaces collapsed) and the rest of the text after
    the subcommand's words, or None when no entry matches (then ``text`` is a request)."""
    word, _, rest = text.partition(" ")
    entry = next((e for e in table if e.name == word.lower()), None)
    if entry is None or (rest and not entry.takes_args):
        return None
    if entry.group:
        return _in_group(entry, rest, prefix=prefix)
    assert entry.handler is not None, f"{entry.name}: a subcommand without words needs a handler"
    return entry.handler, rest


def _in_group(group: Subcommand, rest: str, *, prefix: str) -> Dispatch:
    if not rest and group.bare is not None:
        return group.bare, rest
    found = dispatch(group.words, rest, prefix=f"{prefix} {group.name}")
    if found is not None:
        return found
    if group.otherwise is not None:
        return group.otherwise, rest
    return _usage_handler(usage_text(group, prefix=prefix)), rest


def help_lines(table: Sequence[Subcommand], *, prefix: str) -> list[str]:
    """One bullet per listed entry: ``• `/lucy name usage` — help``; a group whose line does
    not list its sub-words is followed by one indented line per
    sub-word: ``◦ `/lucy group word usage` — help``."""
    lines: list[str] = []
    for entry in table:
        if entry.listed:
            lines.append(f"• `{entry.invocation(prefix)}` — {entry.help}")
        if entry.group and not entry.lists_words:
            lines.extend(
                f"    ◦ `{w.invocation(f'{prefix} {entry.name}')}` — {w.help}"
                for w in entry.words
                if w.listed
            )
    return lines


def usage_text(group: Subcommand, *, prefix: str) -> str:
    """The usage error of a group: its own (``usage_reply``), or each of its sub-words, with
    their arguments."""
    if group.usage_reply:
        return group.usage_reply
    return "Usage: " + " or ".join(f"`{w.invocation(f'{prefix} {group.name}')}`" for w in group.words)


def _usage_handler(text: str) -> Handler:
    async def usage(call: CommandCall) -> None:
        await call.ack({"response_type": "ephemeral", "text": text})

    return usage
