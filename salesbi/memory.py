"""Process memory: giving freed memory back to the operating system, and measuring frames.

A run allocates through three allocators: Python's (small objects), glibc's ``malloc``
(numpy, pandas, SQLAlchemy row tuples) and Arrow's pool (mimalloc or jemalloc: Arrow
strings, Parquet, CSV parsing). Each keeps what was freed for its own later use, so memory
one step frees (the load's row tuples, the CSV reader's buffers) is not available to the
next step's other allocator and the process's resident size only ever grows.
:func:`release_freed_memory` hands the free pages of all three back between steps; it frees
nothing that is still referenced. :func:`map_large_allocations` makes glibc give large blocks
back as soon as they are freed, also inside a step (the model steps run in threads, each with
its own heap arena). :func:`freeze_long_lived_objects` keeps the full collections between steps
from walking every imported module's objects again. See docs/scaling.md for the measurements.
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


_frozen_once = False


def freeze_long_lived_objects() -> bool:
    """Return whether this call froze the objects alive now (``gc.freeze()``); only the first call does.

    Called when a run starts: what is alive then is mostly the libraries a run imports (pandas,
    Great Expectations, SQLAlchemy, Prefect: ~400,000 objects), which every full collection of
    :func:`release_freed_memory` would otherwise walk again (~0.26 s CPU per step). Frozen
    objects are never collected as cyclic garbage, so only the first call of the process freezes:
    what a long-lived process (the API, a Prefect worker) creates later stays collectable.
    """
    global _frozen_once
    if _frozen_once:
        return False
    gc.collect()  # what is garbage now is freed, not frozen
    gc.freeze()
    _frozen_once = True
    return True


#: glibc ``mallopt`` parameter number of ``M_MMAP_THRESHOLD`` (``<malloc.h>``)
_M_MMAP_THRESHOLD = -3

#: blocks of at least this many bytes get their own memory map, returned to the OS on ``free``
MMAP_THRESHOLD = 1 << 20


def map_large_allocations(threshold: int = MMAP_THRESHOLD) -> bool:
    """Return whether glibc now maps every block of at least ``threshold`` bytes on its own.

    glibc's default threshold starts at 128 KiB and rises (up to 32 MiB) each time a mapped block
    is freed, so after the first large frames are dropped, blocks of a few MiB come from the heap
    arenas and stay there once freed; with the model steps in threads (one arena each) that was
    300 MB of the peak at 1M order lines. A fixed threshold stops the rise. Nothing changes when
    the user set ``glibc.malloc.mmap_threshold`` in ``GLIBC_TUNABLES`` (theirs stands), or when
    the C library is not glibc (False).
    """
    if "mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))


def frame_bytes(frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Return name → bytes each frame holds (strings counted in full, ``memory_usage(deep=True)``)."""
    return {name: int(frame.memory_usage(deep=True).sum()) for name, frame in frames.items()}
