"""Core's order lines as ordered blocks: ``order_items`` in key order, a batch at a time, never whole.

When ``order_items`` is long, the report step does not read it back as one frame: it reads
core's ``order_items`` in primary-key order (order_id, line_number) in batches
(:func:`salesbi.warehouse.ordered_read.ordered_batches`) and cuts them into blocks of whole
orders (:func:`whole_order_blocks`: the rule of :func:`salesbi.reports.fact.order_block_bounds`,
so the blocks, and the fact's row groups, are the ones the whole frame gives). Nothing is
sorted in memory: the database serves the order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from salesbi import contract
from salesbi.errors import SalesBIError
from salesbi.types import conform
from salesbi.warehouse.ordered_read import ORDERED_BATCH_ROWS, ordered_batches


@dataclass(frozen=True)
class OrderLineBlocks:
    """Core's ``order_items`` as frames in (order_id, line_number) order; never one frame.

    ``batches(rows)`` yields the lines (conformed to the contract's ``order_items``) in key order
    as frames of about ``rows`` lines (an order may be cut between two batches); it can be
    called again (each call reads the lines anew). ``origin`` says where they are read from.
    Iterating checks the order (:class:`KeyOrderCheck`): lines out of key order raise.
    """

    source: Callable[[int], Iterable[pd.DataFrame]]
    origin: str

    def batches(self, rows: int = ORDERED_BATCH_ROWS) -> Iterator[pd.DataFrame]:
        """Yield the lines in key order, conformed, as frames of about ``rows`` lines (at least one)."""
        check = KeyOrderCheck()
        for batch in self.source(rows):
            frame = conform(batch.reset_index(drop=True), contract.ORDER_ITEMS)
            check.add(frame)
            yield frame


def warehouse_lines(engine: Engine, metadata: sa.MetaData) -> OrderLineBlocks:
    """Return core's ``order_items`` of the warehouse as :class:`OrderLineBlocks` (an ordered read)."""
    table = metadata.tables["core.order_items"]
    return OrderLineBlocks(
        lambda rows: ordered_batches(engine, table, rows), f"warehouse ({engine.dialect.name})"
    )


def frame_lines(items: pd.DataFrame) -> OrderLineBlocks:
    """Return the lines of the ``order_items`` frame ``items`` as :class:`OrderLineBlocks` (sorted once).

    For tests and small tables: the whole frame is held (the warehouse's lines are never).
    """
    order = pc.sort_indices(
        pa.table(
            {
                "o": pc.cast(pa.array(items["order_id"], from_pandas=True), pa.large_string()),
                "l": pa.array(items["line_number"], from_pandas=True),
            }
        ),
        sort_keys=[("o", "ascending"), ("l", "ascending")],
    ).to_numpy()
    ordered = items.iloc[order].reset_index(drop=True)

    def source(rows: int) -> Iterator[pd.DataFrame]:
        if not len(ordered):
            yield ordered
        for start in range(0, len(ordered), rows):
            yield ordered.iloc[start : start + rows]

    return OrderLineBlocks(source, "frame")


class KeyOrderCheck:
    """Checks that batches of lines come in (order_id, line_number) order, ids by their bytes."""

    def __init__(self) -> None:
        self._last: tuple[str, int] | None = None

    def add(self, frame: pd.DataFrame) -> None:
        """Raise SalesBIError unless ``frame``'s lines follow the last batch's in key order."""
        if not len(frame):
            return
        ids = pc.cast(pa.array(frame["order_id"], from_pandas=True), pa.large_string())
        lines = pa.array(frame["line_number"], from_pandas=True)
        if ids.null_count or lines.null_count:
            raise _unordered("a line without an order id or line number")
        if self._last is not None:
            ids = pa.concat_arrays([pa.array([self._last[0]], pa.large_string()), ids])
            lines = pa.concat_arrays([pa.array([self._last[1]], lines.type), lines])
        n = len(ids)
        if n > 1:
            prev_id, next_id = ids.slice(0, n - 1), ids.slice(1)
            same = pc.equal(prev_id, next_id)
            bad = pc.or_(
                pc.less(next_id, prev_id),
                pc.and_(same, pc.less_equal(lines.slice(1), lines.slice(0, n - 1))),
            )
            if pc.any(bad).as_py():
                raise _unordered("lines out of (order_id, line_number) order")
        self._last = (ids[-1].as_py(), lines[-1].as_py())


def _unordered(what: str) -> SalesBIError:
    return SalesBIError(
        f"core.order_items was read with {what}",
        hint="the warehouse must sort order_id by its bytes (a binary collation): build the reports "
        "with --reports-in warehouse, or (salesbi run) raise --spill-rows above the table's length",
    )


def order_ids(frame: pd.DataFrame) -> pa.Array:
    """Return the ``order_id`` column of ``frame`` as one Arrow large_string array."""
    arr = pa.array(frame["order_id"], from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return pc.cast(arr, pa.large_string())


def whole_order_blocks(batches: Iterable[pd.DataFrame], block_lines: int) -> Iterator[pd.DataFrame]:
    """Yield the lines of ``batches`` (in order, an order's lines adjacent) as blocks of whole orders.

    The rule of :func:`salesbi.reports.fact.order_block_bounds` over the whole stream: a block
    ends at the first order start at or after each multiple of ``block_lines`` (counted from the
    first line), so the blocks are those of the whole frame. At least one block (empty when no
    line); the frames yielded have a fresh index (0..n-1).
    """
    if block_lines < 1:
        raise ValueError(f"block_lines must be at least 1, not {block_lines}")
    pending: list[pd.DataFrame] = []
    start = 0  # position of the first pending line in the stream
    held = 0  # lines pending
    last_id: str | None = None
    sent = False
    template: pd.DataFrame | None = None
    for batch in batches:
        if template is None:
            template = batch.iloc[:0]
        while len(batch):
            offset = start + held  # position of the batch's first line
            ids = order_ids(batch)
            first = np.ones(len(batch), dtype=bool)
            if len(batch) > 1:
                first[1:] = pc.not_equal(ids.slice(1), ids.slice(0, len(batch) - 1)).to_numpy(
                    zero_copy_only=False
                )
            if last_id is not None:
                first[0] = ids[0].as_py() != last_id
            target = (start // block_lines + 1) * block_lines
            starts = np.flatnonzero(first) + offset
            at = starts[starts >= max(target, start + 1)]
            if not len(at):
                pending.append(batch)
                held += len(batch)
                last_id = ids[-1].as_py()
                break
            cut = int(at[0]) - offset
            yield _joined([*pending, batch.iloc[:cut]])
            sent = True
            pending, held = [], 0
            start = int(at[0])
            last_id = ids[cut - 1].as_py()
            batch = batch.iloc[cut:]
    if pending or not sent:
        if not pending and template is not None:
            pending = [template]
        yield _joined(pending) if pending else pd.DataFrame()


def _joined(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Return ``parts`` as one frame with index 0..n-1."""
    parts = [p for p in parts if len(p)] or parts[:1]
    if len(parts) == 1:
        return parts[0].reset_index(drop=True)
    return pd.concat(parts, ignore_index=True)
