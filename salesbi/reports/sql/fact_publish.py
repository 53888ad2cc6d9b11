"""``rpt.fact_order_lines`` published without leaving the warehouse (``reports_in="warehouse"``).

The line-grain table is the one report table as large as the order lines. In warehouse mode it
never travels whole:

- :func:`fact_insert` fills ``rpt.fact_order_lines`` with one ``INSERT … SELECT`` inside the
  publish transaction (:class:`salesbi.publish.InDatabase`): a copy of the run's build table of
  the fact's lines (:mod:`salesbi.reports.sql.fact_build`, computed once per run by the statement
  of :func:`salesbi.reports.sql.selects.fact_order_lines_select`, so the same columns, types and
  values as :func:`salesbi.reports.fact.build_fact_order_lines`), or that statement over ``core``
  when the run has no build table;
- :func:`export_parquet` writes its Parquet file from that table in bounded batches (PostgreSQL:
  ``COPY … TO STDOUT`` parsed by Arrow's streaming CSV reader; other dialects: the driver's
  cursor, ``fetchmany``), each batch typed exactly as the pandas path types the whole frame.

The model steps and the insights read aggregates the database computes instead of the fact's
lines (:mod:`salesbi.reports.sql.model_inputs`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.sql import Select

from salesbi.reports.fact import FACT_ORDER_LINES
from salesbi.reports.sql import sqlite
from salesbi.reports.sql.expr import binary_text
from salesbi.reports.sql.selects import fact_order_lines_select
from salesbi.schema import Table
from salesbi.types import arrow_schema, conform, to_arrow
from salesbi.warehouse.load import CopyStream, postgres_csv_convert

#: rows per batch written to Parquet by the cursor route (PostgreSQL's COPY route cuts by bytes)
BATCH_ROWS = 100_000
#: bytes of COPY's CSV per Arrow batch (about 100k fact lines)
COPY_BLOCK_BYTES = 16 << 20


def fact_table(metadata: sa.MetaData) -> sa.Table:
    """Return the warehouse's ``rpt.fact_order_lines`` table."""
    return metadata.tables[FACT_ORDER_LINES.qualified_name]


def fact_insert(
    metadata: sa.MetaData, target: sa.Table | None = None, lines: sa.FromClause | None = None
) -> sa.Insert:
    """Return ``INSERT INTO rpt.fact_order_lines (…) SELECT …`` over ``core`` (or into ``target``).

    ``lines``: copy the run's build table of the fact's lines (:mod:`salesbi.reports.sql.fact_build`)
    instead of computing them from core.
    """
    target = fact_table(metadata) if target is None else target
    names = FACT_ORDER_LINES.column_names
    select = fact_order_lines_select(metadata) if lines is None else sa.select(*(lines.c[c] for c in names))
    return sa.insert(target).from_select(names, select)


def insert_fact(
    conn: sa.Connection,
    metadata: sa.MetaData,
    target: sa.Table | None = None,
    lines: sa.FromClause | None = None,
) -> int:
    """Fill ``rpt.fact_order_lines`` (or ``target``, emptied by the caller) from core; return its rows.

    ``lines``: from the run's build table of the fact's lines, a copy (no join computed again).

    On SQLite the connection's page caches are capped first (:func:`salesbi.reports.sql.sqlite.bounded`:
    the rows written spill to the file rather than staying in the cache until the commit).
    """
    sqlite.bounded(conn, temp_store=False)  # in the publish transaction: temp_store cannot change
    rows = conn.execute(fact_insert(metadata, target, lines)).rowcount
    if rows is None or rows < 0:  # a driver that does not count: ask
        table = fact_table(metadata) if target is None else target
        rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    return int(rows)


def _key_order(table: sa.FromClause, spec: Table) -> list[sa.ColumnElement[Any]]:
    """Return the ``ORDER BY`` of ``spec``'s key: text by code point, as the pandas build sorts."""
    return [binary_text(table.c[k]) if spec.column(k).spec.family == "text" else table.c[k] for k in spec.key]


def _compiled(conn: sa.Connection, select: Select[Any]) -> str:
    return str(select.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))


_PANDAS_TYPES = {pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype(), pa.bool_(): pd.BooleanDtype()}


def _copy_frames(conn: sa.Connection, select: Select[Any], spec: Table) -> Iterator[pd.DataFrame]:
    """Yield the rows of ``select`` in batches through PostgreSQL's ``COPY … TO STDOUT`` (CSV → Arrow)."""
    convert = postgres_csv_convert({f.name: f.type for f in arrow_schema(spec)})
    dbapi = conn.connection.dbapi_connection
    copy_sql = f"COPY ({_compiled(conn, select)}) TO STDOUT (FORMAT csv, HEADER true)"
    with dbapi.cursor() as cursor, cursor.copy(copy_sql) as copy:  # type: ignore[union-attr]
        reader = pacsv.open_csv(
            io.BufferedReader(CopyStream(iter(copy)), buffer_size=1 << 20),
            read_options=pacsv.ReadOptions(block_size=COPY_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=convert,
        )
        for batch in reader:
            if batch.num_rows:
                yield batch.to_pandas(types_mapper=_PANDAS_TYPES.get, date_as_object=False)


def _cursor_frames(conn: sa.Connection, select: Select[Any], batch_rows: int) -> Iterator[pd.DataFrame]:
    """Yield the rows of ``select`` in batches of ``batch_rows`` fetched through the driver's cursor."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_compiled(conn, select))
        names = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(batch_rows):
            records = [tuple(row) for row in rows]  # pyodbc hands back its own Row objects
            yield pd.DataFrame.from_records(records, columns=names, nrows=len(records))
    finally:
        cursor.close()


def iter_frames(
    conn: sa.Connection, select: Select[Any], spec: Table, batch_rows: int = BATCH_ROWS
) -> Iterator[pd.DataFrame]:
    """Yield the rows of ``select`` (``spec``'s columns) as typed frames (``conform``) of bounded size.

    The database sends the rows in the order of the statement; at most one batch (about
    ``batch_rows`` rows) is held at a time.
    """
    if conn.dialect.name == "postgresql":
        frames = _copy_frames(conn, select, spec)
    else:
        frames = _cursor_frames(conn, select, batch_rows)
    for frame in frames:
        yield conform(frame, spec)


def export_parquet(
    conn: sa.Connection, table: sa.Table, spec: Table, path: Path, batch_rows: int = BATCH_ROWS
) -> int:
    """Write ``table``'s rows, sorted by ``spec``'s key, to the Parquet file ``path``; return the rows.

    Written in batches: read back, the file equals ``to_arrow(frame, spec)`` of the whole table
    (the pandas path's file: same schema, pandas metadata and values), but no frame of the
    whole table exists. An empty table gives a file with the schema and no rows.
    """
    select = sa.select(*(table.c[c] for c in spec.column_names)).order_by(*_key_order(table, spec))
    empty = to_arrow(conform(pd.DataFrame(columns=spec.column_names), spec), spec)
    rows = 0
    with pq.ParquetWriter(path, empty.schema, compression="zstd") as writer:
        for frame in iter_frames(conn, select, spec, batch_rows):
            batch = to_arrow(frame.reset_index(drop=True), spec)
            writer.write_table(batch)
            rows += batch.num_rows
    return rows
