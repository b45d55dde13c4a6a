"""The memory capability's names and payloads: scopes, the upkeep workflow and its schedule,
and what one memory looks like when shown or recalled."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class MemoryScope(StrEnum):
    """Whose a memory is: the requester's own, the channel's, or the whole workspace's."""

    ME = "me"
    CHANNEL = "channel"
    WORKSPACE = "workspace"


MEMORY_UPKEEP_WORKFLOW_NAME = "LucyMemoryUpkeepWorkflow"
MEMORY_UPKEEP_SCHEDULE_ID = "lucy-memory-upkeep"
# The most characters one memory may hold (a memory is a fact, not a document).
MEMORY_MAX_CHARS = 1000


@dataclass(frozen=True)
class RecalledMemory:
    """One memory as the model and people see it: what, whose, by whom, when, from where."""

    id: str
    scope: str
    text: str
    author_slack_id: str
    created_at: str  # ISO 8601
    link: str = ""  # the Slack message it came from ("" when unknown)


@dataclass(frozen=True)
class MemoryUpkeepInput:
    """The nightly upkeep's input (nothing: it looks after every workspace)."""

    note: str = ""


@dataclass(frozen=True)
class MemoryUpkeepReport:
    """What the upkeep did, in counts (never a memory's text)."""

    workspaces: int = 0
    merged: int = 0
    expired: int = 0
    remaining: int = 0
    by_scope: dict[str, int] = field(default_factory=dict)
