"""Activities that write Lucy's business record to Postgres.

Each one runs in its own transaction and is idempotent: the task row is keyed by the
workflow id and only moves forward (see :mod:`lucy.db.repositories`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from capabilities.task.contracts.records import StepBatch, StepRecord, TaskFinished, TaskStarted
from capabilities.task.repository import (
    get_task,
    record_steps,
    record_task_finished,
    record_task_running,
    step_row,
)
from lucy.contracts.ids import idempotency_key
from lucy.db.repositories.ledger import audit_row, cost_row, record_audit, record_audits, record_costs
from lucy.db.repositories.tenants import tenant_transaction
from lucy.redact import redact_secrets

_PERMANENT = (IntegrityError, DataError, ProgrammingError)


def redacted(value: Any) -> Any:
    """``value`` with every string in it redacted: tool previews, arguments and error texts
    are written to the database only without the secrets they may hold."""
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, dict):
        return {k: redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(v) for v in value]
    return value


def _rejected(exc: Exception, what: str) -> ApplicationError:
    """A write the database refuses for good: retrying cannot help. Connection errors, by
    contrast, propagate as they are and Temporal retries them with backoff."""
    return ApplicationError(
        f"database rejected {what} ({exc.__class__.__name__})", type="DatabaseRejected", non_retryable=True
    )


class RecordActivities:
    """Writes task lifecycle rows through the repositories."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn(name="records.task_running")
    async def task_running(self, started: TaskStarted) -> str:
        """Create or update the ``tasks`` row as running; returns the task id."""
        task = started.task
        try:
            workspace_id = uuid.UUID(task.workspace_id)
            async with tenant_transaction(self._sessions, workspace_id) as session:
                task_id = await record_task_running(
                    session=session,
                    workspace_id=workspace_id,
                    workflow_id=started.workflow_id,
                    run_id=started.run_id,
                    requester_id=uuid.UUID(task.user_id) if task.user_id else None,
                    channel_id=uuid.UUID(task.channel_id) if task.channel_id else None,
                    source=task.source,
                    request_text=task.text,
                    slack_channel_id=task.slack_channel_id,
                    slack_thread_ts=task.thread_ts,
                    started_at=datetime.fromisoformat(started.started_at),
                )
        except _PERMANENT as exc:
            raise _rejected(exc, "the task start") from None
        return str(task_id)

    @activity.defn(name="records.task_finished")
    async def task_finished(self, finished: TaskFinished) -> bool:
        """In one transaction: the task row to its terminal status, and an ``audit_log`` entry
        keyed by the workflow id and the workflow's own timestamp, so a retried attempt writes
        nothing twice. (Each model call's cost was recorded with its step.) Returns whether
        this call moved the task."""
        occurred_at = (
            datetime.fromisoformat(finished.occurred_at) if finished.occurred_at else datetime.now(UTC)
        )
        try:
            workspace_id = uuid.UUID(finished.workspace_id)
            async with tenant_transaction(self._sessions, workspace_id) as session:
                task = await get_task(
                    session=session, workspace_id=workspace_id, workflow_id=finished.workflow_id
                )
                task_id = task.id if task is not None else None
                await record_audit(
                    session=session,
                    workspace_id=workspace_id,
                    idempotency_key=idempotency_key(finished.workflow_id, "task", finished.status),
                    occurred_at=occurred_at,
                    actor_type="lucy",
                    action=f"task.{finished.status}",
                    entity_type="task",
                    entity_id=str(task_id) if task_id else None,
                    task_id=task_id,
                    workflow_id=finished.workflow_id,
                    after_state={"status": finished.status, "error_type": finished.error_type},
                )
                return await record_task_finished(
                    session=session,
                    workspace_id=workspace_id,
                    workflow_id=finished.workflow_id,
                    status=finished.status,
                    completed_at=occurred_at,
                    model=finished.model,
                    prompt_tokens=finished.prompt_tokens,
                    completion_tokens=finished.completion_tokens,
                    cost_usd=finished.cost_usd,
                    error_type=finished.error_type,
                    error_message=redacted(finished.error_message),
                    result_data=dict(finished.result_data),
                )
        except _PERMANENT as exc:
            raise _rejected(exc, "the task result") from None

    @activity.defn(name="records.steps")
    async def steps(self, batch: StepBatch) -> int:
        """Agent steps' records (one task's), in one transaction of one statement per table:
        each step's ``task_steps`` row, plus a ``cost_log`` entry for an LLM call or an
        ``audit_log`` entry for a tool use. Every write is keyed by the workflow id and the step
        index, so a retry writes nothing twice. Returns how many were written: none when the
        task row does not exist (a task recorded elsewhere)."""
        if not batch.records:
            return 0
        first = batch.records[0]
        try:
            workspace_id = uuid.UUID(first.workspace_id)
            async with tenant_transaction(self._sessions, workspace_id) as session:
                task = await get_task(
                    session=session, workspace_id=workspace_id, workflow_id=first.workflow_id
                )
                if task is None:
                    activity.logger.warning("no task row for these steps; not recorded")
                    return 0
                at = [_StepAt(workspace_id, task.id, _at(r)) for r in batch.records]
                pairs = list(zip(batch.records, at, strict=True))
                await record_steps(
                    session=session, workspace_id=workspace_id, rows=[_step_row(r, a) for r, a in pairs]
                )
                await record_costs(session, [_cost_row(r, a) for r, a in pairs if _billed(r)])
                # (a decision is audited by approvals.settle)
                await record_audits(
                    session, [_tool_audit_row(r, a) for r, a in pairs if r.kind == "tool_use"]
                )
        except _PERMANENT as exc:
            raise _rejected(exc, "a task step") from None
        return len(batch.records)


