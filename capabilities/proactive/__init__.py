"""Proactive work: schedules that Temporal fires (recurrence, the Temporal mirror, the rules for
changing them, reconciliation). Kernel code: ingress and the worker both use it."""
