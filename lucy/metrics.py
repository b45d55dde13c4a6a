"""Prometheus metrics shared by ingress and the worker (one registry per process).

Label values never come from input as such: anything taken from a request is mapped onto a
fixed allow list first (:func:`slack_kind`), so a sender cannot create time series.
"""

from __future__ import annotations

from typing import Any

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
LLM_COST = Counter(
    "lucy_llm_cost_usd",
    "LLM cost in USD (the provider's usage.cost, else LUCY_LLM_PRICES), by provider and model",
    ["provider", "model"],
)
LLM_FALLBACK = Counter(
    "lucy_llm_fallback_requests_total",
    "LLM calls sent to the fallback provider (LUCY_LLM_FALLBACK_*), by outcome (ok/error)",
    ["outcome"],
)
DATABASE_ERRORS = Counter(
    "lucy_database_errors_total",
    "Database errors raised through SQLAlchemy, by kind (disconnect: the connection was lost; "
    "pool_timeout: no pooled connection was free in time, the activity is retried; "
    "other: any other error, a constraint violation included)",
    ["kind"],
)
DEPENDENCY_UP = Gauge(
    "lucy_dependency_up",
    "1 when the ingress last reached the dependency (database: SELECT 1 at /health/db and at each "
    "/metrics scrape; temporal: the visibility counts), 0 when it could not",
    ["dependency"],
)
BUDGET_REFUSALS = Counter(
    "lucy_budget_refusals_total",
    "Model calls and requests refused by a USD budget (exceeded, unpriced, ingress)",
    ["reason"],
)
ACTIVE_TASKS = Gauge("lucy_active_tasks", "Task workflows running now (Temporal visibility)")
PENDING_APPROVALS = Gauge(
    "lucy_pending_approvals", "Task workflows waiting for an approval (Temporal visibility)"
)


# The Slack payload kinds Lucy handles: the only values the ``type`` label of the Slack
# metrics ever takes, so no request can create a new time series. Add a kind here when a
# listener for it is added (``ingress/listeners``); anything else is counted as ``other``.
HANDLED_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "app_mention",
        "message",
        "app_home_opened",
        "assistant_thread_started",
        "assistant_thread_context_changed",
    }
)
HANDLED_INTERACTIONS: frozenset[str] = frozenset({"block_actions", "url_verification"})
SLASH_COMMAND = "/lucy"
SLACK_KINDS: frozenset[str] = frozenset(
    {
        *(f"event:{t}" for t in HANDLED_EVENT_TYPES),
        *HANDLED_INTERACTIONS,
        "command",
        "ssl_check",
        "other",  # a well-formed Slack payload of a kind Lucy does not handle
        "unknown",  # refused before it was parsed (too large, unsigned, malformed)
    }
)


def slack_kind(body: dict[str, Any] | None) -> str:
    """A label for a Slack payload, always one of :data:`SLACK_KINDS`.

    Args:
        body: the parsed (and verified) payload, or None when it was refused before parsing.

    Returns:
        ``event:<type>`` for a handled event, ``command`` for ``/lucy``, the interaction type for
        a handled interaction, ``ssl_check``, ``other`` for anything else, ``unknown`` without a body.
    """
    if body is None:
        return "unknown"
    if "command" in body:
        return "command" if body["command"] == SLASH_COMMAND else "other"
    kind = body.get("type")
    if kind == "event_callback":
        event = body.get("event")
        event_type = event.get("type") if isinstance(event, dict) else None
        return f"event:{event_type}" if _one_of(event_type, HANDLED_EVENT_TYPES) else "other"
    if _one_of(kind, HANDLED_INTERACTIONS):
        return str(kind)
    if body.get("ssl_check") == "1":
        return "ssl_check"
    return "other"


def _one_of(value: object, allowed: frozenset[str]) -> bool:
    return isinstance(value, str) and value in allowed  # a list or dict value is not hashable
