"""Daily ingest of only what changed: row content hashes for snapshot drops, a watermark for new-only drops.

Every row loaded into ``core`` leaves a 64-bit content hash in ``audit.row_hashes`` (per table and
key; :func:`row_hashes` over the conformed values of the contract's columns, so the same row read
from any file, or read back from core, has the same hash). The next drop is compared with them:

* ``snapshot`` (the company sends everything again): a row whose key is stored with the same hash
  is **unchanged**: it is neither validated nor staged nor upserted again, and is counted as
  ``unchanged`` (never as rejected). Everything else is validated against the whole of core, as a
  full load would (foreign keys resolve against core's keys, uniqueness within the drop).
* ``new_only`` (the drop holds only what was added since the last load): every order is dated on
  or after the **watermark** (the newest ``order_date`` in core), so orders and their lines are new
  by definition and need no hash look-up; the dimension tables are still compared by hash. Such a
  drop is naturally smaller than the last one, so the shrink rule does not apply, and a table may
  be empty (no new orders that day).
* ``full``: validate and load everything (the hashes are still stored for the next run).
* ``auto`` (the default): ``full`` when core has no orders, ``new_only`` when every order of the
  drop is on or after the watermark, else ``snapshot``.

Rules that keep the result equal to a full load of the same drop (tested on the generator):
a row the reader reported a fault on, or whose key appears more than once in the drop, is always
validated; an order and its lines are one document: when the header or any line changed, the
header and all its lines are validated (the returns rule reads both); the shrink and zero-row
rules run on the whole drop, before anything is left out. Rows missing from a drop are kept in
core, as by a full load (upserts never delete).

Memory (issue 18): the comparison runs ``block_rows`` rows at a time, a spilled table
(:class:`~salesbi.reading.spilled.SpilledFrame`) read from its file block by block; the stored
hashes are held as a sorted 64-bit hash of each key and the row's hash (:class:`StoredHashes`,
16 bytes a stored row); per row of the drop a content hash, a key hash and a few flags. The
selected rows of a spilled table are a new spill, or one frame when fewer than the spill
threshold (:func:`salesbi.reading.selection.select_spilled`): no frame as long as the table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from salesbi import contract
from salesbi.memory import release_freed_memory
from salesbi.reading.reader import SourceData, SourceTable
from salesbi.reading.selection import select_spilled, table_blocks, take_rows
from salesbi.reading.spilled import SpilledFrame, SpilledRows
from salesbi.runlog import TableCounts
from salesbi.schema import SOURCE_FILE, SOURCE_LINE, Column, Table
from salesbi.types import conform
from salesbi.validation.keycodes import arrow_text
from salesbi.warehouse.load import bulk_insert, count_rows

log = logging.getLogger(__name__)

IngestMode = Literal["auto", "snapshot", "new_only", "full"]
INGEST_MODES: tuple[str, ...] = ("auto", "snapshot", "new_only", "full")
ROW_HASHES = "audit.row_hashes"
KEY_SEPARATOR = "\x1f"  # unit separator: never part of an id a CSV export carries
#: hash mixing constants (any odd 64-bit numbers; fixed so hashes are stable across runs)
_SEED = np.uint64(0x9E3779B97F4A7C15)
_MULTIPLIER = np.uint64(0x100000001B3)
_NULL = np.uint64(0xC2B2AE3D27D4EB4F)
#: above this many rows to rewrite, a table's stored hashes are replaced wholesale
REPLACE_ALL_ABOVE = 20_000
_DELETE_CHUNK = 500  # keys per DELETE ... IN (...) (SQL Server: at most 2,100 parameters)

NEW_ONLY_TABLES = ("orders", "order_items")


def _column_hash(series: pd.Series, column: Column) -> np.ndarray:
    """Return a uint64 hash per value of one conformed column; nulls hash to their own value."""
    family = column.spec.family
    null = series.isna().to_numpy(dtype=bool)
    values: np.ndarray
    if family == "text":
        return np.where(null, _NULL, _text_hash(series))
    if family == "temporal":
        values = series.astype("datetime64[us]").to_numpy(dtype="datetime64[us]").astype("int64")
        values = np.where(null, 0, values)
    elif family == "bool":
        values = series.astype("boolean").fillna(False).to_numpy(dtype=bool).astype("int64")
    elif column.spec.pandas_dtype == "Int64":
        values = series.astype("Int64").fillna(0).to_numpy(dtype="int64")
    else:
        numbers = series.astype("float64").to_numpy(dtype="float64", na_value=np.nan)
        decimal = column.spec.decimal
        if decimal is not None:  # the value core stores (DECIMAL(p, s)), so a re-read hashes the same
            numbers = np.round(numbers, decimal[1])
        values = np.where(null, 0.0, numbers) + 0.0  # -0.0 and 0.0 are one value
    hashed = pd.util.hash_array(values, categorize=False)
    return np.where(null, _NULL, hashed)


def _text_hash(series: pd.Series) -> np.ndarray:
    """Return ``pd.util.hash_array`` of each text value (nulls hashed as ""), as uint64 per row.

    The column is dictionary-encoded by Arrow and only its distinct values are hashed (a pure
    function of each value, so the hashes equal hashing every row's text); the rows take their
    value's hash by index (issue 18 memory: not a Python string per row).
    """
    encoded = pc.dictionary_encode(arrow_text(series))
    if not encoded.num_chunks or not len(encoded.chunk(encoded.num_chunks - 1).dictionary):
        return np.asarray(pd.util.hash_array(np.full(len(series), "", dtype=object), categorize=False))
    dictionary = encoded.chunk(encoded.num_chunks - 1).dictionary
    distinct = np.array([*dictionary.to_pylist(), ""], dtype=object)  # the last one: nulls
    hashes = np.asarray(pd.util.hash_array(distinct, categorize=False))
    out = np.empty(len(series), dtype=np.uint64)
    at = 0
    for chunk in encoded.chunks:
        indices = chunk.indices.fill_null(len(distinct) - 1).to_numpy()
        out[at : at + len(indices)] = hashes[indices]
        at += len(indices)
    return out


def row_hashes(frame: pd.DataFrame, spec: Table) -> np.ndarray:
    """Return one uint64 content hash per row of ``frame`` over the table's contract columns.

    The values are conformed first (:func:`salesbi.types.conform`; money and fractions rounded to
    the decimal places core keeps), so a row read from a CSV file and the same row read back from
    core hash alike; lineage columns (file, line) do not count.
    """
    conformed = conform(frame, spec)
    out = np.full(len(conformed), _SEED, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in spec.columns:
            out = (out * _MULTIPLIER) ^ _column_hash(conformed[column.name], column)
    return out


def row_hashes_in_blocks(
    frame: pd.DataFrame | SpilledFrame, spec: Table, block_rows: int | None = None
) -> np.ndarray:
    """Return :func:`row_hashes` of ``frame``, computed ``block_rows`` rows at a time (same values).

    The conformed copy and the per-column hash inputs (a Python string per text value) exist for
    one block at a time, so the memory this takes is bounded by the block, not by the table.
    A :class:`~salesbi.reading.spilled.SpilledFrame` is read from its file block by block.
    """
    if isinstance(frame, SpilledFrame):  # read from its file a block at a time
        out = np.empty(len(frame), dtype=np.uint64)
        for block in frame.blocks(block_rows, columns=list(spec.column_names)):
            start = int(block.index[0])
            out[start : start + len(block)] = row_hashes(block, spec)
        return out
    if not block_rows or len(frame) <= block_rows:
        return row_hashes(frame, spec)
    out = np.empty(len(frame), dtype=np.uint64)
    for start in range(0, len(frame), block_rows):
        stop = min(start + block_rows, len(frame))
        out[start:stop] = row_hashes(frame.iloc[start:stop], spec)
    return out


def _key_text(values: pd.Series, column: Column) -> pa.ChunkedArray:
    """Return one key column as Arrow text: integers as their decimal digits, as ``astype("string")``."""
    if column.spec.pandas_dtype == "Int64":
        numbers = pa.array(values.astype("Int64").array)
        return pa.chunked_array([pc.cast(numbers, pa.large_string())])
    return arrow_text(values)


def row_keys(frame: pd.DataFrame, spec: Table) -> pd.Series:
    """Return each row's key as text (key columns joined by U+001F); null where a key part is null.

    A compound key is joined by Arrow from the columns' Arrow text (no Python string per row and
    no intermediate joined copies, issue 18 memory); the text is the same as joining the columns'
    ``astype("string")``.
    """
    if len(spec.key) == 1:
        column = spec.column(spec.key[0])
        values = frame[column.name]
        if column.spec.pandas_dtype == "Int64":
            values = values.astype("Int64")
        return values.astype("string").reset_index(drop=True)
    parts = [_key_text(frame[name], spec.column(name)) for name in spec.key]
    separator = pa.scalar(KEY_SEPARATOR, type=pa.large_string())
    joined = pc.binary_join_element_wise(*parts, separator)
    return pd.Series(pd.arrays.ArrowStringArray(joined), dtype="string")


@dataclass
class TableChanges:
    """One table of a drop, split: what must be validated and loaded, and how many rows are unchanged."""

    name: str
    rows: int  # rows to validate (the filtered frame's length); their keys are not held (issue 18
    # memory): the accepted rows' keys are made again from their key columns when the hashes are written
    hashes: np.ndarray  # uint64 content hash of each row to validate
    unchanged: int = 0
    stored: int = 0  # rows of this table with a stored hash before this run
    rewrite: frozenset[str] = frozenset()  # keys to validate that already have a stored hash


@dataclass
class ChangeSet:
    """What :func:`select_changes` decided: the mode, the rows to validate, and the unchanged counts."""

    mode: str  # the mode applied: snapshot, new_only or full
    data: SourceData  # the drop restricted to the rows to validate and load
    tables: dict[str, TableChanges]
    previous_counts: Mapping[str, int] | None  # what validate_step should compare row counts with
    watermark: date | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def unchanged(self) -> dict[str, int]:
        """Return the unchanged rows per table."""
        return {name: t.unchanged for name, t in self.tables.items()}

    def summary(self) -> dict[str, object]:
        """Return the JSON-able record of the decision, for ``run_summary.json`` outputs."""
        return {
            "mode": self.mode,
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "unchanged": self.unchanged,
            "validated": {name: t.rows for name, t in self.tables.items()},
        }


def watermark(conn: sa.Connection, metadata: sa.MetaData) -> date | None:
    """Return the newest ``order_date`` in core (None when core has no orders)."""
    orders = metadata.tables["core.orders"]
    value = conn.execute(sa.select(sa.func.max(orders.c.order_date))).scalar_one_or_none()
    if value is None:
        return None
    return pd.Timestamp(value).date()


@dataclass(frozen=True)
class StoredHashes:
    """The stored content hashes of one table, compact: a 64-bit hash of each stored row key
    (:func:`key_hashes`), sorted, and the row's content hash in the same order.

    16 bytes per stored row (16 MB per million rows of core), not a Python string per key
    (issue 18 memory). Two stored keys whose key hashes collide are marked ``clash``: a row with
    that key hash is never taken as unchanged (it is validated and loaded, as a changed row is).
    """

    key_hashes: np.ndarray  # uint64, ascending
    hashes: np.ndarray  # uint64 content hash of the row stored under each key
    clash: np.ndarray | None = None  # bool per entry: its key hash is shared by another stored key

    def __len__(self) -> int:
        return len(self.key_hashes)

    @classmethod
    def build(cls, key_hashes: np.ndarray, hashes: np.ndarray) -> StoredHashes:
        """Return the look-up over ``key_hashes`` and ``hashes`` (any order, same length)."""
        order = np.argsort(key_hashes, kind="stable")
        keys, values = key_hashes[order], hashes[order]
        clash: np.ndarray | None = None
        if len(keys) > 1 and (equal := keys[1:] == keys[:-1]).any():
            clash = np.zeros(len(keys), dtype=bool)
            clash[1:] |= equal
            clash[:-1] |= equal
        return cls(keys, values, clash)

    def compare(self, keys: pd.Series, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return two masks over the rows: key stored at all, and key stored with the same hash.

        ``keys``: the rows' :func:`row_keys` (null: never stored). A row counts as stored when
        its key hash is (a collision with another key only makes a row look changed or stored;
        a key that is stored is always found).
        """
        wanted = key_hashes(keys)
        found = np.zeros(len(keys), dtype=bool)
        same = np.zeros(len(keys), dtype=bool)
        if not len(self) or not len(keys):
            return found, same
        pos = np.minimum(np.searchsorted(self.key_hashes, wanted), len(self) - 1)
        found = (self.key_hashes[pos] == wanted) & keys.notna().to_numpy(dtype=bool)
        same = found & (self.hashes[pos] == hashes)
        if self.clash is not None:
            same &= ~self.clash[pos]
        return found, same


