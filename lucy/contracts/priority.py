"""Which work Temporal hands a worker first: a task's priority key, from its source, and its
fairness key, its Slack workspace.

Temporal's matching service dispatches a backlogged queue by ``priority_key`` (1 first; the
server's default range is 1..5, unset means 3), then, within one key, shares dispatch between
fairness keys in proportion to their weights, so one workspace's burst does not starve the
others (docs/scaling.md#priority-and-fairness). Activities and child workflows inherit their
workflow's priority, so only starts set it: ingress (Slack, mail, webhooks), the Temporal
Schedules' start actions, and the ingress again when an approval click resumes a task.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum

from temporalio.common import Priority

from lucy.contracts.ids import TaskSource


class PriorityKey(IntEnum):
    """Temporal priority keys, most urgent first (lower goes first)."""

    RESUMED = 1  # a person just clicked Approve or Reject: the task they wait on goes on first
    INTERACTIVE = 2  # a person asked in Slack (mention, DM, /lucy, a reply in a task's thread)
    MAIL = 3  # a person wrote, but mail is not a chat (also Temporal's default)
    BACKGROUND = 4  # nobody is waiting: a schedule's run, a monitor's probe, a webhook
    HOUSEKEEPING = 5  # Lucy's own upkeep: maintenance, memory upkeep, the patterns scan


# A delegated sub-task (a child workflow) is absent on purpose: it inherits its parent's priority.
PRIORITY_OF_SOURCE: dict[TaskSource, PriorityKey] = {
    TaskSource.MENTION: PriorityKey.INTERACTIVE,
    TaskSource.DM: PriorityKey.INTERACTIVE,
    TaskSource.COMMAND: PriorityKey.INTERACTIVE,
    TaskSource.THREAD_REPLY: PriorityKey.INTERACTIVE,
    TaskSource.EMAIL: PriorityKey.MAIL,
    TaskSource.SCHEDULE: PriorityKey.BACKGROUND,
    TaskSource.MONITOR: PriorityKey.BACKGROUND,
    TaskSource.WEBHOOK: PriorityKey.BACKGROUND,
}

HOUSEKEEPING_FAIRNESS_KEY = "lucy"  # Lucy's own schedules share one key
_MAX_FAIRNESS_KEY_BYTES = 64  # Temporal's limit


def fairness_key(team: str) -> str:
    """A workspace's fairness key: its Slack team id (an id, never a secret or message text); an
    id longer than Temporal's 64 bytes is replaced by a digest of it."""
    if len(team.encode()) <= _MAX_FAIRNESS_KEY_BYTES:
        return team
    return "sha256-" + hashlib.sha256(team.encode()).hexdigest()[:32]


def priority_key_of(source: str) -> PriorityKey:
    """The priority key of a task from ``source`` (an unknown source gets Temporal's default)."""
    try:
        return PRIORITY_OF_SOURCE[TaskSource(source)]
    except (ValueError, KeyError):
        return PriorityKey.MAIL


def task_priority(source: str, team: str) -> Priority:
    """The priority a task from ``source`` in workspace ``team`` starts with."""
    return Priority(priority_key=int(priority_key_of(source)), fairness_key=fairness_key(team))


def interactive_priority(team: str) -> Priority:
    """The priority of other work a person waits on in Slack (a modal's draft)."""
    return Priority(priority_key=int(PriorityKey.INTERACTIVE), fairness_key=fairness_key(team))


def resumed_priority(team: str) -> Priority:
    """The priority of a task a person's click resumes: ahead of everything else, same workspace."""
    return Priority(priority_key=int(PriorityKey.RESUMED), fairness_key=fairness_key(team))


HOUSEKEEPING_PRIORITY = Priority(
    priority_key=int(PriorityKey.HOUSEKEEPING), fairness_key=HOUSEKEEPING_FAIRNESS_KEY
)
