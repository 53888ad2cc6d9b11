"""In-process hand-over of a pipeline run from a parent flow to its subflows.

Subflow parameters are recorded by the Prefect API, so they must stay small
and JSON-serialisable: a parent passes a key, the subflow looks the run up here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from salesbi.pipeline import Run

_ACTIVE: dict[str, Run] = {}


@contextmanager
def attached(run: Run) -> Iterator[str]:
    """Make ``run`` reachable by its run id for the duration of the block; yield the key."""
    if _ACTIVE.get(run.run_id) is run:  # already attached by an enclosing flow: leave it to that one
        yield run.run_id
        return
    _ACTIVE[run.run_id] = run
    try:
        yield run.run_id
    finally:
        _ACTIVE.pop(run.run_id, None)


def lookup(key: str) -> Run:
    """Return the active run registered under ``key``."""
    try:
        return _ACTIVE[key]
    except KeyError:
        raise LookupError(f"no active pipeline run {key!r} in this process") from None
