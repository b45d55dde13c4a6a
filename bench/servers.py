"""What the benches start the same way: a throwaway Temporal dev server."""

from __future__ import annotations

from pathlib import Path

from app.devservers import LocalTemporal, free_port
from lucy.contracts.ids import SEARCH_ATTRIBUTES


def scratch_temporal(db_file: Path) -> LocalTemporal:
    """A dev server on free ports, namespace ``default``, with Lucy's search attributes."""
    return LocalTemporal(
        db_file,
        port=free_port(),
        ui_port=free_port(),
        namespace="default",
        search_attributes=[k.name for k in SEARCH_ATTRIBUTES],
    )
