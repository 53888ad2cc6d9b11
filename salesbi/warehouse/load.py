"""Moving frames in and out of the warehouse: bulk inserts, idempotent upserts, atomic replaces.

Each backend gets its fastest safe path:

* SQLite: ``executemany`` on the raw connection with rows built column-wise by Arrow;
* PostgreSQL: ``COPY ... FROM STDIN`` of CSV written column-wise by Arrow;
* SQL Server and others: SQLAlchemy ``executemany`` (``fast_executemany`` on
  pyodbc), chunked so that no statement carries more than 2,100 parameters.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import AddConstraint, DropConstraint

MSSQL_MAX_PARAMS = 2100
CHUNK_ROWS = 50_000
#: rows per CSV block sent to PostgreSQL's COPY (bounds the text held at once)
COPY_ROWS = 200_000


def rows_per_statement(n_columns: int, max_params: int = MSSQL_MAX_PARAMS) -> int:
    """Return how many rows fit in one multi-row statement under SQL Server's parameter limit."""
    return max(1, (max_params - 1) // max(1, n_columns))


def _decoded(arr: pa.Array) -> pa.Array:
    """Return ``arr`` with its values spelled out when it is dictionary-encoded (a pandas categorical)."""
    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def _column_values(series: pd.Series, sql_column: sa.Column[Any]) -> list[Any]:
    """Return a column's values as DB-API-ready Python objects (None for nulls, ISO text for dates)."""
    arr = _decoded(pa.Array.from_pandas(series))
    type_ = sql_column.type
    if isinstance(type_, sa.Date) or pa.types.is_date(arr.type):
        if pa.types.is_timestamp(arr.type):
            arr = arr.cast(pa.date32())  # the day (floored, also before 1970); 8x faster than strftime
        arr = arr.cast(pa.string())
    elif isinstance(type_, sa.DateTime) and pa.types.is_timestamp(arr.type):
        arr = pc.strftime(arr, format="%Y-%m-%d %H:%M:%S.%f")
    elif pa.types.is_boolean(arr.type):
        arr = arr.cast(pa.int8())
    elif pa.types.is_floating(arr.type):
        # NaN is a null in pandas' float columns
        arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, arr.type), arr)
    return arr.to_pylist()  # type: ignore[no-any-return]


def iter_row_chunks(frame: pd.DataFrame, table: sa.Table, chunk_rows: int) -> Iterator[list[tuple[Any, ...]]]:
    """Yield lists of row tuples in the table's column order, ``chunk_rows`` at a time."""
    names = [c.name for c in table.columns if c.name in frame.columns]
    for start in range(0, len(frame), chunk_rows):
        part = frame.iloc[start : start + chunk_rows]
        columns = [_column_values(part[n], table.c[n]) for n in names]
        yield list(zip(*columns, strict=True))


