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
from salesbi.reading.reader import SourceData, SourceTable
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
    """The stored content hashes of one table: row keys and their uint64 hashes, same order."""

    keys: pd.Index
    hashes: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    def compare(self, keys: pd.Series, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return two masks over the rows: key stored at all, and key stored with the same hash."""
        pos = self.keys.get_indexer(keys.fillna(KEY_SEPARATOR).to_numpy(dtype=object))
        found = pos >= 0
        same = np.zeros(len(keys), dtype=bool)
        same[found] = self.hashes[pos[found]] == hashes[found]
        return found, same


def stored_hashes(
    conn: sa.Connection, metadata: sa.MetaData, name: str, keys: pd.Series | None = None
) -> StoredHashes:
    """Return the stored content hashes of table ``name`` (only those of ``keys`` when given)."""
    table = metadata.tables[ROW_HASHES]
    query = sa.select(table.c.row_key, table.c.row_hash).where(table.c.table_name == name)
    if keys is None:
        rows = _fetch_raw(conn, query)
    else:
        wanted = sorted(set(keys.dropna()))
        rows = []
        for start in range(0, len(wanted), _DELETE_CHUNK):
            chunk = wanted[start : start + _DELETE_CHUNK]
            rows.extend(conn.execute(query.where(table.c.row_key.in_(chunk))).fetchall())
    return StoredHashes(
        keys=pd.Index([r[0] for r in rows], dtype=object),
        hashes=np.array([r[1] for r in rows], dtype=np.int64).view(np.uint64),
    )


def _fetch_raw(conn: sa.Connection, query: sa.Select[Any]) -> list[Any]:
    """Return the rows of ``query`` through the driver's own cursor (no SQLAlchemy Row per row).

    The query's only parameters are the code's own table names, rendered as literals.
    """
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
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


def _faulty_rows(table: SourceTable) -> np.ndarray:
    """Return a mask of the rows the reader reported a cell or line fault on."""
    frame = whole(table)
    faults = table.faults
    if faults is None or not len(faults) or SOURCE_LINE not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    rows = pd.MultiIndex.from_arrays(
        [frame[SOURCE_FILE].astype("string"), frame[SOURCE_LINE].astype("Int64")]
    )
    bad = pd.MultiIndex.from_arrays([faults["file"].astype("string"), faults["line"].astype("Int64")])
    return np.asarray(rows.isin(bad), dtype=bool)


def _order_dates(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["order_date"], errors="coerce")


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


def select_changes(
    conn: sa.Connection,
    metadata: sa.MetaData,
    data: SourceData,
    *,
    mode: str = "auto",
    previous_counts: Mapping[str, int] | None = None,
    block_rows: int | None = None,
) -> ChangeSet:
    """Return the ChangeSet of a drop: the rows to validate and load, the unchanged ones counted.

    ``block_rows``: content hashes are computed that many rows at a time (bounded memory).

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
        # a drop compared with core row by row: the spilled tables are read back whole (the
        # streamed path covers full loads; docs/scaling.md "Seventh session")
        data = whole_frames(data)
        _check_whole_drop(data, applied, previous_counts)
    if applied == "new_only" and mark is not None:
        dates = _order_dates(data.tables["orders"].frame)
        early = int((dates.dt.date < mark).sum()) if len(dates) else 0
        if early:
            notes.append(
                f"new-only drop: {early} orders are dated before the watermark {mark}; "
                "they were compared with core by content hash like the rest of the drop"
            )
    keep_masks: dict[str, np.ndarray] = {}
    all_keys: dict[str, pd.Series | None] = {}
    all_hashes: dict[str, np.ndarray] = {}
    stored_by_table: dict[str, StoredHashes] = {}
    found_masks: dict[str, np.ndarray] = {}
    for spec in contract.TABLES:
        table = data.tables[spec.name]
        frame = table.frame
        # a full load compares nothing with stored hashes: no row keys needed until they are written
        keys = row_keys(frame, spec) if applied != "full" else None
        hashes = row_hashes_in_blocks(frame, spec, block_rows)
        all_keys[spec.name], all_hashes[spec.name] = keys, hashes
        keep = np.ones(len(frame), dtype=bool)
        stored = StoredHashes(pd.Index([], dtype=object), np.array([], dtype=np.uint64))
        if applied == "new_only" and spec.name in NEW_ONLY_TABLES:
            # beyond the watermark: look up only this drop's keys (a same-day re-drop may repeat some)
            stored = stored_hashes(conn, metadata, spec.name, keys)
        elif applied != "full":
            stored = stored_hashes(conn, metadata, spec.name)
        stored_by_table[spec.name] = stored
        found = np.zeros(len(frame), dtype=bool)
        if keys is not None and len(stored) and len(frame):
            found, same = stored.compare(keys, hashes)
            same &= keys.notna().to_numpy(dtype=bool)
            same &= ~keys.duplicated(keep=False).to_numpy(dtype=bool)
            same &= ~_faulty_rows(table)
            keep = ~same
        keep_masks[spec.name] = keep
        found_masks[spec.name] = found
    _whole_orders(data, keep_masks)
    for spec in contract.TABLES:
        table = data.tables[spec.name]
        keep = keep_masks[spec.name]
        unchanged = int((~keep).sum())
        # every row kept (a full load): the same rows without a copy (copy-on-write), a spilled
        # table as it is; else the kept rows
        kept: pd.DataFrame | SpilledFrame
        if isinstance(table.frame, SpilledFrame):
            assert keep.all()  # spilled tables are read whole before a comparison with core
            kept = table.frame
        else:
            kept = (table.frame.copy(deep=False) if keep.all() else table.frame[keep]).reset_index(drop=True)
        tables[spec.name] = replace(
            table,
            frame=kept,
            read=len(kept),
            lines=None if table.lines is None else table.lines - unchanged,
        )
        stored = stored_by_table[spec.name]
        keys = all_keys.pop(spec.name)
        rewrite = frozenset() if keys is None else frozenset(keys[keep & found_masks[spec.name]].dropna())
        del keys
        changes[spec.name] = TableChanges(
            name=spec.name,
            rows=len(kept),
            hashes=all_hashes[spec.name][keep],
            unchanged=unchanged,
            stored=len(stored),
            rewrite=rewrite,
        )
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


def whole(table: SourceTable) -> pd.DataFrame:
    """Return the table's frame (a drop compared with core holds no spilled table: :func:`whole_frames`)."""
    assert isinstance(table.frame, pd.DataFrame)
    return table.frame


def whole_frames(data: SourceData) -> SourceData:
    """Return ``data`` with every spilled table read back as one frame (the whole-frame path's)."""
    if not any(isinstance(t.frame, SpilledFrame) for t in data.tables.values()):
        return data
    tables = {
        name: replace(t, frame=t.frame.to_frame()) if isinstance(t.frame, SpilledFrame) else t
        for name, t in data.tables.items()
    }
    return replace(data, tables=tables)


def _whole_orders(data: SourceData, keep: dict[str, np.ndarray]) -> None:
    """Validate an order and all its lines together when the header or any line is to be validated."""
    if keep["orders"].all() and keep["order_items"].all():
        return  # everything is validated already (a full load)
    orders = whole(data.tables["orders"])["order_id"].astype("string").reset_index(drop=True)
    items = whole(data.tables["order_items"])["order_id"].astype("string").reset_index(drop=True)
    touched = pd.concat([orders[keep["orders"]], items[keep["order_items"]]]).dropna().drop_duplicates()
    keep["orders"] = keep["orders"] | _in(orders, touched)
    keep["order_items"] = keep["order_items"] | _in(items, touched)


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
        if changes.mode == "full" and (spilled or (block_rows and len(accepted[name]) > block_rows)):
            written += _replace_in_blocks(conn, table, t, accepted[name], run_id, block_rows)
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
) -> int:
    """Replace one table's stored hashes by its accepted rows' (a full load), ``block_rows`` rows at a time.

    The row keys of one block exist at a time (issue 18 memory); the rows written and their order
    are those of the whole-table path of :func:`store_hashes` (keys with a missing part left out,
    nothing deleted when no row has a key). Returns the rows written.
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
        if not replaced:
            conn.execute(table.delete().where(table.c.table_name == changes.name))
            replaced = True
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
) -> ChangeSet:
    """Return :func:`select_changes` of ``data`` on a connection of its own (read only)."""
    with engine.connect() as conn:
        return select_changes(
            conn, metadata, data, mode=mode, previous_counts=previous_counts, block_rows=block_rows
        )
