"""Read a warehouse table in the order of its primary key, a batch at a time (never whole).

The report step reads core's ``order_items`` this way (:mod:`salesbi.reports.line_blocks`): the
rows come in key order from the database (an ordered scan of the primary key's index, or the
server's own sort), so the client holds one batch at a time and sorts nothing. Text keys are
ordered by their bytes (code points), the order Arrow's ``sort_indices`` gives:

* SQLite: the driver's cursor, ``ORDER BY`` the key (text compares as ``BINARY``: memcmp of the
  UTF-8 bytes; the primary key's index gives the rows in that order);
* PostgreSQL: ``COPY (SELECT … ORDER BY key COLLATE "C") TO STDOUT`` streamed into Arrow's
  incremental CSV reader (the database's collation may be a language's; ``"C"`` is byte order);
* SQL Server: ``arrow-odbc`` batches of ``SELECT … ORDER BY key COLLATE Latin1_General_BIN2``
  (code point order; the clustered primary key serves it when the column's collation is binary);
* anything else: SQLAlchemy with ``stream_results``.

The values are each route's own (as :func:`salesbi.warehouse.load.read_table_fast` gives them):
callers pass each batch through :func:`salesbi.types.conform`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import mssql, postgresql
from sqlalchemy.engine import Engine

from salesbi.warehouse.load import (
    ODBC_BATCH_ROWS,
    CopyStream,
    _arrow_frame,
    arrow_schema_of,
    arrow_type_of,
    odbc_connection_string,
    postgres_csv_convert,
    read_route,
)

#: rows a batch of :func:`ordered_batches` holds (about; the Arrow CSV reader cuts by bytes): at 1M
#: lines the report step peaked 43 MiB lower than with 131,072 (the driver's tuples of a batch)
ORDERED_BATCH_ROWS = 32_768


def _ordered_key(table: sa.Table, dialect: str) -> list[Any]:
    """Return the ORDER BY terms of ``table``'s primary key, text columns in byte/code point order."""
    terms: list[Any] = []
    for column in table.primary_key.columns:
        text = isinstance(column.type, sa.String)
        if text and dialect == "postgresql":
            terms.append(column.collate("C"))
        elif text and dialect == "mssql":
            terms.append(column.collate("Latin1_General_BIN2"))
        else:
            terms.append(column)
    return terms


def ordered_select(table: sa.Table, dialect: sa.Dialect) -> str:
    """Return the SELECT of every column of ``table`` in primary-key order, compiled for ``dialect``.

    On SQL Server, DECIMAL columns are cast to FLOAT (as :func:`salesbi.warehouse.load.mssql_read_query`).
    """
    columns: list[Any] = list(table.columns)
    if dialect.name == "mssql":
        columns = [
            sa.cast(c, sa.Float(53)).label(c.name) if arrow_type_of(c) == pa.float64() else c
            for c in table.columns
        ]
    stmt = sa.select(*columns).order_by(*_ordered_key(table, dialect.name))
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def postgres_ordered_copy_sql(table: sa.Table) -> str:
    """Return ``COPY (<ordered select>) TO STDOUT WITH (FORMAT csv)`` for ``table`` on PostgreSQL."""
    return f"COPY ({ordered_select(table, postgresql.dialect())}) TO STDOUT WITH (FORMAT csv)"


def mssql_ordered_select(table: sa.Table) -> str:
    """Return the T-SQL of the ordered read of ``table`` that ``arrow-odbc`` sends on SQL Server."""
    return ordered_select(table, mssql.dialect())


def ordered_batches(
    engine: Engine, table: sa.Table, rows: int = ORDERED_BATCH_ROWS
) -> Iterator[pd.DataFrame]:
    """Yield every row of ``table`` in primary-key order as frames of about ``rows`` rows.

    At least one frame (empty when the table is), with the table's columns. The connection is
    open while the batches are read and closed when the iteration ends (or is abandoned).
    """
    rows = max(1, rows)
    with engine.connect() as conn:
        route = read_route(conn.dialect.name, conn.dialect.driver)
        if route == "sqlite-cursor":
            batches = _sqlite_batches(conn, table, rows)
        elif route == "postgresql-copy":
            batches = _postgres_batches(conn, table, rows)
        elif route == "arrow-odbc":
            batches = _odbc_batches(conn, table, rows)
        else:
            batches = _sqlalchemy_batches(conn, table, rows)
        empty = True
        for batch in batches:
            if len(batch):
                empty = False
                yield batch
        if empty:
            yield pd.DataFrame({c.name: pd.Series(dtype="object") for c in table.columns})


def _sqlite_batches(conn: sa.Connection, table: sa.Table, rows: int) -> Iterator[pd.DataFrame]:
    names = [c.name for c in table.columns]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(ordered_select(table, conn.dialect))
        while chunk := cursor.fetchmany(rows):
            yield pd.DataFrame.from_records(chunk, columns=names, nrows=len(chunk))
    finally:
        cursor.close()


def _postgres_batches(conn: sa.Connection, table: sa.Table, rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.csv as pacsv

    schema = arrow_schema_of(table)
    dbapi = conn.connection.driver_connection
    with dbapi.cursor() as cur, cur.copy(postgres_ordered_copy_sql(table)) as copy:  # type: ignore[union-attr]
        source = io.BufferedReader(CopyStream(iter(copy)), buffer_size=1 << 20)
        first = source.peek(1)
        if not first:
            return
        # ~40 bytes a line of order_items: blocks of about ``rows`` lines
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=schema.names, block_size=max(1 << 12, rows * 40)),
            convert_options=postgres_csv_convert(schema),
        )
        for batch in reader:
            yield _arrow_frame(pa.Table.from_batches([batch]))


def _odbc_batches(conn: sa.Connection, table: sa.Table, rows: int) -> Iterator[pd.DataFrame]:
    from arrow_odbc import read_arrow_batches_from_odbc

    reader = read_arrow_batches_from_odbc(
        query=mssql_ordered_select(table),
        connection_string=odbc_connection_string(conn.engine.url, conn.dialect),
        batch_size=min(rows, ODBC_BATCH_ROWS),
    )
    for batch in reader:
        yield _arrow_frame(pa.Table.from_batches([batch]))


def _sqlalchemy_batches(conn: sa.Connection, table: sa.Table, rows: int) -> Iterator[pd.DataFrame]:
    stmt = sa.select(table).order_by(*_ordered_key(table, conn.dialect.name))
    result = conn.execution_options(stream_results=True, yield_per=rows).execute(stmt)
    names = list(result.keys())
    for part in result.partitions(rows):
        yield pd.DataFrame([tuple(r) for r in part], columns=names)
