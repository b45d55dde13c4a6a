"""The task's last record: the ``tasks`` row to its end and its audit entry
(``records.task_finished``), after the last step records.

Under the ``speed-finish-together`` patch the end costs one round trip less on each side: the
answer's step records are written while the answer is posted (:func:`early_flush`), and the
final record is a *local* activity, run by the worker inside the workflow task that saw the
answer posted, so the run completes in that same task instead of waiting for one more activity
to be scheduled, dispatched and reported. It stays idempotent (keyed by the workflow id and the
final status), so a worker killed during it only runs it again in the next workflow task.
Histories recorded before the patch keep the old order (drain, then a regular activity)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from capabilities.task.activities.records import RecordActivities
from capabilities.task.contracts.records import TaskFinished
from capabilities.task.contracts.task import TaskInput, TaskState
from capabilities.task.workflow import options
from capabilities.task.workflow.recorder import StepRecorder
from lucy.contracts.ids import TaskStatus

FINISH_PATCH = "speed-finish-together"


def early_flush(recorder: StepRecorder) -> None:
    """Start writing the buffered step records now (they then go alongside the answer's post)."""
    if workflow.patched(FINISH_PATCH):
        recorder.flush()


def finished(task: TaskInput, state: TaskState, final: TaskStatus, error_message: str | None) -> TaskFinished:
    """The final record of the task, from its state."""
    usage = state.usage
    return TaskFinished(
        workflow_id=workflow.info().workflow_id,
        workspace_id=task.workspace_id,
        status=final.value,
        model=usage.model,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost_usd=round(usage.cost_usd, 6),
        answer_ts=state.answer_ts,
        error_type=state.error_type if final != TaskStatus.COMPLETED else None,
        error_message=error_message,
        result_data={
            "answer_ts": state.answer_ts or "",
            "intent": state.intent or "",
            "steps": str(state.step_index),
        },
        occurred_at=workflow.now().isoformat(),
    )


async def record_finished(
    task: TaskInput, state: TaskState, recorder: StepRecorder, final: TaskStatus, error_message: str | None
) -> None:
    """Write the last step records, then the task's outcome."""
    await recorder.drain()
    record = finished(task, state, final, error_message)
    summary = f"record task: {final.value}"
    if workflow.patched(FINISH_PATCH):
        await workflow.execute_local_activity_method(
            RecordActivities.task_finished,
            record,
            start_to_close_timeout=options.RECORD_TIMEOUT,
            schedule_to_close_timeout=options.RECORD_DEADLINE,
            retry_policy=options.RECORD_RETRY,
            summary=summary,
        )
        return
    await workflow.execute_activity_method(
        RecordActivities.task_finished, record, **options.RECORD, summary=summary
    )
