"""``LucyTaskWorkflow``: one Slack request, worked on by an agent until it is answered.

The run (:mod:`.workflow`): record the task as running, read its context and classify the
request, all at once; then loop: an LLM step (:mod:`.models`) with the tool catalog
(:mod:`.tools`) -> each tool call validated, put to a person where :mod:`.policy` says so
(:mod:`.approvals`), run as its own activity (:mod:`.acting`) -> the result back to the model;
finally post the answer (:mod:`.posting`) and record the outcome (:mod:`.recorder`). Prompts and
what Lucy says in plain words are in :mod:`.prompts`; keeping the context small in
:mod:`.compaction`; withdrawing failing tools in :mod:`.breaker`; timeouts and retries in
:mod:`.options`.

**One state.** Everything the workflow knows is one ``TaskState`` (:mod:`capabilities.task.contracts.task`):
queries read it, continue-as-new carries it whole (``TaskInput.resume``). Only runtime handles
(the running step, the progress pump, records being written) live outside it.

**Who owns which fact.**
- *Is the task running?* Temporal does: the execution's status, and the ``LucyStatus`` search
  attribute the workflow sets with its state. Ingress never reads a running state from Postgres:
  it asks the workflow (an update that is refused once the task is finishing).
- *The task's business record* (``tasks``, ``task_steps``, costs, audit) is Postgres', written
  only through the ``records.*`` activities: ingress creates the row when it claims a message
  (``created``, or ``cancelled`` when a limit refused it); the workflow moves it to
  ``running`` (``records.task_running``) and to its end (``records.task_finished``); the
  maintenance schedule marks ``failed`` only rows still ``created`` whose workflow never started.
- *The task's context* (people, channel, policy, tools) is read once, by ``context.prepare``,
  which writes nothing.
- *Who decided* is verified by the worker (``identity.verify``), never taken from a click.

**Imports.** The modules of this package are pure and deterministic (no I/O, clock, randomness
or environment: only ``workflow.*`` APIs). The worker runs workflows without Temporal's sandbox
(:func:`app.worker.workflow_runner`), so they are imported once per worker and a worker holding
a thousand waiting tasks keeps one copy of them; ``tests/test_architecture.py`` reads every line
workflow code runs for what the sandbox would have stopped. :mod:`.workflow` still imports them
through ``imports_passed_through`` (a no-op without the sandbox), by full name, so a sandboxed
runner (``bench/worker_scale.py --compare-sandbox``) would not re-import them per run either.
"""

from capabilities.task.workflow.workflow import LucyTaskWorkflow

__all__ = ["LucyTaskWorkflow"]
