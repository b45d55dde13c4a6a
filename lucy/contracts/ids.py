"""Names and ids other people rely on: workflow names, task queues, search attributes, the
shape of workflow ids, Slack action ids, statuses, and the idempotency key of a side effect."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

TASK_WORKFLOW_NAME = "LucyTaskWorkflow"
MAINTENANCE_WORKFLOW_NAME = "LucyMaintenanceWorkflow"
# A monitor probe's workflow: registered under its first name, which running Schedules and
# recorded histories carry (``capabilities.proactive.workflow.monitor.LucyMonitorWorkflow``).
MONITOR_WORKFLOW_NAME = "LucyHeartbeatWorkflow"
MAINTENANCE_SCHEDULE_ID = "lucy-maintenance"
# The weekly scan for recurring requests (capabilities.proactive.workflow.patterns).
PATTERNS_WORKFLOW_NAME = "LucyPatternsWorkflow"
PATTERNS_SCHEDULE_ID = "lucy-patterns"
DEFAULT_TASK_QUEUE = "lucy-tasks"

# Search attributes (keyword). Registered on the namespace; never hold secrets or message text.
SA_WORKSPACE = SearchAttributeKey.for_keyword("LucyWorkspace")
SA_USER = SearchAttributeKey.for_keyword("LucyUser")
SA_CHANNEL = SearchAttributeKey.for_keyword("LucyChannel")
SA_THREAD = SearchAttributeKey.for_keyword("LucyThread")
SA_STATUS = SearchAttributeKey.for_keyword("LucyStatus")
SA_INTENT = SearchAttributeKey.for_keyword("LucyIntent")
SA_SOURCE = SearchAttributeKey.for_keyword("LucySource")
SA_SCHEDULE = SearchAttributeKey.for_keyword("LucySchedule")  # a schedule's runs (and the schedule)
SA_SKILL = SearchAttributeKey.for_keyword("LucySkill")  # "name@version" of the skill a task loaded
SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[str], ...] = (
    SA_WORKSPACE,
    SA_USER,
    SA_CHANNEL,
    SA_THREAD,
    SA_STATUS,
    SA_INTENT,
    SA_SOURCE,
    SA_SCHEDULE,
    SA_SKILL,
)


class TaskStatus(StrEnum):
    CREATED = "created"
    QUEUED = "queued"
    PENDING_APPROVAL = "pending_approval"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    # Only in the live view (the status query, LucyStatus): a budget stopped the task at a step
    # boundary; its ``tasks`` row says failed.
    STOPPED_BY_BUDGET = "stopped_by_budget"


RECORDED_TASK_STATUSES = tuple(s.value for s in TaskStatus if s is not TaskStatus.STOPPED_BY_BUDGET)


class TaskSource(StrEnum):
    MENTION = "mention"
    DM = "dm"
    COMMAND = "command"
    THREAD_REPLY = "thread_reply"
    SCHEDULE = "schedule"
    MONITOR = "heartbeat"  # a monitor's probe (the stored and searchable value since 0009)
    EMAIL = "email"  # mail to the workspace's AgentMail inbox
    WEBHOOK = "webhook"  # a signed POST to one of the workspace's webhook triggers
    DELEGATED = "delegated"  # a sub-task another task delegated (a child workflow, docs/delegate.md)


def task_search_attributes(
    *,
    team: str,
    user: str,
    channel: str,
    thread: str,
    source: str,
    more: tuple[SearchAttributePair[Any], ...] = (),
) -> TypedSearchAttributes:
    """A task's search attributes when it starts (status ``created``), whoever starts it:
    ingress for a Slack message, mail or webhook, a Temporal Schedule for a scheduled run (with
    ``more``: the schedule), or a task for its delegated sub-tasks."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_WORKSPACE, team),
            SearchAttributePair(SA_USER, user),
            SearchAttributePair(SA_CHANNEL, channel),
            SearchAttributePair(SA_THREAD, thread or "none"),
            SearchAttributePair(SA_SOURCE, source),
            SearchAttributePair(SA_STATUS, TaskStatus.CREATED.value),
            *more,
        ]
    )


class TaskIntent(StrEnum):
    """What a request is, as the fast model classifies it (it picks the tier)."""

    LOOKUP = "lookup"
    TOOL_USE = "tool_use"
    REASONING = "reasoning"
    CODE = "code"
    CHAT = "chat"


def task_workflow_id(team_id: str, channel_id: str, message_ts: str) -> str:
    """The task workflow id for one Slack message.

    Derived from the message itself (team, channel, message ts), not from Slack's per-delivery
    event id, so that a redelivery, or the same message arriving as both ``app_mention`` and
    ``message``, maps to the same workflow and can never start a second task.
    """
    return f"lucy-task-{team_id}-{channel_id}-{message_ts}"


