"""The fact table held on disk, not in memory, from the report step to the end of the run.

``rpt.fact_order_lines`` is the one report table as long as the order lines (21 columns,
≈ 210 MB per million lines as a pandas frame). Once the report step has built it, the run
writes it once as the Parquet file publish publishes into the run's staging folder
``<out>/.fact-spill/<run id>/``: block by block as the report step builds it, one row group a
block (:class:`FactSpill`), or from a frame (:func:`spill`, the file
:func:`salesbi.publish.write_parquet` writes). After that:

- the model steps' and the insights' inputs are aggregated from the columns they use, read
  batch by batch (:meth:`SpilledTable.batches`, :mod:`salesbi.order_grain`): no per-line frame
  of the whole fact is read back;
- publish hard-links the file into the staged Parquet folder (no second write) and fills the
  ``rpt`` table from it in batches of :data:`BATCH_ROWS` lines (:meth:`SpilledTable.batches`)
  through the dialect's bulk path;
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
from salesbi.spill_buffer import HeldUntilSpilled
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


class FactSpill(HeldUntilSpilled):
    """Writes a table to its spill file block by block as the blocks are built (the write side).

    Each :meth:`append` takes the table's next rows (a conformed frame) and writes them at once
    as one Parquet row group (the report step's blocks of whole orders: about
    :data:`~salesbi.reports.fact.FACT_BLOCK_LINES` lines a row group); :meth:`finish` returns the
    :class:`SpilledTable`. What it holds at once: one block, as Arrow. The file has the schema
    (pandas metadata included), the rows and the values of the file
    :func:`salesbi.publish.write_parquet` writes for the blocks joined into one frame, and is byte
    for byte that file when there is one block; only the row groups differ (the blocks', not
    :data:`~salesbi.publish.PARQUET_ROW_GROUP` rows: a buffer of a million rows as Arrow, +180 MB
    at a million lines, is not held). Power BI, DuckDB and pyarrow read any row group size.

    ``keep_below``: the blocks are held as frames while the table has fewer rows than this, and
    :meth:`finish` returns them joined as one frame when it never reached it (nothing written).
    """

    def __init__(self, spec: Table, folder: Path, keep_below: int = 0) -> None:
        self.spec = spec
        self.folder = Path(folder)
        self.path = self.folder / f"{spec.name}.parquet"
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        super().__init__(keep_below)
        self._writer: pq.ParquetWriter | None = None
        self._spilling = keep_below <= 0  # an empty table spilled too: its file has no rows
        self._empty: pd.DataFrame | None = None  # an empty block: the file of a table without rows

    def _write(self, block: pd.DataFrame) -> None:
        """Write ``block`` as one row group (an empty block is remembered, not written)."""
        from salesbi.types import to_arrow

        if not len(block):
            self._empty = block
            return
        group = to_arrow(block, self.spec)
        if self._writer is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.tmp, group.schema, compression="zstd")
        self._writer.write_table(group, row_group_size=len(block))

    def finish(self) -> SpilledTable | pd.DataFrame:
        """Return the written table (the file closed and in place), or the frame when kept."""
        if not self._spilling:
            held = self.take_held()
            if not held:
                return pd.DataFrame({c: pd.Series(dtype=object) for c in self.spec.column_names}).pipe(
                    conform, self.spec
                )
            return held[0] if len(held) == 1 else pd.concat(held, ignore_index=True)
        if self._writer is None:  # no rows: an empty table's file
            from salesbi.publish import write_parquet

            self.folder.mkdir(parents=True, exist_ok=True)
            write_parquet(_empty(self.spec) if self._empty is None else self._empty, self.spec, self.tmp)
        else:
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
        self.take_held()


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
