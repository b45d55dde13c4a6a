"""The task's step records: buffered, and written in the background (``records.steps``), so the
next step never waits for the database.

Under :data:`PACE_PATCH` a tool step's records wait for the next step's when the last write went
out less than :data:`RECORD_EVERY` ago: steps that come faster than that share one write (one
activity, one workflow task less per step). The buffer is workflow state, so nothing waits at
risk: it is written at the latest with the answer, before an approval's wait, before
continue-as-new, and when the task fails or is cancelled. Histories recorded before the patch
replay with a write per step."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from capabilities.task.activities.records import RecordActivities
from capabilities.task.contracts.records import StepBatch, StepRecord
from capabilities.task.contracts.task import TaskInput, TaskState
from capabilities.task.workflow import options
from lucy.contracts.llm import LlmResponse

PACE_PATCH = "speed-paced-records"
RECORD_EVERY = timedelta(seconds=1)


class StepRecorder:
    def __init__(self, task: TaskInput, state: TaskState) -> None:
        self._task = task
        self._state = state
        self._buffer: list[StepRecord] = []
        self._writes: list[asyncio.Task[Any]] = []
        self._last_write: datetime | None = None  # of this run

    def next_index(self) -> int:
        """The next step's index (of ``task_steps``, unique across the task's runs)."""
        self._state.step_index += 1
        return self._state.step_index

    def add(
        self,
        *,
        kind: str,
        name: str,
        status: str,
        input: dict[str, Any] | None = None,
        output: dict[str, Any] | None = None,
        error: str | None = None,
        llm: LlmResponse | None = None,
        index: int | None = None,
        started_at: datetime | None = None,
    ) -> None:
        """Buffer one step record (written with the step's others by :meth:`flush`)."""
        self._buffer.append(
            StepRecord(
                workflow_id=workflow.info().workflow_id,
                workspace_id=self._task.workspace_id,
                step_index=index if index is not None else self.next_index(),
                kind=kind,
                name=name,
                status=status,
                occurred_at=(started_at or workflow.now()).isoformat(),
                input=input or {},
                output=output or {},
                error=error,
                model=llm.model if llm else None,
                prompt_tokens=llm.prompt_tokens if llm else 0,
                completion_tokens=llm.completion_tokens if llm else 0,
                cost_usd=llm.cost_usd if llm else 0.0,
                user_id=self._task.user_id or None,
            )
        )

    def step_done(self) -> None:
        """A tool step ended: write its records now, or with the next step's when the last write
        (or the run's start) was under :data:`RECORD_EVERY` ago."""
        if workflow.patched(PACE_PATCH):
            last = self._last_write or workflow.info().start_time
            if workflow.now() - last < RECORD_EVERY:
                return
        self.flush()

    def flush(self) -> None:
        """Write the buffered records in one background activity."""
        if not self._buffer:
            return
        self._last_write = workflow.now()
        batch, self._buffer = self._buffer, []
        first, last = batch[0].step_index, batch[-1].step_index
        self._writes.append(
            workflow.start_activity_method(
                RecordActivities.steps,
                StepBatch(records=batch),
                **options.RECORD,
                summary=f"record steps {first}-{last}" if first != last else f"record step {first}",
            )
        )

    async def drain(self) -> None:
        """Wait for every background write; one that finally failed is logged, not fatal."""
        self.flush()
        writes, self._writes = self._writes, []
        for handle in writes:
            try:
                await handle
            except ActivityError as err:
                workflow.logger.error("a step record could not be written", extra={"error": str(err.cause)})
