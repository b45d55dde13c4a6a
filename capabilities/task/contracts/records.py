"""The task's business record, written by the ``records.*`` activities: steps, start, finish."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from capabilities.task.contracts.task import TaskInput


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


@dataclass(frozen=True)
class TaskStarted:
    """The task is running (its ``tasks`` row moves forward from ``created``)."""

    workflow_id: str
    run_id: str
    task: TaskInput
    started_at: str  # ISO 8601, the workflow's clock


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
    # The workflow's clock when it finished (ISO 8601): the time of the audit entry, identical
    # on every activity retry so that it is written once. (Each LLM call's cost is recorded as
    # its own step.)
    occurred_at: str | None = None
