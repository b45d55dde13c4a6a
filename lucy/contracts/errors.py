"""The error types activities raise (``ApplicationError(type=...)``); workflows match on them."""

from __future__ import annotations

from enum import StrEnum


# Error types raised by activities as ApplicationError(type=...). Workflows match on these.
class ErrorType(StrEnum):
    LLM_RETRYABLE = "LlmRetryable"
    LLM_REJECTED = "LlmRejected"  # 400
    LLM_UNAUTHORIZED = "LlmUnauthorized"  # 401/403
    LLM_PAYMENT_REQUIRED = "LlmPaymentRequired"  # 402
    LLM_NOT_CONFIGURED = "LlmNotConfigured"
    LLM_BAD_RESPONSE = "LlmBadResponse"
    SLACK_RETRYABLE = "SlackRetryable"
    SLACK_REJECTED = "SlackRejected"
    SLACK_NOT_CONFIGURED = "SlackNotConfigured"
    TOOL_RETRYABLE = "ToolRetryable"  # 5xx, timeouts, connection errors: Temporal retries
    TOOL_BLOCKED = "ToolBlocked"  # the gateway's policy does not allow this tool (HTTP 404)
    TOOL_REJECTED = "ToolRejected"  # bad arguments or a 4xx: retrying cannot help
    TOOL_NOT_CONFIGURED = "ToolNotConfigured"  # no URL/key for this tool in this deployment
    TOOL_UNAVAILABLE = "ToolUnavailable"  # the tool kept failing (browser: 3 in a row)
    EGRESS_DENIED = "EgressDenied"  # a URL that resolves to a private or internal address
    APPROVAL_REFUSED = "ApprovalRefused"  # a click that does not count (who, when, signature)
    APPROVAL_CLOSED = "ApprovalClosed"  # a click on an approval that was already decided
    BUDGET_EXCEEDED = "BudgetExceeded"  # a USD budget has no room for the next model call
    BUDGET_UNPRICED = "BudgetUnpriced"  # a budget applies and the call cannot be priced: fail closed
