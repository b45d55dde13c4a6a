"""The delegate tool inside ``LucyTaskWorkflow``: the parent's fan-out
(:mod:`capabilities.delegate.workflow.fanout`), the words it shows
(:mod:`capabilities.delegate.workflow.words`) and how a child starts
(:mod:`capabilities.delegate.workflow.child`). Workflow code: deterministic."""
