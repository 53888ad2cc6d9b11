"""Some rows of a spilled source table, kept apart from the rest without reading it whole (issue 18).

The ``changes`` step of a snapshot or new-only drop keeps the new and changed rows of a table the
reader spilled (:class:`~salesbi.reading.spilled.SpilledFrame`) and leaves the unchanged ones
out. :func:`select_spilled` reads the spill a written batch at a time and hands each batch's
selected rows to a :class:`~salesbi.reading.spilled.SpillWriter`: a selection shorter than the
spill threshold comes back as one frame (what the reader gives for a table that short), a longer
one as a new spill file beside the first (removed with the run's staging folder). Either way it
equals ``spill.to_frame()[keep].reset_index(drop=True)`` and the validate, load and row-hash steps
take it as they take a read table; no frame as long as the spilled table exists meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from salesbi.reading.spilled import SpilledFrame, SpillWriter

#: the selected rows' spill file: ``<table>.selected.arrow`` beside the table's spill
SELECTED_SUFFIX = ".selected.arrow"


def table_blocks(
    frame: pd.DataFrame | SpilledFrame, rows: int | None, columns: Sequence[str] | None = None
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield ``(start, block)`` over a table in order: blocks of ``rows`` rows (None: the spill's
    batches, or a frame whole), ``start`` the first row's position; only ``columns`` when given.

    A frame's blocks are slices of it (no copy); a spill's are read from its file one at a time.
    """
    if isinstance(frame, SpilledFrame):
        for block in frame.blocks(rows, columns):
            yield int(block.index[0]), block
        return
    part = frame if columns is None else frame[list(columns)]
    step = rows or len(part)
    for start in range(0, len(part), max(step, 1)):
        yield start, part.iloc[start : start + step]


def take_rows(
    frame: pd.DataFrame | SpilledFrame, positions: np.ndarray, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Return the rows at ``positions`` (ascending) of a frame or a spill, index 0..k-1."""
    if isinstance(frame, SpilledFrame):
        return frame.take(positions, columns)
    part = frame if columns is None else frame[list(columns)]
    return part.iloc[np.asarray(positions, dtype=np.int64)].reset_index(drop=True)


def select_spilled(spill: SpilledFrame, keep: np.ndarray, *, keep_below: int) -> pd.DataFrame | SpilledFrame:
    """Return the rows of ``spill`` where ``keep`` is True, in order, index 0..k-1.

    Fewer than ``keep_below`` rows (the spill threshold): one frame; else a new
    :class:`SpilledFrame` written next to ``spill`` (``<name>.selected.arrow``). Every row kept:
    ``spill`` itself. What is held at once: one written batch and its selected rows (or the
    selected rows themselves while fewer than ``keep_below``).
    """
    keep = np.asarray(keep, dtype=bool)
    if len(keep) != len(spill):
        raise ValueError(f"a mask of {len(keep)} rows over a spill of {len(spill)}")
    if keep.all():
        return spill
    if not keep.any():
        return spill.take(np.array([], dtype=np.int64))
    path = spill.path.with_name(spill.path.name.removesuffix(".arrow") + SELECTED_SUFFIX)
    writer = SpillWriter(path, keep_below=keep_below)
    try:
        for block in spill.blocks():
            start = int(block.index[0])
            mask = keep[start : start + len(block)]
            if mask.any():
                writer.append(block if mask.all() else block[mask])
            del block
    except BaseException:
        writer.abort()
        raise
    return writer.finish()
