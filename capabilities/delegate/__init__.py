"""Sub-tasks: the ``delegate`` tool splits a task's work into sub-tasks that run as child
``LucyTaskWorkflow`` runs, in parallel, each with a slice of the task's step budget and a subset
of its tools (docs/delegate.md)."""
