"""Public contracts shared by ingress, workflows and activities.

Pure data: frozen dataclasses for every workflow/activity input and output, the search
attribute keys, names and ids. Nothing here does I/O or reads the environment, so
workflows may import it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from temporalio.common import SearchAttributeKey

TASK_WORKFLOW_NAME = "LucyTaskWorkflow"
MAINTENANCE_WORKFLOW_NAME = "LucyMaintenanceWorkflow"
MAINTENANCE_SCHEDULE_ID = "lucy-maintenance"
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


APPROVE_ACTION_ID = "lucy_approve"
REJECT_ACTION_ID = "lucy_reject"
CANCEL_ACTION_ID = "lucy_cancel"


def approval_button_value(workflow_id: str, approval_id: str) -> str:
    """What an Approve/Reject button carries back to ingress: which task, which approval."""
    return json.dumps({"w": workflow_id, "a": approval_id}, separators=(",", ":"))


def approval_buttons(workflow_id: str, approval_id: str) -> dict[str, Any]:
    """The Approve / Reject actions block (on the thread's message and in App Home)."""
    value = approval_button_value(workflow_id, approval_id)
    return {
        "type": "actions",
        "block_id": f"lucy_approval_{approval_id}"[:255],
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION_ID,
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": value,
            },
            {
                "type": "button",
                "action_id": REJECT_ACTION_ID,
                "text": {"type": "plain_text", "text": "Reject"},
                "style": "danger",
                "value": value,
            },
        ],
    }


# Tokens, keys and URL passwords, wherever they appear in a text (shared by the log redaction,
# the output pipeline and the activity summaries the workflow writes into Temporal). Re-exported
# here so that workflows reach them through this module; ``lucy.redact`` is pure stdlib.
from lucy.redact import REDACTED as REDACTED  # noqa: E402
from lucy.redact import redact_secrets as redact_secrets  # noqa: E402


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
    # A reply in the thread of a finished task: read the thread's earlier conversation first.
    with_thread_history: bool = False
    # Set by continue-as-new: the agent's state so far. None for a new task.
    resume: AgentCheckpoint | None = None
    # LLM steps per workflow run before continuing as new (keeps each run's history small).
    steps_per_run: int = 25


@dataclass(frozen=True)
class TaskResult:
    status: str
    answer_ts: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    error_type: str | None = None


