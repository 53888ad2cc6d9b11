"""A long source table held on disk, block by block, instead of as one frame (issue 18).

Above ``PipelineParams.ingest_spill_rows`` lines, the reader writes each typed block of a table
read in blocks (``order_items``) to an Arrow IPC file in the run's ingest staging folder
``<out>/.ingest-spill/<run id>/`` as it reads it (:class:`SpillWriter`), and the table's
``SourceTable.frame`` is a :class:`SpilledFrame`: the validate, load and row-hash steps read it
block by block, the whole-table checks read only the key columns, and the few rows a reject or
warning names are read back by position (:meth:`SpilledFrame.take`). The accepted rows are a
:class:`SpilledRows` (the spill and the rejected positions), not a copy.

The folder is removed when the run ends, succeeded or failed (:func:`remove_ingest_spills`),
and what a killed run left is removed by the next run in the same output folder.

Rows read back are equal to the frame the whole-frame path builds (same columns, dtypes and
values; blocks carry their global row positions as index).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from salesbi.spill_buffer import HeldUntilSpilled

#: the folder under the run's output folder holding each run's spilled source tables
INGEST_SPILL_FOLDER = ".ingest-spill"

#: the spill file's compression (LZ4: fast; the columns read are decompressed, the others skipped)
SPILL_COMPRESSION = "lz4"

#: Arrow text → pandas' pyarrow-backed string dtype (the reader's text columns)
_TEXT = {pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}


def ingest_spill_folder(out_dir: Path, run_id: str) -> Path:
    """Return the folder holding run ``run_id``'s spilled source tables: ``<out>/.ingest-spill/<run id>``."""
    return Path(out_dir) / INGEST_SPILL_FOLDER / run_id


def remove_ingest_spills(out_dir: Path, run_id: str | None = None) -> None:
    """Delete run ``run_id``'s spilled source tables (every run's when None: what killed runs left)."""
    root = Path(out_dir) / INGEST_SPILL_FOLDER
    target = root if run_id is None else root / run_id
    shutil.rmtree(target, ignore_errors=True)
    if run_id is not None and root.is_dir() and not any(root.iterdir()):
        root.rmdir()


@dataclass(frozen=True)
class SpillPolicy:
    """Where and from how many lines the reader spills a long table (``rows`` 0: always)."""

    folder: Path
    rows: int


def _frame(batch: pa.RecordBatch | pa.Table, start: int, dtypes: pd.Series) -> pd.DataFrame:
    """Return ``batch`` as a frame of ``dtypes`` (the spilled frame's), indexed by global row position."""
    frame = batch.to_pandas(types_mapper=_TEXT.get)
    for name in frame.columns:
        if frame[name].dtype != dtypes[name]:  # e.g. a categorical's categories as pandas text again
            frame[name] = frame[name].astype(dtypes[name])
    frame.index = pd.RangeIndex(start, start + len(frame))
    return frame


