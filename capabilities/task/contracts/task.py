"""A task: what ingress starts it with, the context it reads once, its record, its result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from capabilities.approvals.contracts import ApprovalDecisionKind
from capabilities.email.contracts import EmailOrigin
from capabilities.tools.contracts import WorkspaceTool
from lucy.contracts.ids import TaskIntent, TaskSource, TaskStatus
from lucy.contracts.llm import ChatMessage, ModelTier
from lucy.contracts.slack import PlanStep


@dataclass(frozen=True)
class Delegation:
    """A sub-task's place under the task that delegated it (``TaskInput.delegation``): set by the
    parent's ``delegate`` tool, never by ingress. The child works in the parent's thread with
    the tools, the step slice and the policy view the parent gave it, and cannot delegate."""

    parent_workflow_id: str
    index: int  # 1-based, in the delegate call
    of: int  # how many sub-tasks the call made
    title: str
    tools: list[str] = field(default_factory=list)  # a subset of the parent's offered tools
    max_steps: int = 1  # the slice of the parent's remaining LLM steps it reserved
    attempt: int = 1  # 2: the retry at a higher tier after the first attempt failed
    # The parent's policy view when it delegated: the request is the parent's model's words,
    # so neither is reset by them.
    untrusted_seen: bool = False
    known_hosts: list[str] = field(default_factory=list)
    # Every tool call of the parent needed approval (its channel's rule, or a task from email):
    # so does every one of the sub-task's.
    requires_approval: bool = False

    @property
    def label(self) -> str:
        """``Sub-task 2 of 3: <title>`` (the approval message and the plan show it)."""
        return f"Sub-task {self.index} of {self.of}: {self.title}"


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
    model_tier: ModelTier = ModelTier.DEFAULT
    # A reply in the thread of a finished task: read the thread's earlier conversation first.
    with_thread_history: bool = False
    # Set by continue-as-new: the task's whole state so far. None for a new task.
    resume: TaskState | None = None
    # LLM steps per workflow run before continuing as new (keeps each run's history small).
    steps_per_run: int = 25
    # A run of a schedule (source "schedule"): the ``schedules`` row it belongs to.
    schedule_id: str = ""
    # A task from email (source "email"): the message it answers; its answer is also sent as
    # the email reply (automatically to a member, after an approval to an outside sender).
    email: EmailOrigin | None = None
    # A delegated sub-task (source "delegated"): its parent and limits. None for any other task.
    delegation: Delegation | None = None


@dataclass(frozen=True)
class TaskResult:
    status: TaskStatus
    answer_ts: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    error_type: str | None = None
    # A delegated sub-task's answer (it posts none itself: the parent's model reads it) and the
    # LLM steps it took (settled against its slice). Empty and 0 for any other task.
    answer: str = ""
    llm_steps: int = 0


@dataclass(frozen=True)
class TaskContextRequest:
    """Read the task's context (``context.prepare``: a read, it writes nothing)."""

    workflow_id: str
    task: TaskInput
    with_thread_history: bool = False


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
    tier_override: ModelTier | None = None  # a user's or channel's model preference
    channel_requires_approval: bool = False  # every tool call needs approval in this channel
    self_approval_allowed: bool = False  # the requester may approve their own high-risk steps
    approval_ttl_seconds: int = 24 * 3600
    approver_slack_ids: list[str] = field(default_factory=list)  # designated approvers
    approval_required_tools: list[str] = field(default_factory=list)  # workspace: always ask first
    max_steps: int = 12
    delegate_max_parallel: int = 4  # sub-tasks of one delegate call running at once
    thread_history: list[ChatMessage] = field(default_factory=list)
    # What the team asked Lucy to remember that bears on this request (one line each: id,
    # scope, author, date, source link, text), and whether another person wrote any of them.
    memories: str = ""
    memories_from_others: bool = False
    # The workspace's enabled skills (name -> description), offered through ``use_skill``.
    skills: dict[str, str] = field(default_factory=dict)
    # The workspace's own tools (its MCP servers'), read from its cached catalog.
    workspace_tools: list[WorkspaceTool] = field(default_factory=list)


# --------------------------------------------------------------------------- the workflow's state


@dataclass
class PendingApproval:
    """The approval the task waits for (at most one at a time)."""

    approval_id: str  # chosen by the workflow (workflow.uuid4), known before the message is posted
    tool: str
    summary: str
    risk: str
    approvers: list[str]
    expires_at: datetime
    arguments: dict[str, Any] = field(default_factory=dict)
    message_ts: str | None = None
    decision: ApprovalDecisionKind | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    settled: bool = False  # recorded in Postgres and shown in Slack
    owner_only: bool = False  # only the requester may approve (a step on their own account)
    admin_only: bool = False  # only a workspace admin may approve (a workspace memory)


@dataclass
class Usage:
    """What the task's model calls cost so far."""

    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class TaskState:
    """Everything the task workflow knows, in one place: queries read it, and continue-as-new
    carries it whole to the next run (``TaskInput.resume``)."""

    status: TaskStatus = TaskStatus.CREATED
    step: str = "created"
    started_at: str | None = None  # ISO 8601, the workflow's clock
    intent: TaskIntent | None = None
    tier: ModelTier | None = None
    context: TaskContext | None = None
    messages: list[ChatMessage] = field(default_factory=list)  # the conversation with the model
    step_index: int = 0  # of the task's records (task_steps), across runs
    llm_steps: int = 0
    usage: Usage = field(default_factory=Usage)
    notices: list[str] = field(default_factory=list)  # told to the user with the answer
    tool_state: dict[str, str] = field(default_factory=dict)  # e.g. the browser's tab
    tool_failures: dict[str, int] = field(default_factory=dict)
    unavailable_tools: list[str] = field(default_factory=list)
    # The policy's view of the context: has anything from outside the requester's own words
    # been read, and which sites did the requester name.
    untrusted_seen: bool = False
    known_hosts: list[str] = field(default_factory=list)
    seen_replies: list[str] = field(default_factory=list)  # Slack ts of replies taken
    pending: PendingApproval | None = None
    progress_ts: str | None = None  # the one progress message, once posted
    progress_attempted: bool = False
    plan: list[PlanStep] = field(default_factory=list)  # the tool steps, as the plan shows them
    reserved_steps: int = 0  # LLM steps held by running sub-tasks (settled as each one ends)
    # The thread the task answers in, when it opened one itself (a scheduled run posts its first
    # message in the channel and works in that message's thread); "" means ``TaskInput.thread_ts``.
    thread_ts: str = ""
    cancel_by: str | None = None
    answer_ts: str | None = None
    error_type: str | None = None


@dataclass(frozen=True)
class ApprovalView:
    approval_id: str
    tool: str
    summary: str
    risk: str
    approvers: list[str]
    expires_at: str
    owner_only: bool = False  # only the requester may approve (a step on their own account)


@dataclass(frozen=True)
class TaskView:
    """The ``status`` query: where a task is (``/lucy status``, the UI, the CLI)."""

    status: TaskStatus
    step: str
    intent: TaskIntent | None = None
    tier: ModelTier | None = None
    steps: int = 0
    elapsed_seconds: float = 0.0
    pending_approval: ApprovalView | None = None