@dataclass(frozen=True)
class ToolCall:
    """A tool call as the model asked for it; ``arguments`` is the model's raw JSON text, which
    may be malformed (the workflow answers that to the model as a tool error)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatMessage:
    role: str  # system | user | assistant | tool
    content: str
    tool_calls: list[ToolCall] | None = None  # an assistant turn that called tools
    tool_call_id: str | None = None  # a tool turn: the call it answers


@dataclass(frozen=True)
class ToolSpec:
    """One tool offered to the model (OpenAI ``tools`` entry of type ``function``)."""

    name: str
    description: str
    parameters: dict[str, Any]


class LlmProvider(StrEnum):
    PRIMARY = "primary"  # LUCY_OPENROUTER_*
    FALLBACK = "fallback"  # LUCY_LLM_FALLBACK_*


@dataclass(frozen=True)
class LlmRequest:
    messages: list[ChatMessage]
    tier: str = "default"
    max_tokens: int | None = None
    temperature: float | None = None
    tools: list[ToolSpec] | None = None
    provider: str = LlmProvider.PRIMARY.value
    json_object: bool = False  # ask for ``response_format: {"type": "json_object"}``


@dataclass(frozen=True)
class LlmResponse:
    content: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    finish_reason: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    provider: str = LlmProvider.PRIMARY.value


# --------------------------------------------------------------------------- tools


@dataclass(frozen=True)
class ToolRequest:
    """One tool execution. ``tool`` is the catalog name the model used (``exec``,
    ``read_file``, ``browser``...); ``arguments`` are already parsed and validated as JSON.
    ``state`` carries small per-task tool state between calls (the browser's tab id and url)."""

    workflow_id: str
    step: int
    tool: str
    arguments: dict[str, Any]
    workspace_id: str = ""
    slack_channel_id: str = ""
    thread_ts: str = ""
    state: dict[str, str] = field(default_factory=dict)
    # Who the task works for (Slack user id): per-user tool identities (Composio entity,
    # browser profile) are derived from it on the worker, never chosen by the model.
    slack_user_id: str = ""


@dataclass(frozen=True)
class ToolResult:
    """What the model sees (``output``, truncated so the history stays small) and the updated
    per-task tool ``state``. ``ok=False`` is a failure the model should hear about (a command
    that exited non-zero); infrastructure errors are raised as ``ApplicationError`` instead."""

    output: str
    ok: bool = True
    truncated: bool = False
    state: dict[str, str] = field(default_factory=dict)


TOOL_OUTPUT_LIMIT = 6_000  # characters of tool output kept in the workflow history


def truncate_output(text: str, limit: int = TOOL_OUTPUT_LIMIT) -> tuple[str, bool]:
    """Head and tail of a long tool output, with a marker saying how much was left out."""
    if len(text) <= limit:
        return text, False
    half = limit // 2
    omitted = len(text) - 2 * half
    return f"{text[:half]}\n[… {omitted} characters omitted …]\n{text[-half:]}", True


# --------------------------------------------------------------------------- task context


@dataclass(frozen=True)
class TaskContextRequest:
    workflow_id: str
    task: TaskInput
    with_thread_history: bool = False
    run_id: str = ""  # set: record the task as running first (one activity instead of two)


@dataclass(frozen=True)
class TaskContext:
    """What the worker knows about the task's surroundings, read once when the task starts:
    the prompt's environment, the tools this deployment has configured and the approval
    policy of the workspace and channel."""

    task_id: str
    workspace_name: str = ""
    channel_name: str = ""
    user_name: str = ""
    user_timezone: str = "UTC"
    local_time: str = ""  # "Saturday 21 November 2026, 14:05 (Europe/Berlin)", read at the start
    available_tools: list[str] = field(default_factory=list)
    tier_override: str | None = None  # a user's or channel's model preference
    channel_requires_approval: bool = False  # every tool call needs approval in this channel
    self_approval_allowed: bool = False  # the requester may approve their own high-risk steps
    approval_ttl_seconds: int = 24 * 3600
    approver_slack_ids: list[str] = field(default_factory=list)  # designated approvers
    approval_required_tools: list[str] = field(default_factory=list)  # workspace: always ask first
    max_steps: int = 12
    thread_history: list[ChatMessage] = field(default_factory=list)


@dataclass(frozen=True)
class AgentCheckpoint:
    """The agent loop's state, carried across continue-as-new."""

    context: TaskContext
    messages: list[ChatMessage]
    step_index: int
    llm_steps: int
    intent: str
    tier: str
    progress_ts: str | None
    started_at: str
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    notices: list[str] = field(default_factory=list)
    tool_state: dict[str, str] = field(default_factory=dict)
    unavailable_tools: list[str] = field(default_factory=list)
    seen_replies: list[str] = field(default_factory=list)
    untrusted_seen: bool = False
    known_hosts: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- steps, approvals


@dataclass(frozen=True)
class StepRecord:
    """One row of ``task_steps`` (and, for LLM calls, one ``cost_log`` entry; for tools and
    decisions, one ``audit_log`` entry), written idempotently keyed by workflow id + index."""

    workflow_id: str
    workspace_id: str
    step_index: int
    kind: str  # llm_call | tool_use | approval_wait
    name: str
    status: str  # running | completed | failed | skipped
    occurred_at: str  # the workflow's clock, ISO 8601
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    user_id: str | None = None


@dataclass(frozen=True)
class StepBatch:
    """Step records written together (one activity per agent step, not one per record)."""

    records: list[StepRecord]


class ApprovalDecisionKind(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(frozen=True)
class ApprovalRequest:
    """Create the ``approvals`` row and post the Block Kit message (one activity, idempotent)."""

    workflow_id: str
    workspace_id: str
    approval_id: str  # chosen by the workflow (workflow.uuid4), so it is known before the post
    approval_key: str  # idempotency key: workflow id + step
    tool: str
    summary: str  # what will run, in one line
    reason: str  # why Lucy wants to run it
    risk_level: str  # low | medium | high | critical
    slack_channel_id: str
    thread_ts: str
    requester_slack_id: str
    approver_slack_ids: list[str]
    expires_at: str  # ISO 8601
    requester_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # Every argument of the call, in full: the approver sees all of them (escaped, redacted of
    # secrets, as a snippet when long) and the audit log records them.
    arguments: dict[str, Any] = field(default_factory=dict)
    because: str = ""  # why policy asks (Lucy's words, not the model's)
    requested_at: str = ""  # ISO 8601, the workflow's clock: the audit entry's time on every retry


@dataclass(frozen=True)
class ApprovalPosted:
    approval_id: str
    message_ts: str | None
    # Set when the step could not be shown to an approver in full: nobody is asked, and the
    # step does not run.
    refused: str | None = None


@dataclass(frozen=True)
class ApprovalDecision:
    """An Approve/Reject click, delivered by ingress as the ``decide_approval`` update.

    It says who clicked, signed by the ingress (:mod:`lucy.signing`); it never says what the
    clicker may do. The worker checks the signature and reads the clicker's role from Slack
    before the workflow decides, by its own rules, whether the click counts."""

    approval_id: str
    decision: str  # approved | rejected
    slack_user_id: str
    slack_team_id: str = ""
    issued_at: str = ""  # ISO 8601, when the ingress signed it
    signature: str = ""
    user_name: str = ""


@dataclass(frozen=True)
class ApprovalOutcome:
    approval_id: str
    decision: str
    decided_by_slack_id: str | None
    decided_at: str


@dataclass(frozen=True)
class ApprovalSettled:
    """Record a decision (``approvals`` + ``audit_log``) and update the Block Kit message."""

    workflow_id: str
    workspace_id: str
    approval_id: str
    decision: str
    decided_at: str
    slack_channel_id: str
    message_ts: str | None
    summary: str
    risk_level: str
    decided_by_slack_id: str | None = None


@dataclass(frozen=True)
class CancelRequest:
    """The ``cancel`` update (the Cancel button, ``/lucy cancel``): who asks, signed by the
    ingress like a decision."""

    slack_user_id: str
    slack_team_id: str = ""
    issued_at: str = ""
    signature: str = ""


@dataclass(frozen=True)
class ActorCheck:
    """Verify a signed claim and look its author up in Slack (activity ``identity.verify``)."""

    kind: str  # decision | cancel
    workflow_id: str
    subject: str  # the approval id, or "" for a cancel
    verdict: str  # approved | rejected | cancel
    slack_user_id: str
    slack_team_id: str
    issued_at: str
    signature: str
    expected_team_id: str  # the task's workspace: a click from another team never counts


@dataclass(frozen=True)
class Actor:
    """Who clicked, as the worker verified it. ``problem`` is None when the claim is genuine."""

    slack_user_id: str
    problem: str | None = None
    role: str = "member"  # owner | admin | member | guest (restricted, or another team's user)
    deleted: bool = False

    @property
    def is_admin(self) -> bool:
        return self.problem is None and not self.deleted and self.role in ("admin", "owner")

    @property
    def is_guest(self) -> bool:
        return self.role == "guest"


@dataclass(frozen=True)
class ThreadReply:
    """A person's reply in the thread of a running task (the ``thread_reply`` signal)."""

    slack_user_id: str
    text: str
    ts: str


@dataclass(frozen=True)
class UpdateMessageRequest:
    """``chat.update`` of a message Lucy posted (the progress message, an approval message)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class PostMessageRequest:
    channel: str
    text: str
    idempotency_key: str
    thread_ts: str | None = None
    # Run the output pipeline (redact, Markdown -> mrkdwn, split): for text from a model.
    format: bool = True
    blocks: list[dict[str, Any]] | None = None


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
    # The agent loop records each LLM call's cost as its own step; then the finish writes none.
    cost_recorded: bool = False


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


# --------------------------------------------------------------------------- maintenance


@dataclass(frozen=True)
class MaintenanceInput:
    """One run of the maintenance schedule."""

    months_ahead: int = 3  # partitions to have ready
    stale_claim_minutes: int = 15  # a claimed task row with no workflow after this long is orphaned


@dataclass(frozen=True)
class PartitionsResult:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    skipped: str | None = None  # why nothing was done (no owner connection configured)
    drained: dict[str, int] = field(default_factory=dict)  # table -> rows moved out of its default


@dataclass(frozen=True)
class ReconcileRequest:
    stale_claim_minutes: int = 15


@dataclass(frozen=True)
class ReconcileResult:
    checked: int = 0
    orphaned: list[str] = field(default_factory=list)  # workflow ids recorded as never started


@dataclass(frozen=True)
class MaintenanceReport:
    partitions: PartitionsResult
    claims: ReconcileResult
