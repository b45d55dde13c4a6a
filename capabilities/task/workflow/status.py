"""The task's status: set in the state and in the ``LucyStatus`` search attribute together, and
read back as the ``status`` query's view."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from capabilities.task.contracts.task import ApprovalView, TaskState, TaskView
from lucy.contracts.ids import SA_STATUS, TaskStatus


def set_status(state: TaskState, status: TaskStatus, step: str) -> None:
    state.status, state.step = status, step
    workflow.upsert_search_attributes([SA_STATUS.value_set(status.value)])


STOPPED_BY_BUDGET = TaskStatus.STOPPED_BY_BUDGET  # LucyStatus and the status view; the record says failed


def set_stopped_by_budget(state: TaskState) -> None:
    """A task a budget stopped at a step boundary: its own status in the ``status`` query and
    ``LucyStatus``; the ``tasks`` row is failed with error type ``BudgetExceeded``."""
    state.status, state.step = STOPPED_BY_BUDGET, "stopped by budget"
    workflow.upsert_search_attributes([SA_STATUS.value_set(STOPPED_BY_BUDGET.value)])


def view(state: TaskState) -> TaskView:
    """Where the task is: status and step, the elapsed time and the pending approval."""
    started = state.started_at
    elapsed = (workflow.now() - datetime.fromisoformat(started)).total_seconds() if started else 0.0
    p = state.pending
    pending = (
        ApprovalView(
            approval_id=p.approval_id,
            tool=p.tool,
            summary=p.summary,
            risk=p.risk,
            approvers=list(p.approvers),
            expires_at=p.expires_at.isoformat(),
        )
        if p is not None and p.decision is None
        else None
    )
    return TaskView(
        status=state.status,
        step=state.step,
        intent=state.intent,
        tier=state.tier,
        steps=state.step_index,
        elapsed_seconds=round(elapsed, 1),
        pending_approval=pending,
    )
