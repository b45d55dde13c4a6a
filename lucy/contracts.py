"""Public contracts shared by ingress, workflows and activities.

Pure data: frozen dataclasses for every workflow/activity input and output, the search
attribute keys, names and ids. Nothing here does I/O or reads the environment, so
workflows may import it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

from temporalio.common import SearchAttributeKey

TASK_WORKFLOW_NAME = "LucyTaskWorkflow"
DEFAULT_TASK_QUEUE = "lucy-tasks"

# Search attributes (keyword). Registered on the namespace; never hold secrets or message text.
SA_WORKSPACE = SearchAttributeKey.for_keyword("LucyWorkspace")
SA_USER = SearchAttributeKey.for_keyword("LucyUser")
SA_CHANNEL = SearchAttributeKey.for_keyword("LucyChannel")
SA_THREAD = SearchAttributeKey.for_keyword("LucyThread")
SA_STATUS = SearchAttributeKey.for_keyword("LucyStatus")
SA_INTENT = SearchAttributeKey.for_keyword("LucyIntent")
SA_SOURCE = SearchAttributeKey.for_keyword("LucySource")
SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[str], ...] = (
    SA_WORKSPACE,
    SA_USER,
    SA_CHANNEL,
    SA_THREAD,
    SA_STATUS,
    SA_INTENT,
    SA_SOURCE,
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


class TaskSource(StrEnum):
    MENTION = "mention"
    DM = "dm"
    COMMAND = "command"
    THREAD_REPLY = "thread_reply"
    SCHEDULE = "schedule"


def task_workflow_id(team_id: str, channel_id: str, message_ts: str) -> str:
    """The task workflow id for one Slack message.

    Derived from the message itself (team, channel, message ts), not from Slack's per-delivery
    event id, so that a redelivery, or the same message arriving as both ``app_mention`` and
    ``message``, maps to the same workflow and can never start a second task.
    """
    return f"lucy-task-{team_id}-{channel_id}-{message_ts}"


def command_workflow_id(team_id: str, channel_id: str, trigger_id: str) -> str:
    """The task workflow id for one ``/lucy <request>`` invocation (Slack's trigger id is unique)."""
    return f"lucy-task-{team_id}-{channel_id}-cmd-{trigger_id}"


def idempotency_key(*parts: str) -> str:
    """A short stable key for an activity side effect (workflow id + step)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class TaskInput:
    """What ingress knows when a task starts. Ids are Lucy's own (UUID strings) and Slack's."""

    workspace_id: str
    user_id: str
    channel_id: str
    slack_team_id: str
    slack_user_id: str
    slack_channel_id: str
    thread_ts: str
    message_ts: str
    text: str
    source: str = TaskSource.MENTION.value
    model_tier: str = "default"


@dataclass(frozen=True)
class TaskResult:
    status: str
    answer_ts: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    error_type: str | None = None


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class LlmRequest:
    messages: list[ChatMessage]
    tier: str = "default"
    max_tokens: int | None = None
    temperature: float | None = None


@dataclass(frozen=True)
class LlmResponse:
    content: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    finish_reason: str | None = None


@dataclass(frozen=True)
class PostMessageRequest:
    channel: str
    text: str
    idempotency_key: str
    thread_ts: str | None = None
    # Run the output pipeline (redact, Markdown -> mrkdwn, split): for text from a model.
    format: bool = True


@dataclass(frozen=True)
class PostMessageResult:
    ts: str  # the first message's ts when the text was split
    channel: str
    already_posted: bool = False
    parts: int = 1


@dataclass(frozen=True)
class TaskStarted:
    workflow_id: str
    run_id: str
    task: TaskInput


@dataclass(frozen=True)
class TaskFinished:
    workflow_id: str
    workspace_id: str
    status: str
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    answer_ts: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    result_data: dict[str, str] = field(default_factory=dict)
    # The workflow's clock when it finished (ISO 8601): the time of the cost and audit entries,
    # identical on every activity retry so that those entries are written once.
    occurred_at: str | None = None
    user_id: str | None = None


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
