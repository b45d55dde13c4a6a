"""The recurring-requests scan's workflow: its input and report."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PatternScan:
    """One run of the weekly scan."""

    lookback_days: int = 56  # requests older than this are not looked at


@dataclass(frozen=True)
class PatternsReport:
    workspaces: int = 0  # workspaces scanned
    found: int = 0  # recurring requests found (new or seen again)
    offered: int = 0  # offers sent (each pattern's requester is asked once)