def _at(record: StepRecord) -> datetime:
    return datetime.fromisoformat(record.occurred_at)


@dataclass(frozen=True)
class _StepAt:
    """Where a step is recorded: its workspace, its task row, when it happened."""

    workspace_id: uuid.UUID
    task_id: uuid.UUID
    occurred_at: datetime


def _step_row(record: StepRecord, at: _StepAt) -> dict[str, Any]:
    """The step's ``task_steps`` row."""
    terminal = record.status in ("completed", "failed", "skipped")
    return step_row(
        workspace_id=at.workspace_id,
        task_id=at.task_id,
        step_index=record.step_index,
        kind=record.kind,
        idempotency_key=idempotency_key(record.workflow_id, "step", str(record.step_index)),
        name=record.name[:255],
        status=record.status,
        input=redacted(record.input),
        output=redacted(record.output),
        error=redacted(record.error),
        prompt_tokens=record.prompt_tokens,
        completion_tokens=record.completion_tokens,
        cost_usd=record.cost_usd,
        started_at=at.occurred_at,
        completed_at=datetime.now(UTC) if terminal else None,
    )


def _billed(record: StepRecord) -> bool:
    """An LLM call that used tokens or money (it gets a ``cost_log`` entry)."""
    return record.kind == "llm_call" and bool(
        record.model and (record.prompt_tokens or record.completion_tokens or record.cost_usd)
    )


def _cost_row(record: StepRecord, at: _StepAt) -> dict[str, Any]:
    """The ``cost_log`` entry of an LLM call."""
    return cost_row(
        workspace_id=at.workspace_id,
        idempotency_key=idempotency_key(record.workflow_id, "llm", str(record.step_index)),
        occurred_at=at.occurred_at,
        cost_usd=record.cost_usd,
        prompt_tokens=record.prompt_tokens,
        completion_tokens=record.completion_tokens,
        model=record.model,
        task_id=at.task_id,
        user_id=uuid.UUID(record.user_id) if record.user_id else None,
    )


def _tool_audit_row(record: StepRecord, at: _StepAt) -> dict[str, Any]:
    """The ``audit_log`` entry of a tool use."""
    return audit_row(
        workspace_id=at.workspace_id,
        idempotency_key=idempotency_key(record.workflow_id, "step", str(record.step_index), "audit"),
        occurred_at=at.occurred_at,
        actor_type="lucy",
        action=f"tool.{record.status}",
        entity_type="task_step",
        entity_id=f"{at.task_id}:{record.step_index}",
        task_id=at.task_id,
        workflow_id=record.workflow_id,
        after_state={
            "tool": record.name,
            "status": record.status,
            **{k: redacted(v) for k, v in record.input.items() if k in ("summary", "risk")},
            **({"error": redacted(record.error[:300])} if record.error else {}),
        },
    )
