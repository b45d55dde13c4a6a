"""How much a step can change or reach: the one scale the tools declare, the task's policy
applies and an approval records. Shared by the tools, task and approvals capabilities."""

from __future__ import annotations

from enum import StrEnum


class Risk(StrEnum):
    """How much a step can change or reach, lowest first. The values are the strings recorded
    histories and the ``approvals.risk_level`` column hold, so old payloads read as members."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for low up to 3 for critical (the order of declaration)."""
        return list(Risk).index(self)

    def at_least(self, other: Risk | str) -> bool:
        """This risk is ``other`` or above it."""
        return self.rank >= Risk(other).rank
