"""The task's contracts: what ingress starts it with, its state and view
(:mod:`~capabilities.task.contracts.task`), and its business record
(:mod:`~capabilities.task.contracts.records`). Import from the modules: nothing is re-exported."""