def belongs_to_team(workflow_id: str, team_id: str) -> bool:
    """Task workflow ids carry their Slack team: whether ``workflow_id`` is a task of ``team_id``."""
    return bool(team_id) and workflow_id.startswith(f"lucy-task-{team_id}-")


def command_workflow_id(team_id: str, channel_id: str, trigger_id: str) -> str:
    """The task workflow id for one ``/lucy <request>`` invocation (Slack's trigger id is unique)."""
    return f"lucy-task-{team_id}-{channel_id}-cmd-{trigger_id}"


def email_workflow_id(team_id: str, email_thread_id: str, message_id: str | None = None) -> str:
    """The task workflow id for an AgentMail email thread: derived from the thread, so that a
    redelivered webhook can never start a second task; ``message_id`` gives a follow-up (a reply
    after the thread's task ended) its own id."""
    tail = hashlib.sha256(email_thread_id.encode()).hexdigest()[:24]
    if message_id:
        tail += "-" + hashlib.sha256(message_id.encode()).hexdigest()[:12]
    return f"lucy-task-{team_id}-email-{tail}"


def webhook_workflow_id(team_id: str, trigger_id: str, delivery_id: str) -> str:
    """The task workflow id for one delivery of a webhook trigger (a redelivery maps to it)."""
    tail = hashlib.sha256(f"{trigger_id}\x1f{delivery_id}".encode()).hexdigest()[:24]
    return f"lucy-task-{team_id}-hook-{tail}"


def schedule_id_of(row_id: str) -> str:
    """The Temporal Schedule of one ``schedules`` row (one row, one Temporal Schedule)."""
    return f"lucy-schedule-{row_id}"


def row_id_of_schedule(schedule_id: str) -> str | None:
    """The ``schedules`` row behind a Temporal Schedule id, or None when it is not Lucy's."""
    prefix = "lucy-schedule-"
    return schedule_id[len(prefix) :] if schedule_id.startswith(prefix) else None


def scheduled_workflow_id(team_id: str, channel_id: str, row_id: str) -> str:
    """The id a schedule gives its runs; Temporal appends each fire's scheduled time, so one
    fire can never run twice."""
    return f"lucy-task-{team_id}-{channel_id}-sched-{row_id}"


def monitor_schedule_id_of(row_id: str) -> str:
    """The Temporal Schedule of one ``monitors`` row (its id keeps the
    ``lucy-heartbeat-`` prefix that live Schedules carry)."""
    return f"lucy-heartbeat-{row_id}"


def row_id_of_monitor(schedule_id: str) -> str | None:
    """The ``monitors`` row behind a Temporal Schedule id, or None when it is not a monitor's."""
    prefix = "lucy-heartbeat-"
    return schedule_id[len(prefix) :] if schedule_id.startswith(prefix) else None


def monitor_workflow_id(team_id: str, row_id: str) -> str:
    """The id a monitor gives its probes (Temporal appends each fire's scheduled time;
    the ``lucy-heartbeat-`` prefix is kept for the ids already in Temporal)."""
    return f"lucy-heartbeat-{team_id}-{row_id}"


MONITOR_ACTION_PREFIX = "lucy_monitor_"  # + MonitorAction: the monitor buttons' action ids
SCHEDULE_ACTION_PREFIX = "lucy_schedule_"  # + ScheduleAction: the schedule buttons' action ids
PATTERN_ACTION_PREFIX = "lucy_pattern_"  # + "later" | "never": a recurring-request offer's buttons

# The task workflow's message handlers (ingress calls them by these names).
QUERY_STATUS = "status"
UPDATE_DECIDE_APPROVAL = "decide_approval"
UPDATE_CANCEL = "cancel"
UPDATE_SHOW_EXACT = "show_exact_arguments"
UPDATE_ADD_REPLY = "add_reply"

ACTIVE_TASK_STATUSES = (TaskStatus.CREATED, TaskStatus.PENDING_APPROVAL, TaskStatus.RUNNING)

APPROVE_ACTION_ID = "lucy_approve"
REJECT_ACTION_ID = "lucy_reject"
CANCEL_ACTION_ID = "lucy_cancel"
SHOW_EXACT_ACTION_ID = "lucy_show_exact"  # opens the exact arguments of an approval (a modal)
FEEDBACK_ACTION_ID = "lucy_feedback"  # Slack's feedback buttons under an answer
FEEDBACK_VALUES = ("good", "bad")


def feedback_button_value(workflow_id: str, feedback: str) -> str:
    """What a feedback button carries back to ingress: which task, thumbs up or down."""
    return json.dumps({"w": workflow_id, "f": feedback}, separators=(",", ":"))


def approval_button_value(workflow_id: str, approval_id: str) -> str:
    """What an Approve/Reject button carries back to ingress: which task, which approval."""
    return json.dumps({"w": workflow_id, "a": approval_id}, separators=(",", ":"))


def idempotency_key(*parts: str) -> str:
    """A short stable key for an activity side effect (workflow id + step)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
