"""The task's live plan: each tool step (by the model's tool call id) with its status, kept in
the state and shown by the progress message (a Slack plan where the worker streams, the plain
progress message elsewhere). Pure and deterministic."""

from __future__ import annotations

from capabilities.task.contracts.task import TaskState
from lucy.contracts.slack import PlanStatus, PlanStep

WAITING = "waiting for approval"


def mark(state: TaskState, step_id: str, title: str, status: PlanStatus, details: str = "") -> None:
    """Add the step to the plan, or change its status (its place in the plan stays)."""
    step = PlanStep(id=step_id, title=title, status=status.value, details=details)
    for i, known in enumerate(state.plan):
        if known.id == step_id:
            state.plan[i] = step
            return
    state.plan.append(step)


def not_run(state: TaskState, step_id: str, title: str, decision: str) -> None:
    """The step was asked about and did not run (rejected, expired, refused)."""
    mark(state, step_id, title, PlanStatus.ERROR, f"not run: {decision}")
