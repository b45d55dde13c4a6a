"""Monitors (the ``monitors`` table): a condition a Temporal Schedule probes, and what a probe
reports back to the monitor workflow.

Wire names: ``heartbeat_id`` (the monitor's row id) and the registered names
(``LucyHeartbeatWorkflow``, ``heartbeats.*`` activities) are what live Temporal Schedules and
recorded histories carry, so they keep their first spelling; everything else says monitor."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from capabilities.proactive.contracts.schedules import ChannelNotice, StandingAction


class MonitorKind(StrEnum):
    """The seed's condition types."""

    API_HEALTH = "api_health"  # an HTTP status (and latency) through the gateway's web_fetch
    METRIC_THRESHOLD = "metric_threshold"  # a number at a JSON path of a fetched body vs a threshold
    SCHEDULE_MISS = "schedule_miss"  # a schedule of this workspace that did not run or failed
    CUSTOM = "custom"  # a yes/no question the model answers, with its reason


MonitorAction = StandingAction  # what someone may do to a monitor (action ids ``lucy_monitor_<x>``)


class ProbeOutcome(StrEnum):
    OK = "ok"  # the condition holds: stay quiet (or say it recovered)
    ALERT = "alert"  # the condition is broken: speak up (unless cooling down)
    FAILED = "failed"  # the probe itself could not tell (gateway down, timeout, no number)


class AlertState(StrEnum):
    OK = "ok"
    ALERTING = "alerting"


@dataclass(frozen=True)
class MonitorInput:
    """What each fire of a monitor's Temporal Schedule starts ``LucyMonitorWorkflow`` with."""

    workspace_id: str
    heartbeat_id: str
    slack_team_id: str


@dataclass(frozen=True)
class MonitorRun:
    """One fire of a monitor, as ``heartbeats.claim`` sees it."""

    workspace_id: str
    heartbeat_id: str
    slack_team_id: str
    workflow_id: str


@dataclass(frozen=True)
class MonitorClaim:
    """Whether this fire probes (the monitor is live and its owner's quota allows it), and what."""

    run: bool
    kind: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    owner_id: str = ""  # users.id of the owner: the probe's model call is held against their budgets


@dataclass(frozen=True)
class ProbeRequest:
    workspace_id: str
    heartbeat_id: str
    workflow_id: str
    kind: str
    config: dict[str, Any]


@dataclass(frozen=True)
class ProbeResult:
    """A probe's finding. For ``custom`` the probe fetches the page and the workflow then asks the
    model (``question`` and the untrusted ``page``); the model's answer decides ok or alert."""

    outcome: str  # ProbeOutcome ("" when the model is still to answer: ``ask``)
    evidence: str
    ask: bool = False
    question: str = ""
    page: str = ""


@dataclass(frozen=True)
class ProbeVerdict:
    """The probe's outcome, for ``heartbeats.record`` (once per workflow id)."""

    workspace_id: str
    heartbeat_id: str
    workflow_id: str
    outcome: str  # ProbeOutcome
    evidence: str
    at: str  # ISO 8601, workflow time
    model: str | None = None  # the model that answered a ``custom`` question, and its cost
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class MonitorRecorded:
    """What to post after a probe: an alert, a recovery, or (error state) one DM to the owner."""

    notices: list[ChannelNotice] = field(default_factory=list)
    decision: str = ""  # quiet | alert | reminder | recovered | error
