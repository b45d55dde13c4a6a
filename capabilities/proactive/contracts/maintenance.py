"""The maintenance schedule's workflow: its input and report."""

from __future__ import annotations

from dataclasses import dataclass, field

from capabilities.proactive.contracts.schedules import SchedulesReconciled


@dataclass(frozen=True)
class MaintenanceInput:
    """One run of the maintenance schedule."""

    months_ahead: int = 3  # partitions to have ready
    stale_claim_minutes: int = 15  # a claimed task row with no workflow after this long is orphaned
    mcp_refresh_hours: int = 6  # an MCP server's tool list older than this is listed again


@dataclass(frozen=True)
class PartitionsResult:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    skipped: str | None = None  # why nothing was done (no owner connection configured)
    drained: dict[str, int] = field(default_factory=dict)  # table -> rows moved out of its default


@dataclass(frozen=True)
class ReconcileRequest:
    stale_claim_minutes: int = 15


@dataclass(frozen=True)
class ReconcileResult:
    checked: int = 0
    orphaned: list[str] = field(default_factory=list)  # workflow ids recorded as never started
    budget_holds_released: int = 0  # budget reservations of crashed calls, past their expiry
    budget_warnings: int = 0  # 80%-of-a-monthly-budget notices sent to admins
    v1_signatures_pruned: int = 0  # remembered v1 webhook signatures past their tolerance


@dataclass(frozen=True)
class MaintenanceReport:
    partitions: PartitionsResult
    claims: ReconcileResult
    schedules: SchedulesReconciled = field(default_factory=SchedulesReconciled)
    mcp_refreshed: int = 0  # MCP servers whose tool list was listed again
    mcp_unreachable: int = 0  # MCP servers that could not be reached (they keep their last list)
