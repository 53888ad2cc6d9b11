"""The fact table held on disk, not in memory, from the report step to the end of the run.

``rpt.fact_order_lines`` is the one report table as long as the order lines (21 columns,
≈ 210 MB per million lines as a pandas frame). Once the report step has built it, the run
writes it once as the very Parquet file publish would write (:func:`salesbi.publish.write_parquet`,
row groups of :data:`~salesbi.publish.PARQUET_ROW_GROUP` rows) into the run's staging folder
``<out>/.fact-spill/<run id>/`` and drops the frame (:func:`spill`). After that:

- the model steps' and the insights' inputs are aggregated from the columns they use, read
  batch by batch (:meth:`SpilledTable.batches`, :mod:`salesbi.order_grain`): no per-line frame
  of the whole fact is read back;
- publish hard-links the file into the staged Parquet folder (no second write: the bytes are
  those of the frame's write) and fills the ``rpt`` table from it in batches of
  :data:`BATCH_ROWS` lines (:meth:`SpilledTable.batches`) through the dialect's bulk path;
- the staging folder is removed when the run ends, succeeded or failed (:func:`remove_spills`),
  and any left by a killed run is removed by the next run in the same output folder.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from salesbi.schema import Table
from salesbi.types import conform

#: the folder under the run's output folder that holds each run's spilled tables
SPILL_FOLDER = ".fact-spill"
#: lines per batch when publish fills the rpt table from the file (about 20 MB of frame)
BATCH_ROWS = 100_000


@dataclass(frozen=True)
class SpilledTable:
    """An rpt table written to Parquet (the file publish publishes) instead of held as a frame."""

    spec: Table
    path: Path
    rows: int

    @property
    def name(self) -> str:
        """Return the rpt table's name."""
        return self.spec.name

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Return the table's key and ``columns`` (every column when None) as a typed frame.

        Rows in the file's order (the frame's), a fresh ``RangeIndex``, each column of the dtype
        :func:`salesbi.types.conform` gives it: equal to ``frame[[*key, *columns]]`` of the frame
        that was spilled (columns in the table's order).
        """
        spec = self.projection(columns)
        table = pq.read_table(self.path, columns=spec.column_names)
        return _typed(table, spec)

    def batches(self, rows: int = BATCH_ROWS, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        """Yield the table in order as typed frames of at most ``rows`` lines each: its key and
        ``columns`` (every column when None), as :meth:`read` gives them, batch by batch."""
        spec = self.projection(columns)
        file = pq.ParquetFile(self.path)
        try:
            for batch in file.iter_batches(
                batch_size=rows, columns=list(spec.column_names), use_threads=False
            ):
                yield _typed(pa.Table.from_batches([batch]), spec)
        finally:
            file.close()

    def projection(self, columns: Sequence[str] | None) -> Table:
        """Return the table's definition restricted to its key and ``columns`` (all when None)."""
        if columns is None:
            return self.spec
        wanted = set(columns) | set(self.spec.key)
        unknown = wanted - set(self.spec.column_names)
        if unknown:
            raise KeyError(f"{self.spec.name} has no columns {sorted(unknown)}")
        return dataclasses.replace(
            self.spec, columns=tuple(c for c in self.spec.columns if c.name in wanted), indexes=()
        )


def _typed(table: pa.Table, spec: Table) -> pd.DataFrame:
    """Return ``table`` as a frame of ``spec``'s pandas dtypes (text as pyarrow-backed strings, no copy)."""
    frame = table.to_pandas(types_mapper=_TEXT.get, self_destruct=True)
    return conform(frame, spec)


#: Arrow text → pandas' pyarrow-backed string dtype (what ``conform`` gives text columns)
_TEXT = {pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}


def spill_folder(out_dir: Path, run_id: str) -> Path:
    """Return the folder holding run ``run_id``'s spilled tables: ``<out>/.fact-spill/<run id>``."""
    return Path(out_dir) / SPILL_FOLDER / run_id


def spill(frame: pd.DataFrame, spec: Table, folder: Path) -> SpilledTable:
    """Write ``frame`` as ``spec``'s Parquet file into ``folder`` and return where it is.

    The file is the one :func:`salesbi.publish.write_parquet` writes for the frame (byte for
    byte), so publish can publish it as is. The caller drops the frame afterwards.
    """
    from salesbi.publish import write_parquet

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec.name}.parquet"
    tmp = path.with_name(path.name + ".tmp")
    write_parquet(frame, spec, tmp)
    tmp.replace(path)
    return SpilledTable(spec=spec, path=path.resolve(), rows=len(frame))


