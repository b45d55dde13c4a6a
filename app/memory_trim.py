"""Give the worker's freed heap back to the operating system now and then.

A worker holding many cached runs allocates and frees many small buffers (payloads decoded,
histories read, activations built) in the SDK core's threads and in Python. glibc keeps what
was freed in its arenas for reuse, so a worker's resident memory only ever grows toward its
peak. ``malloc_trim(0)`` hands the free pages back; it is what the arenas would do themselves
if they shrank. It runs in a thread (ctypes drops the GIL for the call), so workflow tasks and
activities go on meanwhile. Off glibc (musl, macOS) there is nothing to call and nothing runs.
Measured: docs/benchmarks.md "Worker memory" (``bench/worker_scale.py``)."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


async def trim_freed_memory(every_s: float) -> None:
    """Every ``every_s`` seconds, return the heap's free pages to the OS; forever (0: never)."""
    trim = malloc_trim() if every_s > 0 else None
    if trim is None:
        await asyncio.Event().wait()
        return
    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(trim, 0)
        except OSError:  # pragma: no cover - glibc's call does not fail; keep serving if it does
            log.warning("malloc_trim failed")
