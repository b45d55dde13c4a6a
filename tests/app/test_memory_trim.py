"""app.memory_trim: the worker hands the heap's freed pages back to the OS now and then."""

from __future__ import annotations

import asyncio
import gc
import os
import platform

import pytest

from app import memory_trim
from app.memory_trim import malloc_trim, trim_freed_memory

MIB = 1024 * 1024


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_the_trim_gives_freed_heap_back_to_the_os():
    trim = malloc_trim()
    assert trim is not None
    # 60,000 blocks of 1 KiB come from malloc's heap (Python keeps only blocks of up to 512
    # bytes to itself). One in 64 stays, and the last: the freed pages lie between live
    # blocks, where the heap cannot shrink on its own; only the trim hands them back.
    blocks = [bytearray(1024) for _ in range(60_000)]
    kept = [*blocks[::64], blocks[-1]]
    del blocks
    gc.collect()
    freed_but_held = resident_bytes()
    trim(0)
    assert freed_but_held - resident_bytes() > 30 * MIB
    assert all(len(block) == 1024 for block in kept)


async def test_the_worker_trims_every_period_and_never_when_off(monkeypatch: pytest.MonkeyPatch):
    calls: list[int] = []
    monkeypatch.setattr(memory_trim, "malloc_trim", lambda: calls.append)
    trimming = asyncio.create_task(trim_freed_memory(0.05))
    await asyncio.sleep(0.4)
    trimming.cancel()
    assert 3 <= len(calls) <= 8 and set(calls) == {0}
    calls.clear()
    off = asyncio.create_task(trim_freed_memory(0))
    await asyncio.sleep(0.2)
    assert not off.done() and calls == []  # 0: the worker just waits
    off.cancel()