class FactSpill:
    """Writes a table to its spill file block by block as the blocks are built (the write side).

    Each :meth:`append` takes the table's next rows (a conformed frame); :meth:`finish` returns
    the :class:`SpilledTable`. The file is byte for byte the one :func:`spill` (so
    :func:`salesbi.publish.write_parquet`) writes for the blocks joined into one frame: rows are
    converted to Arrow a block at a time and written in row groups of exactly ``row_group`` rows,
    whatever the blocks' lengths (the rows past the last full row group wait for the next block).
    What it holds at once: less than one row group plus one block, as Arrow.

    ``keep_below``: the blocks are held as frames while the table has fewer rows than this, and
    :meth:`finish` returns them joined as one frame when it never reached it (nothing written).
    """

    def __init__(self, spec: Table, folder: Path, keep_below: int = 0, row_group: int | None = None) -> None:
        from salesbi.publish import PARQUET_ROW_GROUP

        self.spec = spec
        self.folder = Path(folder)
        self.path = self.folder / f"{spec.name}.parquet"
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.keep_below = keep_below
        self.row_group = row_group or PARQUET_ROW_GROUP
        self.rows = 0
        self._held: list[pd.DataFrame] = []  # frames, while under keep_below
        self._pending: list[pa.Table] = []  # Arrow rows not yet written (under a row group)
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._spilling = keep_below <= 0
        self._empty: pd.DataFrame | None = None  # an empty block: the file of a table without rows

    @property
    def spilling(self) -> bool:
        """Return whether the rows go to the file (the table reached ``keep_below`` rows)."""
        return self._spilling

    def append(self, block: pd.DataFrame) -> None:
        """Take the table's next rows ``block``: hold them, or write every full row group."""
        self.rows += len(block)
        if not self._spilling:
            self._held.append(block)
            if self.rows < self.keep_below:
                return
            self._spilling = True
            held, self._held = self._held, []
            for frame in held:
                self._push(frame)
            return
        self._push(block)

    def _push(self, block: pd.DataFrame) -> None:
        from salesbi.types import to_arrow

        if not len(block):
            self._empty = block
            return
        self._pending.append(to_arrow(block, self.spec))
        self._pending_rows += len(block)
        while self._pending_rows >= self.row_group:
            self._write(self.row_group)

    def _write(self, rows: int) -> None:
        """Write the first ``rows`` pending rows as one row group (contiguous, as a frame's slice)."""
        group = self._take(rows)
        if self._writer is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.tmp, group.schema, compression="zstd")
        self._writer.write_table(group, row_group_size=self.row_group)

    def _take(self, rows: int) -> pa.Table:
        """Return the first ``rows`` pending rows as one contiguous table and keep the rest pending.

        Column by column: each column's pending chunks are released once copied, so what is
        held at once is the pending rows plus one column's copy, not two copies of a row group.
        Contiguous matters: written as the blocks' chunks, the file's bytes would differ.
        """
        pending = pa.concat_tables(self._pending)
        self._pending = []
        schema = pending.schema
        group: list[pa.Array] = []
        rest: list[pa.ChunkedArray] = []
        while pending.num_columns:
            column = pending.column(0)
            pending = pending.remove_column(0)
            group.append(column.slice(0, rows).combine_chunks())
            rest.append(column.slice(rows))
            del column
        left = pa.Table.from_arrays(rest, schema=schema)
        self._pending = [left] if left.num_rows else []
        self._pending_rows = left.num_rows
        return pa.Table.from_arrays(group, schema=schema)

    def finish(self) -> SpilledTable | pd.DataFrame:
        """Return the written table (the file closed and in place), or the frame when kept."""
        if not self._spilling:
            held, self._held = self._held, []
            if not held:
                return pd.DataFrame({c: pd.Series(dtype=object) for c in self.spec.column_names}).pipe(
                    conform, self.spec
                )
            return held[0] if len(held) == 1 else pd.concat(held, ignore_index=True)
        if self._writer is None:  # one row group at most: the file write_parquet writes for it
            from salesbi.publish import write_parquet

            self.folder.mkdir(parents=True, exist_ok=True)
            if self._pending:
                pq.write_table(self._take(self._pending_rows), self.tmp, compression="zstd")
            else:  # no rows: an empty table's file
                write_parquet(_empty(self.spec) if self._empty is None else self._empty, self.spec, self.tmp)
        else:
            if self._pending_rows:
                self._write(self._pending_rows)
            self._writer.close()
            self._writer = None
        self.tmp.replace(self.path)
        return SpilledTable(spec=self.spec, path=self.path.resolve(), rows=self.rows)

    def abort(self) -> None:
        """Close and delete the partly written file (the build failed); :func:`remove_spills` the folder."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.tmp.unlink(missing_ok=True)
        self._held, self._pending = [], []


def _empty(spec: Table) -> pd.DataFrame:
    """Return a frame of ``spec``'s columns and dtypes without rows."""
    return conform(pd.DataFrame({c: pd.Series(dtype=object) for c in spec.column_names}), spec)


def remove_spills(out_dir: Path, run_id: str | None = None) -> None:
    """Delete run ``run_id``'s spilled tables (every run's when None: what killed runs left)."""
    root = Path(out_dir) / SPILL_FOLDER
    target = root if run_id is None else root / run_id
    shutil.rmtree(target, ignore_errors=True)
    if run_id is not None and root.is_dir() and not any(root.iterdir()):
        root.rmdir()
