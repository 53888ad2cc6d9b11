"""Process memory: giving freed memory back to the operating system, and measuring frames.

A run allocates through three allocators: Python's (small objects), glibc's ``malloc``
(numpy, pandas, SQLAlchemy row tuples) and Arrow's pool (mimalloc or jemalloc: Arrow
strings, Parquet, CSV parsing). Each keeps what was freed for its own later use, so memory
one step frees (the load's row tuples, the CSV reader's buffers) is not available to the
next step's other allocator and the process's resident size only ever grows.
:func:`release_freed_memory` hands the free pages of all three back between steps; it frees
nothing that is still referenced. See docs/scaling.md for the measurements.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from collections.abc import Mapping
from functools import cache
from typing import Any

import pandas as pd


@cache
def _libc() -> Any:
    """Return glibc (None on other C libraries and platforms: there is nothing to trim)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    return lib if hasattr(lib, "malloc_trim") else None


def resident_bytes() -> int | None:
    """Return this process's resident set size in bytes (None where ``/proc`` is not available)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def release_freed_memory() -> int | None:
    """Return freed memory to the OS (GC, Arrow's pool, glibc's heap); return the bytes RSS fell by.

    Returns None when the resident size cannot be read. Safe to call at any time: only memory
    nothing refers to is released; it costs milliseconds (a full GC and a heap walk).
    """
    before = resident_bytes()
    gc.collect()
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        pass
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
    after = resident_bytes()
    if before is None or after is None:
        return None
    return max(before - after, 0)


def frame_bytes(frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Return name → bytes each frame holds (strings counted in full, ``memory_usage(deep=True)``)."""
    return {name: int(frame.memory_usage(deep=True).sum()) for name, frame in frames.items()}