class SpilledFrame:
    """A typed table written block by block to an Arrow IPC file (one record batch per block).

    ``len()``, ``columns`` and ``dtypes`` are those of the frame it stands for; rows are read
    back block by block (:meth:`blocks`), column by column (:meth:`frame`) or by position
    (:meth:`take`). Nothing of the rows is held in memory between calls.
    """

    def __init__(self, path: Path, rows: int, dtypes: pd.Series, batch_rows: Sequence[int]) -> None:
        self.path = Path(path)
        self.rows = rows
        self.dtypes = dtypes
        self.batch_starts = np.concatenate([[0], np.cumsum(np.asarray(batch_rows, dtype=np.int64))])

    def __len__(self) -> int:
        return self.rows

    @property
    def columns(self) -> pd.Index:
        """Return the column names, in the frame's order."""
        return pd.Index(self.dtypes.index)

    def _open(self, source: pa.NativeFile, columns: Sequence[str] | None) -> pa.ipc.RecordBatchFileReader:
        """Return the file's reader, reading only ``columns`` (all when None) of each batch."""
        if columns is None:
            return pa.ipc.open_file(source)
        names = list(self.dtypes.index)
        fields = sorted(names.index(c) for c in columns)
        return pa.ipc.open_file(source, options=pa.ipc.IpcReadOptions(included_fields=fields))

    def _batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        with pa.OSFile(str(self.path), "rb") as source:
            reader = self._open(source, columns)
            for i in range(reader.num_record_batches):
                batch = reader.get_batch(i)
                yield batch if columns is None else batch.select(list(columns))

    def blocks(self, rows: int | None = None, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        """Yield the table in order as frames of exactly ``rows`` rows (the last fewer; None: as written).

        Each frame's index is its rows' positions in the whole table (``start..stop-1``); only
        ``columns`` (all when None). What is held at once: one block and one written batch.
        """
        if not self.rows:
            return
        pending: list[pa.RecordBatch] = []
        held = 0
        start = 0
        for batch in self._batches(columns):
            if rows is None:
                yield _frame(batch, start, self.dtypes)
                start += batch.num_rows
                continue
            pending.append(batch)
            held += batch.num_rows
            while held >= rows:
                table = pa.Table.from_batches(pending)
                yield _frame(table.slice(0, rows), start, self.dtypes)
                start += rows
                rest = table.slice(rows)
                pending = rest.to_batches() if rest.num_rows else []
                held -= rows
                del table, rest
        if held:
            yield _frame(pa.Table.from_batches(pending), start, self.dtypes)

    def frame(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Return ``columns`` (all when None) of every row as one frame (index 0..n-1).

        Each batch is cut to ``columns`` as it is read (the other columns are never held whole),
        and the batches are converted to pandas once (text stays Arrow, in the batches' chunks).
        """
        names = list(self.columns if columns is None else columns)
        if not self.rows:
            return pd.DataFrame({c: pd.Series([], dtype=self.dtypes[c]) for c in names})
        return _frame(pa.Table.from_batches(list(self._batches(names))), 0, self.dtypes)

    def column(self, name: str) -> pd.Series:
        """Return one column of every row (index 0..n-1)."""
        return self.frame([name])[name]

    def take(self, positions: np.ndarray, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Return the rows at ``positions`` (any order), in that order, with a fresh index 0..k-1.

        Only the batches holding one of them are read.
        """
        positions = np.asarray(positions, dtype=np.int64)
        names = list(self.columns if columns is None else columns)
        if not len(positions):
            return pd.DataFrame({c: pd.Series([], dtype=self.dtypes[c]) for c in names})
        order = np.argsort(positions, kind="stable")
        ordered = positions[order]
        which = np.searchsorted(self.batch_starts, ordered, side="right") - 1
        parts: list[pa.Table] = []
        with pa.OSFile(str(self.path), "rb") as source:
            reader = self._open(source, names)
            for b in np.unique(which):
                local = ordered[which == b] - self.batch_starts[b]
                batch = reader.get_batch(int(b)).select(names)
                parts.append(pa.Table.from_batches([batch]).take(pa.array(local)))
        table = pa.concat_tables(parts).combine_chunks()
        frame = _frame(table, 0, self.dtypes)
        back = np.empty(len(order), dtype=np.int64)
        back[order] = np.arange(len(order))
        return frame.iloc[back].reset_index(drop=True)

    def to_frame(self) -> pd.DataFrame:
        """Return the whole table as one frame (the whole-frame path's, for callers that need it)."""
        return self.frame()


class SpillWriter(HeldUntilSpilled):
    """Writes a table's typed blocks to its spill file as they are read (the write side).

    ``keep_below``: blocks are held as frames while the table has fewer rows than this;
    :meth:`finish` returns them joined as one frame when the table never reached it (no file).
    """

    def __init__(self, path: Path, keep_below: int = 0) -> None:
        super().__init__(keep_below)
        self.path = Path(path)
        self._writer: pa.ipc.RecordBatchFileWriter | None = None
        self._schema: pa.Schema | None = None
        self._sink: pa.OSFile | None = None
        self._batch_rows: list[int] = []
        self._dtypes: pd.Series | None = None

    def append(self, block: pd.DataFrame) -> None:
        """Take the table's next typed rows: hold them, or write them as one record batch."""
        if self._dtypes is None:
            self._dtypes = block.dtypes
        super().append(block)

    def _write(self, block: pd.DataFrame) -> None:
        if not len(block):
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._schema = pa.Schema.from_pandas(block, preserve_index=False)
            self._sink = pa.OSFile(str(self.path), "wb")
            # compressed: each column's buffers are decompressed on their own when read, so a batch
            # read for some columns holds only theirs (uncompressed, they are slices of the batch)
            options = pa.ipc.IpcWriteOptions(compression=SPILL_COMPRESSION)
            self._writer = pa.ipc.new_file(self._sink, self._schema, options=options)
        batch = pa.RecordBatch.from_pandas(block, schema=self._schema, preserve_index=False)
        self._writer.write_batch(batch)
        self._batch_rows.append(len(block))

    def finish(self) -> pd.DataFrame | SpilledFrame:
        """Return the held blocks as one frame (index 0..n-1), or the :class:`SpilledFrame` written."""
        if self._writer is None:
            held = self.take_held()
            if len(held) == 1:
                return held[0].reset_index(drop=True)
            return pd.concat(held, ignore_index=True)
        self._writer.close()
        assert self._sink is not None and self._dtypes is not None
        self._sink.close()
        self._writer = None
        return SpilledFrame(self.path, self.rows, self._dtypes, self._batch_rows)

    def abort(self) -> None:
        """Close and delete the partly written file (the read failed)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._sink is not None:
            self._sink.close()
        self.path.unlink(missing_ok=True)
        self.take_held()


class SpilledRows:
    """The rows of a :class:`SpilledFrame` validation accepted: the spill without ``rejected`` positions.

    Stands for ``frame[keep]`` of the whole-frame path: ``len()`` is the accepted rows, and
    :meth:`blocks` yields them with their positions in the whole table as index.
    """

    def __init__(self, spill: SpilledFrame, rejected: np.ndarray) -> None:
        self.spill = spill
        self.rejected = np.unique(np.asarray(rejected, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.spill) - len(self.rejected)

    def rejected_in(self, start: int, stop: int) -> np.ndarray:
        """Return the rejected positions in ``[start, stop)`` relative to ``start``."""
        lo, hi = np.searchsorted(self.rejected, [start, stop])
        return self.rejected[lo:hi] - start

    def blocks(self, rows: int | None = None, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        """Yield the accepted rows in order, a block of the spill at a time (index: their positions)."""
        for block in self.spill.blocks(rows, columns):
            start = int(block.index[0])
            drop = self.rejected_in(start, start + len(block))
            if len(drop):
                keep = np.ones(len(block), dtype=bool)
                keep[drop] = False
                block = block[keep]
            yield block

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Return ``columns`` (all when None) of the accepted rows as one frame (index 0..k-1).

        Read a column at a time (only its buffers are decompressed), each batch cut to its
        accepted rows: what is held besides the result is one column as Arrow and its conversion.
        """
        spill = self.spill
        names = list(spill.columns if columns is None else columns)
        if not len(self):
            return pd.DataFrame({c: pd.Series([], dtype=spill.dtypes[c]) for c in names})
        masks: dict[int, pa.Array] = {}
        for number in range(len(spill.batch_starts) - 1):
            start, stop = int(spill.batch_starts[number]), int(spill.batch_starts[number + 1])
            drop = self.rejected_in(start, stop)
            if len(drop):
                keep = np.ones(stop - start, dtype=bool)
                keep[drop] = False
                masks[number] = pa.array(keep)
        out: dict[str, pd.Series] = {}
        for name in names:
            parts = [
                batch.filter(masks[number]) if number in masks else batch
                for number, batch in enumerate(spill._batches([name]))
            ]
            out[name] = _frame(pa.Table.from_batches(parts), 0, spill.dtypes)[name]
            del parts
        return pd.DataFrame(out, copy=False)

    def to_frame(self) -> pd.DataFrame:
        """Return the accepted rows as one frame, index their positions (``frame[keep]``)."""
        parts = list(self.blocks())
        if not parts:
            return self.spill.frame().iloc[:0]
        return parts[0] if len(parts) == 1 else pd.concat(parts)