def key_hashes(keys: pd.Series) -> np.ndarray:
    """Return a uint64 hash of each row key's text (:func:`row_keys`; null keys hash as U+001F)."""
    text = keys.to_numpy(dtype=object, na_value=KEY_SEPARATOR)
    return np.asarray(pd.util.hash_array(text, categorize=False), dtype=np.uint64)


#: stored (row_key, row_hash) pairs fetched from the database at a time
_FETCH_ROWS = 100_000


def stored_hashes(
    conn: sa.Connection, metadata: sa.MetaData, name: str, keys: pd.Series | None = None
) -> StoredHashes:
    """Return the stored content hashes of table ``name`` (only those of ``keys`` when given).

    Fetched ``_FETCH_ROWS`` rows at a time, each batch's keys hashed at once: what is held
    besides the result is one batch of driver rows.
    """
    table = metadata.tables[ROW_HASHES]
    query = sa.select(table.c.row_key, table.c.row_hash).where(table.c.table_name == name)
    key_parts: list[np.ndarray] = []
    hash_parts: list[np.ndarray] = []

    def add(rows: list[Any]) -> None:
        if rows:
            key_parts.append(key_hashes(pd.Series([r[0] for r in rows], dtype=object)))
            hash_parts.append(np.array([r[1] for r in rows], dtype=np.int64).view(np.uint64))

    if keys is None:
        for rows in _fetch_raw(conn, query):
            add(rows)
    else:
        wanted = sorted(set(keys.dropna()))
        for start in range(0, len(wanted), _DELETE_CHUNK):
            chunk = wanted[start : start + _DELETE_CHUNK]
            add(list(conn.execute(query.where(table.c.row_key.in_(chunk))).fetchall()))
    if not key_parts:
        return StoredHashes(np.array([], dtype=np.uint64), np.array([], dtype=np.uint64))
    return StoredHashes.build(np.concatenate(key_parts), np.concatenate(hash_parts))


