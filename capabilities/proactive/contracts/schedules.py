"""Schedules: recurring tasks that Temporal Schedules fire, and what a fire reports back."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class Recurrence:
    """When a schedule runs: a 5-field cron expression *or* a fixed interval, in a time zone."""

    text: str  # as the person wrote it
    cron: str  # "" for an interval
    every_seconds: int  # 0 for a cron expression
    timezone: str  # IANA name: the creator's Slack time zone
    description: str  # in plain words: "every weekday (Monday to Friday) at 09:00"


class ScheduleOverlap(StrEnum):
    SKIP = "skip"  # a fire while the last run still works is skipped (the default)
    BUFFER_ONE = "buffer_one"  # ... or waits for it, one at most


class StandingAction(StrEnum):
    """What someone may do to a standing job (a schedule or a monitor) from Slack: button
    action ids are ``lucy_schedule_<x>`` and ``lucy_monitor_<x>``."""

    CREATE = "create"
    DISCARD = "discard"  # the confirmation's Cancel: nothing was created
    PAUSE = "pause"
    RESUME = "resume"
    RUN_NOW = "run_now"
    DELETE = "delete"


ScheduleAction = StandingAction  # the schedule buttons' name for it


class RunOutcomeKind(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"  # someone stopped it: not a failure of the schedule
    REFUSED = "refused"  # quota or rate limits: the run did not happen


@dataclass(frozen=True)
class ScheduledRun:
    """A fire of a schedule, as the task workflow claims it (``schedules.claim_run``)."""

    schedule_id: str
    workflow_id: str
    workspace_id: str
    slack_team_id: str
    slack_user_id: str  # the creator: the run is theirs (permissions, quota, limits)
    slack_channel_id: str
    text: str
    scheduled_at: str = ""  # ISO 8601: when Temporal meant it to run
    late_seconds: int = 0  # how long after that the task's first step ran (workers were down)


@dataclass(frozen=True)
class RunClaim:
    """Whether the fire runs; when it does not, what (if anything) to tell the channel once."""

    run: bool
    name: str = ""  # the schedule's name, for the run's first message
    notice: str = ""  # "" when nothing should be said (a notice this month already went out)


@dataclass(frozen=True)
class RunOutcome:
    """How a fire ended (``schedules.run_finished``): the schedule row keeps it, and counts
    consecutive failures towards pausing."""

    schedule_id: str
    workspace_id: str
    workflow_id: str
    outcome: str  # RunOutcomeKind
    finished_at: str  # ISO 8601 (workflow time)


@dataclass(frozen=True)
class RunRecorded:
    paused: bool  # this failure paused the schedule
    owner_slack_id: str = ""
    notice: str = ""  # tell the owner (a DM) why it paused


@dataclass(frozen=True)
class ChannelNotice:
    """Something Lucy tells a channel once (the key makes the post idempotent)."""

    channel: str
    text: str
    key: str


@dataclass(frozen=True)
class SchedulesReconciled:
    recreated: int = 0
    resynced: int = 0
    deleted: int = 0
    notices: list[ChannelNotice] = field(default_factory=list)