def bulk_insert(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> int:
    """Insert every row of ``frame`` into ``table`` (columns matched by name); return the row count."""
    if frame.empty:
        return 0
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        _bulk_insert(conn, table, frame)
    except (
        dbapi_error
    ) as exc:  # raw-cursor paths: wrap like SQLAlchemy does (IntegrityError, OperationalError…)
        raise sa.exc.DBAPIError.instance(
            f"bulk insert into {table.schema}.{table.name}", None, exc, dbapi_error, dialect=conn.dialect
        ) from exc
    return len(frame)


def _bulk_insert(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    names = [c.name for c in table.columns if c.name in frame.columns]
    dialect = conn.dialect.name
    if dialect == "sqlite":
        cols = ", ".join(f'"{n}"' for n in names)
        marks = ", ".join("?" for _ in names)
        sql = f'INSERT INTO {table.schema}."{table.name}" ({cols}) VALUES ({marks})'
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            for rows in iter_row_chunks(frame, table, CHUNK_ROWS):
                cursor.executemany(sql, rows)
        finally:
            cursor.close()
    elif dialect == "postgresql":
        _copy_postgres(conn, table, frame[names])
    else:
        chunk = (
            CHUNK_ROWS if getattr(conn.dialect, "fast_executemany", False) else rows_per_statement(len(names))
        )
        stmt = table.insert()
        for rows in iter_row_chunks(frame, table, chunk):
            conn.execute(stmt, [dict(zip(names, r, strict=True)) for r in rows])


def _arrow_column(series: pd.Series, sql_column: sa.Column[Any]) -> pa.Array:
    """Return a column as an Arrow array for the CSV writer (nulls as nulls, dates as days)."""
    try:
        arr = _decoded(pa.Array.from_pandas(series))  # NaN in a float column is a null, as in pandas
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects: their text, as the database would
        arr = pa.Array.from_pandas(series.astype("string"))
    type_ = sql_column.type
    if isinstance(type_, sa.Date) and not isinstance(type_, sa.DateTime) and pa.types.is_timestamp(arr.type):
        arr = arr.cast(pa.date32())  # the day (floored, also before 1970)
    elif isinstance(type_, sa.Integer) and pa.types.is_floating(arr.type):
        arr = arr.cast(pa.int64())  # whole numbers held as floats (a null made pandas widen them)
    elif pa.types.is_timestamp(arr.type) and arr.type.tz is not None:
        arr = arr.cast(pa.timestamp(arr.type.unit))  # naive UTC, as the DateTime columns hold
    return arr


def postgres_copy_csv(table: sa.Table, frame: pd.DataFrame) -> bytes:
    """Return the CSV bytes that ``COPY ... FROM STDIN (FORMAT csv)`` loads as ``frame``'s rows.

    Arrow writes it column-wise: every text value quoted (so an empty string, or the text
    ``\\N``, stays text) and a null as an unquoted empty field, which is what PostgreSQL's CSV
    format reads as NULL.
    """
    import pyarrow.csv as pacsv

    arrays = [_arrow_column(frame[name], table.c[name]) for name in frame.columns]
    arrow = pa.Table.from_arrays(arrays, names=[str(n) for n in frame.columns])
    sink = io.BytesIO()
    pacsv.write_csv(arrow, sink, write_options=pacsv.WriteOptions(include_header=False))
    return sink.getvalue()


def _copy_postgres(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    preparer = conn.dialect.identifier_preparer
    cols = ", ".join(preparer.quote(str(n)) for n in frame.columns)
    sql = f"COPY {preparer.format_table(table)} ({cols}) FROM STDIN WITH (FORMAT csv)"
    dbapi = conn.connection.driver_connection
    with dbapi.cursor() as cur, cur.copy(sql) as copy:  # type: ignore[union-attr]
        for start in range(0, len(frame), COPY_ROWS):
            copy.write(postgres_copy_csv(table, frame.iloc[start : start + COPY_ROWS]))


def deferred_constraints(dialect: sa.Dialect, table: sa.Table) -> tuple[list[Any], list[sa.Index]]:
    """Return the foreign keys and secondary indexes of ``table`` a first bulk load builds after the rows.

    Secondary indexes on every dialect; foreign keys on PostgreSQL and SQL Server (SQLite cannot
    drop a constraint, and checks its foreign keys cheaply). Sorted by name, so the DDL is stable.
    """
    indexes = sorted(table.indexes, key=lambda i: str(i.name))
    if dialect.name not in ("postgresql", "mssql"):
        return [], indexes
    fks = sorted(table.foreign_key_constraints, key=lambda fk: str(fk.name))
    return fks, indexes


@contextmanager
def constraints_after_rows(conn: sa.Connection, table: sa.Table, enabled: bool = True) -> Iterator[None]:
    """Drop ``table``'s deferrable constraints (:func:`deferred_constraints`), run the block, re-add them.

    Meant for a first load into an empty table inside the caller's transaction: the rows go in
    without a B-tree insert per row for each index and a trigger per row for each foreign key;
    then each index is built by one sort and each foreign key is validated by one set-wise query
    (``ALTER TABLE ... ADD CONSTRAINT``: a violation fails the transaction, as a row check would).
    With ``enabled`` false it only runs the block.
    """
    if not enabled:
        yield
        return
    fks, indexes = deferred_constraints(conn.dialect, table)
    for fk in fks:
        conn.execute(DropConstraint(fk))
    for index in indexes:
        index.drop(conn)
    yield
    for index in indexes:
        index.create(conn)
    for fk in fks:
        conn.execute(AddConstraint(fk))


def delete_all(conn: sa.Connection, table: sa.Table) -> None:
    """Delete every row of ``table`` (inside the caller's transaction)."""
    conn.execute(table.delete())


def upsert_statement(
    dialect: sa.Dialect, target: sa.Table, source: sa.Table, key: Sequence[str], where: Any = None
) -> sa.Executable:
    """Return one statement merging ``source`` rows into ``target`` by ``key``.

    Existing rows are updated only where a value differs, so a rerun with the
    same input writes nothing. SQLite and PostgreSQL use ``INSERT ... ON
    CONFLICT``; SQL Server uses ``MERGE``.
    """
    names = [c.name for c in target.columns]
    value_cols = [n for n in names if n not in key]
    select = sa.select(*(source.c[n] for n in names))
    select = select.where(where) if where is not None else select.where(sa.true())
    if dialect.name in ("sqlite", "postgresql"):
        module: Any = sqlite if dialect.name == "sqlite" else postgresql
        ins = module.insert(target).from_select(names, select)
        if not value_cols:
            return ins.on_conflict_do_nothing(index_elements=list(key))
        excluded = ins.excluded
        changed = sa.or_(*(target.c[n].is_distinct_from(excluded[n]) for n in value_cols))
        return ins.on_conflict_do_update(
            index_elements=list(key), set_={n: excluded[n] for n in value_cols}, where=changed
        )
    if dialect.name == "mssql":
        # the same SELECT (and so the same condition) as the other dialects, rendered in T-SQL;
        # its values are the code's own constants (e.g. the 'accepted' status), so literals are safe
        source_sql = str(select.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        # text() reads ":name" as a parameter: a colon in a literal must stay a colon
        return sa.text(mssql_merge_sql(target, source_sql.replace(":", "\\:"), key))
    raise NotImplementedError(f"no upsert for the {dialect.name} dialect")


def mssql_merge_sql(target: sa.Table, source_sql: str, key: Sequence[str]) -> str:
    """Return the T-SQL MERGE that upserts the rows of the query ``source_sql`` into ``target`` by ``key``.

    ``source_sql`` must select the target's columns by name; only changed rows are updated.
    """
    names = [c.name for c in target.columns]
    value_cols = [n for n in names if n not in key]

    def q(n: str) -> str:
        return f"[{n}]"

    src = f"({source_sql})"
    on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in key)
    t_cols = ", ".join(f"t.{q(n)}" for n in value_cols)
    s_cols = ", ".join(f"s.{q(n)}" for n in value_cols)
    sql = f"MERGE [{target.schema}].[{target.name}] WITH (HOLDLOCK) AS t USING {src} AS s ON {on}"
    if value_cols:
        sets = ", ".join(f"t.{q(n)} = s.{q(n)}" for n in value_cols)
        sql += f" WHEN MATCHED AND EXISTS (SELECT {s_cols} EXCEPT SELECT {t_cols}) THEN UPDATE SET {sets}"
    sql += (
        f" WHEN NOT MATCHED BY TARGET THEN INSERT ({', '.join(q(n) for n in names)})"
        f" VALUES ({', '.join('s.' + q(n) for n in names)});"
    )
    return sql


def count_rows(conn: sa.Connection, table: sa.Table) -> int:
    """Return the number of rows in ``table``."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def read_table(conn: sa.Connection, table: sa.Table) -> pd.DataFrame:
    """Return the whole of ``table`` as a frame (column types as the driver returns them)."""
    result = conn.execute(sa.select(table))
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def read_table_bulk(conn: sa.Connection, table: sa.Table) -> pd.DataFrame:
    """Return the whole of ``table`` as a frame, read through the driver's own cursor.

    SQLAlchemy builds a Row and runs its result processors (e.g. text → date on SQLite)
    for every value; the driver's cursor hands back plain tuples, several times faster.
    The column values are the driver's (dates as ISO text on SQLite), so callers pass the
    frame through :func:`salesbi.types.conform`, which gives the same typed frame as
    :func:`read_table` (tested).
    """
    sql = str(sa.select(table).compile(dialect=conn.dialect))
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return pd.DataFrame.from_records(rows, columns=[c.name for c in table.columns], nrows=len(rows))


#: how :func:`read_table_fast` reads a whole table, per SQLAlchemy dialect name (others: ``sqlalchemy``)
READ_ROUTES = {"sqlite": "sqlite-cursor", "postgresql": "postgresql-copy", "mssql": "arrow-odbc"}


#: the DB-API driver each route needs (psycopg 3's ``cursor.copy``; an ODBC connection string)
ROUTE_DRIVERS = {"postgresql-copy": "psycopg", "arrow-odbc": "pyodbc"}


def read_route(dialect_name: str, driver: str | None = None) -> str:
    """Return the name of the bulk read route :func:`read_table_fast` takes for a dialect and driver.

    A dialect reached through another driver than its route needs (e.g. ``pymssql``) reads
    through SQLAlchemy.
    """
    route = READ_ROUTES.get(dialect_name, "sqlalchemy")
    if driver is not None and ROUTE_DRIVERS.get(route, driver) != driver:
        return "sqlalchemy"
    return route


def read_table_fast(conn: sa.Connection, table: sa.Table) -> pd.DataFrame:
    """Return the whole of ``table`` read in bulk by the dialect's fastest tested route.

    * SQLite: :func:`read_table_bulk` (the driver's own cursor);
    * PostgreSQL: :func:`read_arrow_postgres` (``COPY ... TO STDOUT`` parsed by Arrow, same connection);
    * SQL Server: :func:`read_arrow_odbc` (``arrow-odbc``: column-wise ODBC buffers straight into Arrow);
    * anything else: :func:`read_table`.

    The values are the route's own (e.g. ISO text dates on SQLite), so callers pass the frame through
    :func:`salesbi.types.conform`, which gives the frame :func:`read_table` gives (tested per dialect).
    """
    route = read_route(conn.dialect.name, conn.dialect.driver)
    if route == "sqlite-cursor":
        return read_table_bulk(conn, table)
    if route == "postgresql-copy":
        return _arrow_frame(read_arrow_postgres(conn, table))
    if route == "arrow-odbc":
        return _arrow_frame(read_arrow_odbc(conn, table))
    return read_table(conn, table)


def _arrow_frame(arrow: pa.Table) -> pd.DataFrame:
    # dates as datetime64 (not one datetime.date object per value): conform casts them to its dtype
    return arrow.to_pandas(date_as_object=False)


def arrow_type_of(column: sa.Column[Any]) -> pa.DataType:
    """Return the Arrow type a bulk read gives a warehouse column (money and fractions as float64)."""
    type_ = column.type
    if isinstance(type_, sa.Boolean):
        return pa.bool_()
    if isinstance(type_, sa.Integer):
        return pa.int64()
    if isinstance(type_, sa.Numeric):  # Numeric and Float: the frames hold float64
        return pa.float64()
    if isinstance(type_, sa.DateTime):
        return pa.timestamp("us")
    if isinstance(type_, sa.Date):
        return pa.date32()
    return pa.string()


def arrow_schema_of(table: sa.Table) -> pa.Schema:
    """Return the Arrow schema a bulk read of ``table`` yields (see :func:`arrow_type_of`)."""
    return pa.schema([pa.field(c.name, arrow_type_of(c)) for c in table.columns])


def postgres_copy_out_sql(table: sa.Table) -> str:
    """Return the ``COPY ... TO STDOUT`` statement that writes every row of ``table`` as CSV.

    CSV marks NULL as an unquoted empty field and an empty string as ``""``, which is how
    :func:`read_arrow_postgres` tells them apart.
    """
    preparer = postgresql.dialect().identifier_preparer
    cols = ", ".join(preparer.quote(c.name) for c in table.columns)
    return f"COPY {preparer.format_table(table)} ({cols}) TO STDOUT WITH (FORMAT csv)"


class CopyStream(io.RawIOBase):
    """A readable file over the blocks of a psycopg ``COPY … TO STDOUT`` (for Arrow's CSV reader)."""

    def __init__(self, blocks: Iterator[Any]) -> None:
        self._blocks = blocks
        self._rest = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not len(self._rest):
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._rest = memoryview(block)
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


def postgres_csv_convert(column_types: pa.Schema | dict[str, pa.DataType]) -> Any:
    """Return Arrow's ``ConvertOptions`` that read PostgreSQL's ``COPY … (FORMAT csv)`` as the values.

    Only an unquoted empty field is NULL (not pandas' "NA", "null" …: classicmodels has territory
    "NA"); a quoted empty field is an empty string; booleans are ``t``/``f``; each column is typed
    by ``column_types``.
    """
    import pyarrow.csv as pacsv

    return pacsv.ConvertOptions(
        column_types=column_types,
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )


def read_arrow_postgres(conn: sa.Connection, table: sa.Table) -> pa.Table:
    """Return the whole of ``table`` as an Arrow table typed by :func:`arrow_schema_of`.

    PostgreSQL writes the rows with ``COPY ... TO STDOUT (FORMAT csv)`` on the caller's own
    connection (its transaction and snapshot) and Arrow's multi-threaded CSV reader parses them:
    no Python object per value. Measured faster than the ADBC driver and than a psycopg cursor
    (docs/scaling.md).
    """
    import pyarrow.csv as pacsv

    schema = arrow_schema_of(table)
    buffer = io.BytesIO()
    dbapi = conn.connection.driver_connection
    with dbapi.cursor() as cur, cur.copy(postgres_copy_out_sql(table)) as copy:  # type: ignore[union-attr]
        for block in copy:
            buffer.write(block)
    if not buffer.tell():
        return schema.empty_table()
    buffer.seek(0)
    return pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=schema.names),
        convert_options=postgres_csv_convert(schema),
    )


def mssql_read_query(table: sa.Table, dialect: sa.Dialect) -> str:
    """Return the T-SQL SELECT of every column of ``table`` that :func:`read_arrow_odbc` sends.

    DECIMAL columns are cast to FLOAT, so Arrow gets float64 columns instead of one
    ``Decimal`` object per value in pandas.
    """
    columns = [
        sa.cast(c, sa.Float(53)).label(c.name) if arrow_type_of(c) == pa.float64() else c
        for c in table.columns
    ]
    return str(sa.select(*columns).compile(dialect=dialect))


def odbc_connection_string(url: sa.URL, dialect: sa.Dialect) -> str:
    """Return the ODBC connection string the ``mssql+pyodbc`` dialect would open for ``url``."""
    args, _kwargs = dialect.create_connect_args(url)
    return str(args[0])


#: rows per Arrow batch on the ODBC route (the buffers are column-wise, sized by the column widths)
ODBC_BATCH_ROWS = 100_000


def read_arrow_odbc(conn: sa.Connection, table: sa.Table) -> pa.Table:
    """Return the whole of ``table`` on SQL Server as an Arrow table, read with ``arrow-odbc``.

    It opens its own ODBC connection with the connection string of the engine's URL (committed
    data only, as a step run alone reads it) and fills column-wise buffers, 100,000 rows a batch.
    ``arrow-odbc`` is imported only here: it is in the ``sqlserver`` extra, with pyodbc.
    """
    from arrow_odbc import read_arrow_batches_from_odbc

    reader = read_arrow_batches_from_odbc(
        query=mssql_read_query(table, conn.dialect),
        connection_string=odbc_connection_string(conn.engine.url, conn.dialect),
        batch_size=ODBC_BATCH_ROWS,
    )
    return pa.Table.from_batches(list(reader), schema=reader.schema)
