"""The memory census of the tests: which objects are alive at a point of a run.

``gc.get_objects()`` also hands out objects another thread is still building. CPython builds a
tuple from an iterator (``zip(*generator)``, ``tuple(generator)``) by resizing it in place, which
it may do only while it holds the tuple's sole reference; the census's list holds a second one, and
the other thread then fails with ``SystemError: Objects/tupleobject.c: bad argument to internal
function`` (seen once in CI: the predictions fit, while the segments fit took a census). So a census
waits for the background import of Great Expectations and refuses to run beside the model threads:
a run that takes a census inside a model step runs its steps one after another (``model_workers=1``).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Collection

import pandas as pd

#: the threads that build objects while a run goes on (salesbi.validation.gxcontext, salesbi.pipeline)
IMPORT_THREAD = "import-great-expectations"
MODEL_THREAD_PREFIX = "salesbi-model"


def live_objects() -> list[object]:
    """Return every object the garbage collector tracks, after a full collection.

    Raises RuntimeError when model steps run in other threads (set ``model_workers=1``).
    """
    me = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not me and thread.name == IMPORT_THREAD:
            thread.join()
    beside = [t.name for t in threading.enumerate() if t is not me and t.name.startswith(MODEL_THREAD_PREFIX)]
    if beside:
        raise RuntimeError(
            f"a census beside the model threads {beside}: run the pipeline with model_workers=1"
        )
    gc.collect()
    return gc.get_objects()


def frames_of_length(lengths: int | Collection[int]) -> list[list[str]]:
    """Return the columns of every live DataFrame whose length is one of ``lengths``."""
    wanted = {lengths} if isinstance(lengths, int) else set(lengths)
    return [list(o.columns) for o in live_objects() if isinstance(o, pd.DataFrame) and len(o) in wanted]
