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


def remove_spills(out_dir: Path, run_id: str | None = None) -> None:
    """Delete run ``run_id``'s spilled tables (every run's when None: what killed runs left)."""
    root = Path(out_dir) / SPILL_FOLDER
    target = root if run_id is None else root / run_id
    shutil.rmtree(target, ignore_errors=True)
    if run_id is not None and root.is_dir() and not any(root.iterdir()):
        root.rmdir()
