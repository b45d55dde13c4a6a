"""The standing jobs' contracts: schedules (:mod:`~capabilities.proactive.contracts.schedules`),
monitors (:mod:`~capabilities.proactive.contracts.monitors`) and the maintenance workflow
(:mod:`~capabilities.proactive.contracts.maintenance`). Import from the modules."""
