"""Prometheus metrics shared by ingress and the worker (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SLACK_EVENTS = Counter(
    "lucy_slack_events_total", "Slack requests handled, by kind and outcome", ["type", "outcome"]
)
ACK_SECONDS = Histogram(
    "lucy_slack_ack_seconds",
    "Time from receiving a Slack request to answering it (the ack Slack waits for), by kind",
    ["type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0),
)
WORKFLOW_STARTS = Counter(
    "lucy_workflow_starts_total",
    "Task workflow starts, by outcome (started/duplicate/refused/error)",
    ["outcome"],
)
LLM_SECONDS = Histogram(
    "lucy_llm_request_seconds",
    "LLM chat-completion latency by provider, model and outcome",
    ["provider", "model", "outcome"],
    buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160),
)
ACTIVE_TASKS = Gauge("lucy_active_tasks", "Task workflows running now (Temporal visibility)")
PENDING_APPROVALS = Gauge(
    "lucy_pending_approvals", "Task workflows waiting for an approval (Temporal visibility)"
)


def slack_kind(body: dict | None) -> str:
    """A low-cardinality label for a Slack payload: event type, command, or interaction type."""
    if not body:
        return "unknown"
    if body.get("command"):
        return "command"
    if body.get("type") == "event_callback":
        event = body.get("event") or {}
        return f"event:{event.get('type', 'unknown')}"
    return str(body.get("type") or "unknown")