def _fetch_raw(conn: sa.Connection, query: sa.Select[Any]) -> Iterator[list[Any]]:
    """Yield the rows of ``query`` in lists of ``_FETCH_ROWS`` through the driver's own cursor
    (no SQLAlchemy Row per row).

    The query's only parameters are the code's own table names, rendered as literals.
    """
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(_FETCH_ROWS):
            yield list(rows)
    finally:
        cursor.close()


def _in(values: pd.Series, wanted: pd.Series | pd.Index) -> np.ndarray:
    """Return a mask of the ``values`` found in ``wanted`` (Arrow's hash lookup; nulls never match)."""
    if not len(values) or not len(wanted):
        return np.zeros(len(values), dtype=bool)
    found = pc.is_in(
        pa.array(values.to_numpy(dtype=object), type=pa.string()),
        value_set=pa.array(pd.Series(wanted).dropna().to_numpy(dtype=object), type=pa.string()),
    )
    return np.asarray(found.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _faulty(block: pd.DataFrame, faults: pd.MultiIndex | None) -> np.ndarray:
    """Return a mask of the rows of ``block`` the reader reported a cell or line fault on."""
    if faults is None or SOURCE_LINE not in block.columns:
        return np.zeros(len(block), dtype=bool)
    rows = pd.MultiIndex.from_arrays(
        [block[SOURCE_FILE].astype("string"), block[SOURCE_LINE].astype("Int64")]
    )
    return np.asarray(rows.isin(faults), dtype=bool)


def _fault_index(table: SourceTable) -> pd.MultiIndex | None:
    """Return the (file, line) of the reader's faults in ``table`` (None when there are none)."""
    faults = table.faults
    if faults is None or not len(faults):
        return None
    return pd.MultiIndex.from_arrays([faults["file"].astype("string"), faults["line"].astype("Int64")])


def _column(frame: pd.DataFrame | SpilledFrame, name: str) -> pd.Series:
    """Return one column of a table, whole (a spilled table's read from its file)."""
    if isinstance(frame, SpilledFrame):
        return frame.column(name)
    return frame[name].reset_index(drop=True)


def _order_dates(frame: pd.DataFrame | SpilledFrame) -> pd.Series:
    return pd.to_datetime(_column(frame, "order_date"), errors="coerce")


def decide_mode(requested: str, data: SourceData, mark: date | None) -> str:
    """Return the mode to apply: ``requested``, or for ``auto`` the one the drop and watermark imply."""
    if requested not in INGEST_MODES:
        raise ValueError(f"unknown ingest mode {requested!r}; use one of {INGEST_MODES}")
    if requested != "auto":
        return requested
    if mark is None:
        return "full"
    dates = _order_dates(data.tables["orders"].frame).dropna()
    if len(dates) and dates.min().date() >= mark:
        return "new_only"
    return "snapshot"


def _check_whole_drop(data: SourceData, mode: str, previous_counts: Mapping[str, int] | None) -> None:
    """Run the table-level count rules on the whole drop (zero rows; shrink only for snapshots)."""
    from salesbi.validation.config import load_config
    from salesbi.validation.table_checks import check_counts

    config = load_config()
    allowed = set(config.allow_empty) | set(data.allow_empty)
    if mode == "new_only":
        allowed |= set(NEW_ONLY_TABLES)
    config = config.with_changes(allow_empty=frozenset(allowed))
    check_counts(data.tables, config, previous_counts if mode == "snapshot" else None)


@dataclass
class _Scan:
    """One table of a drop compared with core: per row its content hash, kept (to validate), stored."""

    hashes: np.ndarray  # uint64 per row
    keep: np.ndarray  # bool per row: validate and load it
    found: np.ndarray  # bool per row: its key has a stored hash
    stored: int  # stored hashes looked at


def _scan(
    conn: sa.Connection,
    metadata: sa.MetaData,
    table: SourceTable,
    spec: Table,
    applied: str,
    block_rows: int | None,
) -> _Scan:
    """Return one table of the drop compared with its stored hashes, ``block_rows`` rows at a time.

    What is held for the whole table: a content hash, a key hash and three flags per row (19
    bytes a row) and the stored hashes (:class:`StoredHashes`); row keys and conformed values
    exist for one block. A spilled table is read from its file block by block.
    """
    frame = table.frame
    rows = len(frame)
    if applied == "full":  # nothing compared: no row keys until they are written
        hashes = row_hashes_in_blocks(frame, spec, block_rows)
        return _Scan(hashes, np.ones(rows, dtype=bool), np.zeros(rows, dtype=bool), 0)
    # beyond the watermark: look up only the drop's keys, a block at a time (a same-day re-drop may
    # repeat some); else every stored hash of the table, once
    per_block = applied == "new_only" and spec.name in NEW_ONLY_TABLES
    stored = None if per_block else stored_hashes(conn, metadata, spec.name)
    looked_at = 0 if stored is None else len(stored)
    hashes = np.empty(rows, dtype=np.uint64)
    keyed = np.empty(rows, dtype=np.uint64)
    found = np.zeros(rows, dtype=bool)
    same = np.zeros(rows, dtype=bool)
    faults = _fault_index(table)
    for start, block in table_blocks(frame, block_rows):
        stop = start + len(block)
        keys = row_keys(block, spec)
        hashes[start:stop] = row_hashes(block, spec)
        keyed[start:stop] = key_hashes(keys)
        here = stored if stored is not None else stored_hashes(conn, metadata, spec.name, keys)
        if stored is None:
            looked_at += len(here)
        if len(here) and len(block):
            found[start:stop], unchanged = here.compare(keys, hashes[start:stop])
            same[start:stop] = unchanged & ~_faulty(block, faults)
        del block, keys
    if same.any():  # a key more than once in the drop: always validated
        same &= ~_duplicated_keys(frame, spec, keyed)
    return _Scan(hashes, ~same, found, looked_at)


def _duplicated_keys(frame: pd.DataFrame | SpilledFrame, spec: Table, keyed: np.ndarray) -> np.ndarray:
    """Return a mask of the rows whose key is in the table more than once (``keys.duplicated(keep=False)``).

    Rows sharing a key hash (``keyed``) are the candidates; only their key columns are read back
    to compare the keys' text (exact, whatever the hashes).
    """
    out = np.zeros(len(keyed), dtype=bool)
    if len(keyed) < 2:
        return out
    order = np.argsort(keyed, kind="stable")
    ordered = keyed[order]
    equal = ordered[1:] == ordered[:-1]
    if not equal.any():
        return out
    shared = np.zeros(len(keyed), dtype=bool)
    shared[1:] |= equal
    shared[:-1] |= equal
    candidates = np.sort(order[shared])
    del order, ordered, equal, shared
    keys = row_keys(take_rows(frame, candidates, list(spec.key)), spec)
    out[candidates[keys.duplicated(keep=False).to_numpy(dtype=bool)]] = True
    return out


def select_changes(
    conn: sa.Connection,
    metadata: sa.MetaData,
    data: SourceData,
    *,
    mode: str = "auto",
    previous_counts: Mapping[str, int] | None = None,
    block_rows: int | None = None,
    spill_rows: int = 0,
) -> ChangeSet:
    """Return the ChangeSet of a drop: the rows to validate and load, the unchanged ones counted.

    ``block_rows``: rows keyed, hashed and compared at a time (bounded memory); a spilled table
    is read from its file that many rows at a time. ``spill_rows`` (``ingest_spill_rows``): a
    spilled table's selected rows stay in a new spill file when at least that many, else they
    are one frame (:func:`salesbi.reading.selection.select_spilled`).

    ``previous_counts`` are the last good run's rows read per table (the shrink rule); in the
    ``snapshot`` and ``new_only`` modes the table-level count rules run here on the whole drop
    (raising ValidationFailed as validation would), and the ChangeSet tells validation not to run
    them again on the filtered drop (``previous_counts`` None, every table allowed to be empty).
    """
    mark = watermark(conn, metadata)
    applied = decide_mode(mode, data, mark)
    notes: list[str] = []
    tables: dict[str, SourceTable] = {}
    changes: dict[str, TableChanges] = {}
    if applied != "full":
        _check_whole_drop(data, applied, previous_counts)
    if applied == "new_only" and mark is not None:
        dates = _order_dates(data.tables["orders"].frame)
        early = int((dates.dt.date < mark).sum()) if len(dates) else 0
        if early:
            notes.append(
                f"new-only drop: {early} orders are dated before the watermark {mark}; "
                "they were compared with core by content hash like the rest of the drop"
            )
    scans = {
        spec.name: _scan(conn, metadata, data.tables[spec.name], spec, applied, block_rows)
        for spec in contract.TABLES
    }
    _whole_orders(data, scans, block_rows)
    for spec in contract.TABLES:
        table = data.tables[spec.name]
        scan = scans.pop(spec.name)
        keep = scan.keep
        unchanged = int((~keep).sum())
        # every row kept (a full load): the same rows without a copy (copy-on-write), a spilled
        # table as it is; else the kept rows (a spilled table's: a frame or a new spill)
        kept: pd.DataFrame | SpilledFrame
        if isinstance(table.frame, SpilledFrame):
            kept = select_spilled(table.frame, keep, keep_below=spill_rows)
        else:
            kept = (table.frame.copy(deep=False) if keep.all() else table.frame[keep]).reset_index(drop=True)
        tables[spec.name] = replace(
            table,
            frame=kept,
            read=len(kept),
            lines=None if table.lines is None else table.lines - unchanged,
        )
        rewrite: frozenset[str] = frozenset()
        if (again := np.flatnonzero(keep & scan.found)).size:  # kept rows whose key has a stored hash
            rewrite = frozenset(row_keys(take_rows(table.frame, again, list(spec.key)), spec).dropna())
        changes[spec.name] = TableChanges(
            name=spec.name,
            rows=len(kept),
            hashes=scan.hashes[keep],
            unchanged=unchanged,
            stored=scan.stored,
            rewrite=rewrite,
        )
        del scan, keep
    if any(isinstance(t.frame, SpilledFrame) for t in data.tables.values()):
        release_freed_memory()  # the blocks' keys and conformed copies: given back before validate
    filtered = replace(
        data,
        tables=tables,
        allow_empty=frozenset(contract.TABLES_BY_NAME) if applied != "full" else data.allow_empty,
    )
    result = ChangeSet(
        mode=applied,
        data=filtered,
        tables=changes,
        previous_counts=previous_counts if applied == "full" else None,
        watermark=mark,
        notes=notes,
    )
    log.info(
        "ingest mode %s (watermark %s): unchanged rows %s",
        applied,
        mark,
        ", ".join(f"{k} {v}" for k, v in result.unchanged.items()),
    )
    return result


def _whole_orders(data: SourceData, scans: Mapping[str, _Scan], block_rows: int | None) -> None:
    """Validate an order and all its lines together when the header or any line is to be validated.

    The order ids are read a block at a time (a spilled table's from its file); what is held is
    the touched orders' ids.
    """
    heads, lines = scans["orders"], scans["order_items"]
    if heads.keep.all() and lines.keep.all():
        return  # everything is validated already (a full load)
    frames = {"orders": data.tables["orders"].frame, "order_items": data.tables["order_items"].frame}
    parts: list[pd.Series] = []
    for name, scan in (("orders", heads), ("order_items", lines)):
        for start, block in table_blocks(frames[name], block_rows, ["order_id"]):
            mask = scan.keep[start : start + len(block)]
            if mask.any():
                ids = block["order_id"].astype("string").reset_index(drop=True)
                parts.append(ids[mask].dropna().drop_duplicates())
    if not parts:
        return
    touched = pd.concat(parts, ignore_index=True).drop_duplicates()
    del parts
    for name, scan in (("orders", heads), ("order_items", lines)):
        for start, block in table_blocks(frames[name], block_rows, ["order_id"]):
            ids = block["order_id"].astype("string").reset_index(drop=True)
            scan.keep[start : start + len(block)] |= _in(ids, touched)


def accepted_hashes(changes: ChangeSet, accepted: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Return per table the (row_key, row_hash) of the rows validation accepted (what core now holds)."""
    return {name: table_hashes(t, accepted[name]) for name, t in changes.tables.items()}


def table_hashes(changes: TableChanges, accepted: pd.DataFrame) -> pd.DataFrame:
    """Return the (row_key, row_hash) of one table's accepted rows (``accepted``: their frame).

    The keys are made from the accepted rows' key columns here (:func:`row_keys`, the same text the
    changes step compared), not held from the changes step on; they stay Arrow text (not a Python
    string per row), the load converts a chunk at a time.
    """
    positions = np.asarray(accepted.index, dtype="int64")
    return pd.DataFrame(
        {
            "row_key": row_keys(accepted, contract.table(changes.name)),
            "row_hash": changes.hashes[positions].view(np.int64),
        }
    )


def store_hashes(
    conn: sa.Connection,
    metadata: sa.MetaData,
    changes: ChangeSet,
    accepted: Mapping[str, pd.DataFrame],
    *,
    run_id: str,
    block_rows: int | None = None,
) -> int:
    """Write the hashes of the accepted rows into ``audit.row_hashes`` (in the caller's transaction).

    ``block_rows``: rows written per insert (bounds the driver-ready rows held at once).

    Returns the number of hashes written. A full load replaces a table's hashes; otherwise only
    the keys written are replaced (all of them at once when there are many).
    """
    table = metadata.tables[ROW_HASHES]
    written = 0
    for name, t in changes.tables.items():
        spilled = isinstance(accepted[name], SpilledRows)
        if spilled or (changes.mode == "full" and block_rows and len(accepted[name]) > block_rows):
            full = changes.mode == "full"
            written += _replace_in_blocks(conn, table, t, accepted[name], run_id, block_rows, full=full)
            continue
        frame = table_hashes(t, accepted[name])  # one table's keys at a time
        if frame["row_key"].isna().any():
            frame = frame[frame["row_key"].notna()]
        if not block_rows or len(frame) <= block_rows:
            frame = frame.drop_duplicates("row_key", keep="last")
        # longer tables: validation accepts each key once (duplicate_key, duplicate_identical and
        # key_collision reject the others; not_null the keys with a missing part) and the primary
        # key of audit.row_hashes refuses a repeat; a hash set over every key would cost ~130 MB
        # per million rows (issue 18 memory)
        if not len(frame):
            continue
        # one code per row, not the same text per row (issue 18 memory); the load writes the text
        frame["table_name"] = pd.Categorical.from_codes(
            np.zeros(len(frame), dtype=np.int8), categories=[name]
        )
        frame["run_id"] = pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), categories=[run_id])
        mine = table.c.table_name == name
        if changes.mode == "full":
            conn.execute(table.delete().where(mine))
        else:
            rewrite = sorted(frame["row_key"][frame["row_key"].isin(t.rewrite)].tolist()) if t.rewrite else []
            if len(rewrite) > REPLACE_ALL_ABOVE:
                frame = _merged(conn, metadata, name, frame, run_id)
                conn.execute(table.delete().where(mine))
            else:
                for start in range(0, len(rewrite), _DELETE_CHUNK):
                    chunk = rewrite[start : start + _DELETE_CHUNK]
                    conn.execute(table.delete().where(mine, table.c.row_key.in_(chunk)))
        step = block_rows or len(frame)
        for start in range(0, len(frame), step):
            written += bulk_insert(conn, table, frame.iloc[start : start + step])
    return written


def _replace_in_blocks(
    conn: sa.Connection,
    table: sa.Table,
    changes: TableChanges,
    accepted: pd.DataFrame | SpilledRows,
    run_id: str,
    block_rows: int | None,
    *,
    full: bool = True,
) -> int:
    """Write one table's accepted rows' hashes ``block_rows`` rows at a time; returns the rows written.

    ``full`` (a full load): they replace the table's stored hashes. Otherwise (the new and changed
    rows of a snapshot or new-only drop, spilled): each block's keys that had a stored hash
    (``changes.rewrite``) are deleted before the block is written, as :func:`store_hashes` does
    for a frame. The row keys of one block exist at a time (issue 18 memory); the rows written
    are those of the whole-table path (keys with a missing part left out, nothing deleted when
    no row has a key).
    """
    written = 0
    replaced = False
    spec = contract.table(changes.name)
    if isinstance(accepted, SpilledRows):  # read from the spill file a block at a time
        blocks: Iterator[pd.DataFrame] = accepted.blocks(block_rows, columns=list(spec.key))
    else:
        assert block_rows
        blocks = (accepted.iloc[start : start + block_rows] for start in range(0, len(accepted), block_rows))
    for block in blocks:
        frame = table_hashes(changes, block)
        if frame["row_key"].isna().any():
            frame = frame[frame["row_key"].notna()]
        if not len(frame):
            continue
        if full and not replaced:
            conn.execute(table.delete().where(table.c.table_name == changes.name))
            replaced = True
        elif not full and changes.rewrite:
            again = frame["row_key"][frame["row_key"].isin(changes.rewrite)].tolist()
            for start in range(0, len(again), _DELETE_CHUNK):
                chunk = sorted(again[start : start + _DELETE_CHUNK])
                conn.execute(
                    table.delete().where(table.c.table_name == changes.name, table.c.row_key.in_(chunk))
                )
        frame["table_name"] = pd.Categorical.from_codes(
            np.zeros(len(frame), dtype=np.int8), categories=[changes.name]
        )
        frame["run_id"] = pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), categories=[run_id])
        written += bulk_insert(conn, table, frame)
    return written


def _merged(
    conn: sa.Connection, metadata: sa.MetaData, name: str, frame: pd.DataFrame, run_id: str
) -> pd.DataFrame:
    """Return every stored hash of ``name`` with the rows of ``frame`` replacing theirs."""
    table = metadata.tables[ROW_HASHES]
    rows = conn.execute(
        sa.select(table.c.row_key, table.c.row_hash, table.c.run_id).where(table.c.table_name == name)
    ).fetchall()
    old = pd.DataFrame(rows, columns=["row_key", "row_hash", "run_id"])
    old = old[~old["row_key"].isin(frame["row_key"])]
    old["table_name"] = name
    return pd.concat([old, frame], ignore_index=True)


def with_unchanged(counts: Mapping[str, TableCounts], changes: ChangeSet) -> dict[str, TableCounts]:
    """Return the load's per-table counts with the unchanged rows added to read, lines and unchanged."""
    out: dict[str, TableCounts] = {}
    for name, c in counts.items():
        n = changes.tables[name].unchanged if name in changes.tables else 0
        out[name] = replace(
            c,
            read=c.read + n,
            lines=None if c.lines is None else c.lines + n,
            unchanged=n,
        )
        out[name].check(name)
    return out


def hash_writer(
    metadata: sa.MetaData,
    changes: ChangeSet,
    accepted: Mapping[str, pd.DataFrame],
    run_id: str,
    block_rows: int | None = None,
) -> Callable[[sa.Connection], None]:
    """Return a callback writing the accepted rows' hashes, for ``load_step(after_load=...)``."""

    def write(conn: sa.Connection) -> None:
        n = store_hashes(conn, metadata, changes, accepted, run_id=run_id, block_rows=block_rows)
        log.info("stored %d row hashes (mode %s)", n, changes.mode)

    return write


def core_row_count(conn: sa.Connection, metadata: sa.MetaData, name: str) -> int:
    """Return the rows of core table ``name`` (for tests and notes)."""
    return count_rows(conn, metadata.tables[f"core.{name}"])


def select_drop_changes(
    engine: sa.Engine,
    metadata: sa.MetaData,
    data: SourceData,
    *,
    mode: str = "auto",
    previous_counts: Mapping[str, int] | None = None,
    block_rows: int | None = None,
    spill_rows: int = 0,
) -> ChangeSet:
    """Return :func:`select_changes` of ``data`` on a connection of its own (read only)."""
    with engine.connect() as conn:
        return select_changes(
            conn,
            metadata,
            data,
            mode=mode,
            previous_counts=previous_counts,
            block_rows=block_rows,
            spill_rows=spill_rows,
        )
