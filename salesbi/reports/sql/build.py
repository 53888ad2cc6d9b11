"""Build the report tables inside the warehouse (``reports_in="warehouse"``) and read them back.

Every report table except the calendar is computed by the database from ``core``: the
statements of :mod:`salesbi.reports.sql.selects` (fact, dimensions, the monthly aggregates) and
:mod:`salesbi.reports.sql.summaries` (summaries with ranks, shares and tiers, the order value
bins); only their results travel, never the order lines unless the caller asks for the fact
(``with_fact``). ``dim_date`` is a calendar of whole years between bounds the database computes
(its size does not depend on the fact). The result is the same dict of frames as
:func:`salesbi.reports.build.build_reports` (tested identical on PostgreSQL and SQLite). Frames rather
than tables materialised in ``rpt``: publishing swaps every ``rpt`` table and the Parquet
files in one transaction.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Select

from salesbi.errors import ConfigurationError, SalesBIError
from salesbi.reports import dims
from salesbi.reports.measures import growth, month_start_of_index, safe_ratio
from salesbi.reports.params import ReportParams
from salesbi.reports.sql import sqlite
from salesbi.reports.sql import summaries as sql_summaries
from salesbi.reports.sql.selects import (
    LEDGER_AGGREGATES,
    SALES_AGGREGATES,
    TABLE_SELECTS,
    monthly_aggregates_select,
)
from salesbi.reports.sql.summaries import SORT_BY, Sources, Windows
from salesbi.reports.tables import CUSTOMER_GROWTH, ORDER_VALUE_DISTRIBUTION, SALES_MONTHLY, TABLES
from salesbi.schema import Table
from salesbi.types import arrow_schema, conform
from salesbi.warehouse.load import postgres_csv_convert

#: dialects whose SQL is rendered (tested on PostgreSQL and SQLite, compile-tested for SQL Server)
DIALECTS: tuple[str, ...] = ("postgresql", "mssql", "sqlite")
#: the analytic tables whose whole ``SELECT`` is rendered in :mod:`salesbi.reports.sql.summaries`
SUMMARY_SELECTS: dict[str, Callable[[sa.MetaData, ReportParams, Windows, Sources], Select[Any]]] = {
    "customer_summary": sql_summaries.customer_summary_select,
    "location_summary": lambda m, _p, w, s: sql_summaries.location_summary_select(m, w, s),
    "product_summary": sql_summaries.product_summary_select,
    "product_line_summary": sql_summaries.product_line_summary_select,
    "employee_performance": sql_summaries.employee_performance_select,
}
#: report tables computed by the database (the monthly tables and the value bins: their
#: aggregates; the few hundred rows are shaped here)
IN_WAREHOUSE: tuple[str, ...] = (
    *TABLE_SELECTS,
    *SUMMARY_SELECTS,
    "sales_monthly",
    "customer_growth",
    "order_value_distribution",
)
#: report tables built in Python: the calendar, between the bounds computed by the database
IN_PYTHON: tuple[str, ...] = ("dim_date",)


@dataclass(frozen=True)
class WarehouseReports:
    """The report frames of a push-down build and where each table was computed."""

    frames: dict[str, pd.DataFrame]
    in_warehouse: tuple[str, ...]
    in_python: tuple[str, ...]
    #: the first and last order and shipped dates of the fact's lines
    bounds: FactBounds | None = None

    def summary(self, fact_in_database: bool = False) -> dict[str, list[str]]:
        """Return ``{"warehouse": [...], "python": [...]}`` for the run summary's outputs.

        ``fact_in_database``: ``fact_order_lines`` was left out of the frames because publishing
        builds it in the database (``salesbi.reports.sql.fact_publish``); it is listed too.
        """
        names = set(self.in_warehouse) | ({"fact_order_lines"} if fact_in_database else set())
        return {"warehouse": [t.name for t in TABLES if t.name in names], "python": list(self.in_python)}


def check_dialect(dialect: str) -> None:
    """Raise ConfigurationError unless the report tables can be built inside a ``dialect`` warehouse
    (PostgreSQL, SQL Server, or SQLite whose library is recent enough: :mod:`salesbi.reports.sql.sqlite`)."""
    if dialect not in DIALECTS:
        raise ConfigurationError(
            f"reports_in='warehouse' needs a PostgreSQL, SQL Server or SQLite warehouse, not {dialect}",
            hint="use reports_in='python' (the default), or point --warehouse at one of those",
        )


def read_select(conn: sa.Connection, select: Select[Any]) -> pd.DataFrame:
    """Return the rows of ``select`` as a frame, fetched through the driver's own cursor.

    The statement is compiled with its (few, constant) parameters inline, so it runs unchanged
    on any driver's parameter style; values are the driver's (callers ``conform`` them).
    """
    sql = str(select.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        names = [d[0] for d in cursor.description]
        rows = [tuple(row) for row in cursor.fetchall()]  # pyodbc hands back its own Row objects
    finally:
        cursor.close()
    return pd.DataFrame.from_records(rows, columns=names, nrows=len(rows))


def read_select_copy(
    conn: sa.Connection, select: Select[Any], table: Table, sort_key: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Return the rows of ``select`` (yielding ``table``'s columns) through PostgreSQL's ``COPY … TO STDOUT``.

    The rows travel as CSV parsed by Arrow with the table's column types: several times faster
    than fetching Python tuples for large results. NULL and the empty string stay apart (COPY
    quotes an empty string, and only an unquoted empty field is read as null). ``sort_key``:
    sort the rows by these columns ascending (text by code point) while still in Arrow. Each
    stage lets go of the one before (CSV bytes, parsed table, sorted table → frame), so the
    peak is about two copies of the result, not four.
    """
    sql = str(select.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    buffer = io.BytesIO()
    dbapi = conn.connection.dbapi_connection
    copy_sql = f"COPY ({sql}) TO STDOUT (FORMAT csv, HEADER true)"
    with dbapi.cursor() as cursor, cursor.copy(copy_sql) as copy:  # type: ignore[union-attr]
        for block in copy:
            buffer.write(block)
    convert = postgres_csv_convert({f.name: f.type for f in arrow_schema(table)})
    view = buffer.getbuffer()  # the CSV bytes without a copy
    parsed = pacsv.read_csv(
        pa.BufferReader(pa.py_buffer(view)),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=convert,
    )
    del view, buffer
    if sort_key and parsed.num_rows > 1:
        order = pc.sort_indices(parsed, sort_keys=[(k, "ascending") for k in sort_key])
        parsed = parsed.take(order)
    mapping = {pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype(), pa.bool_(): pd.BooleanDtype()}
    return parsed.to_pandas(
        types_mapper=mapping.get, date_as_object=False, split_blocks=True, self_destruct=True
    )


def read_report_table(conn: sa.Connection, select: Select[Any], table: Table) -> pd.DataFrame:
    """Return ``table`` computed by ``select``, typed (``conform``) and sorted by its key."""
    if conn.dialect.name == "postgresql":
        return conform(read_select_copy(conn, select, table, table.key), table)
    return sort_by_key(conform(read_select(conn, select), table), table.key)


def sort_by_key(frame: pd.DataFrame, key: tuple[str, ...]) -> pd.DataFrame:
    """Return ``frame`` sorted by ``key`` ascending (text by code point, as the pandas builders sort)."""
    if len(frame) < 2:
        return frame.reset_index(drop=True)
    table = pa.table({k: pa.array(frame[k], from_pandas=True) for k in key})
    order = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in key]).to_numpy()
    return frame.iloc[order].reset_index(drop=True)


def _table(name: str) -> Table:
    for t in TABLES:
        if t.name == name:
            return t
    raise KeyError(name)


def shape_sales_monthly(aggregates: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Return ``rpt.sales_monthly`` from the ``sales`` rows of ``monthly_aggregates_select``.

    Same arithmetic as :func:`salesbi.reports.monthly.build_sales_monthly` on at most a few
    hundred rows: the month range, rounding, ratios, growth and the year-to-date sums.
    """
    if not len(aggregates):
        return conform(pd.DataFrame(columns=SALES_MONTHLY.column_names), SALES_MONTHLY)
    agg = aggregates.astype({"month": "int64"}).set_index("month")
    months = np.arange(int(agg.index.min()), int(agg.index.max()) + 1, dtype="int64")

    def per_month(values: pd.Series, fill: float) -> pd.Series:
        return f["_m"].map(pd.to_numeric(values.astype("object"), errors="coerce")).fillna(fill)

    f = pd.DataFrame({"_m": months})
    f["month"] = month_start_of_index(months)
    f["year_month"] = [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in months]
    f["year"] = months // 12
    f["month_number"] = months % 12 + 1
    f["orders_placed"] = per_month(agg["orders_placed"], 0).astype("int64")
    f["orders_cancelled"] = per_month(agg["orders_cancelled"], 0).astype("int64")
    f["orders"] = f["orders_placed"] - f["orders_cancelled"]
    f["units"] = per_month(agg["units"], 0)
    f["net_sales"] = per_month(agg["net_sales"], 0.0).astype("float64").round(2)
    profit = per_month(agg["profit"], 0.0).astype("float64").round(2)
    unknown = per_month(agg["unknown"], 0)
    f["gross_profit"] = profit.where(unknown == 0)
    f["margin"] = safe_ratio(f["gross_profit"], f["net_sales"])
    f["avg_order_value"] = safe_ratio(f["net_sales"], f["orders"]).round(2)
    f["active_customers"] = per_month(agg["active_customers"], 0).astype("int64")
    f["new_customers"] = per_month(agg["new_customers"], 0).astype("int64")
    f["existing_customers"] = f["active_customers"] - f["new_customers"]
    by_month = pd.Series(f["net_sales"].to_numpy(), index=months)
    f["mom_growth"] = growth(f["net_sales"], f["_m"].map(by_month.rename(lambda k: k + 1)))
    f["yoy_growth"] = growth(f["net_sales"], f["_m"].map(by_month.rename(lambda k: k + 12)))
    f["sales_ytd"] = f.groupby("year")["net_sales"].cumsum().round(2)
    f["is_complete"] = np.asarray(month_start_of_index(months + 1) <= as_of)
    return conform(f, SALES_MONTHLY)


def shape_customer_growth(
    ledger: pd.DataFrame, months: np.ndarray, churn_months: int, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Return ``rpt.customer_growth`` from the ``ledger`` rows of ``monthly_aggregates_select``.

    ``months``: the month indices from the first to the last order month (as in
    :func:`salesbi.reports.monthly.build_customer_growth`, whose arithmetic this repeats).
    """
    counts = ledger.astype("int64").groupby("month").sum()
    f = pd.DataFrame({"_m": months})
    f["month"] = month_start_of_index(months)
    f["year_month"] = [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in months]
    for col in ("new", "retained", "regained", "churned"):
        f[col] = f["_m"].map(counts[col]).fillna(0).astype("int64")
    f["active"] = f["new"] + f["retained"] + f["regained"]
    f["customers_in_window"] = (f["new"] + f["regained"] - f["churned"]).cumsum()
    f["quick_ratio"] = safe_ratio(f["new"] + f["regained"], f["churned"])
    f["churn_months"] = churn_months
    f["is_complete"] = np.asarray(month_start_of_index(months + 1) <= as_of)
    return conform(f, CUSTOMER_GROWTH)


def read_summary(conn: sa.Connection, select: Select[Any], table: Table) -> pd.DataFrame:
    """Return the analytic ``table`` computed by ``select``, typed and sorted as its pandas builder sorts."""
    if conn.dialect.name == "postgresql":
        frame = read_select_copy(conn, select, table)
    else:
        frame = read_select(conn, select)
    frame = frame.sort_values(list(SORT_BY[table.name]), kind="stable").reset_index(drop=True)
    return conform(frame, table)


@dataclass(frozen=True)
class FactBounds:
    """The first and last order and shipped dates of the fact's lines (None without lines)."""

    first_order: date | None
    last_order: date | None
    first_shipped: date | None
    last_shipped: date | None

    def as_of(self, params: ReportParams) -> date:
        """Return the report date: ``params.as_of``, else the day after the last order.

        Raises SalesBIError when there are no order lines (as ``context.default_as_of``).
        """
        if self.last_order is None:
            raise SalesBIError(
                "there are no order lines to report on",
                hint="load orders and order items first, or pass an explicit as_of date",
            )
        return params.as_of or self.last_order + timedelta(days=1)

    def calendar(self, as_of: date) -> tuple[date, date]:
        """Return the calendar's first and last day (``salesbi.reports.build._calendar_bounds``)."""
        days = [as_of - timedelta(days=1)]
        days += [d for d in (self.first_order, self.last_order, self.first_shipped, self.last_shipped) if d]
        return min(days), max(days)


def _day(value: Any) -> date | None:
    """Return a driver's date value as a ``date`` (None stays None)."""
    return None if value is None else pd.Timestamp(value).date()


def read_bounds(conn: sa.Connection, metadata: sa.MetaData, lines: sa.FromClause | None = None) -> FactBounds:
    """Return the :class:`FactBounds` of the warehouse's fact, computed by the database.

    ``lines``: of the run's build table of the fact's lines (else from core).
    """
    row = conn.execute(sql_summaries.fact_bounds_select(metadata, lines)).one()
    return FactBounds(*(_day(v) for v in row))


def read_value_distribution(
    conn: sa.Connection, metadata: sa.MetaData, windows: Windows, sources: Sources | None = None
) -> pd.DataFrame:
    """Return ``rpt.order_value_distribution``: two statements (the percentile, then the bins)."""
    stats_select = sql_summaries.order_value_stats_select(metadata, windows, sources)
    stats = read_select(conn, stats_select).iloc[0].to_dict()
    edges = sql_summaries.value_bins(stats)
    if edges is None:
        return conform(pd.DataFrame(columns=ORDER_VALUE_DISTRIBUTION.column_names), ORDER_VALUE_DISTRIBUTION)
    start, step, count, top_open = edges
    last = count if top_open else count - 1
    rows = read_select(
        conn, sql_summaries.order_value_bins_select(metadata, windows, start, step, last, sources)
    )
    return sql_summaries.bins_frame(
        list(rows.itertuples(index=False, name=None)), edges, float(stats["total"])
    )


def build_reports_in_warehouse(
    engine: Engine,
    metadata: sa.MetaData,
    params: ReportParams | None = None,
    *,
    with_fact: bool = True,
    fact: sa.Table | None = None,
) -> WarehouseReports:
    """Return every report table except ``insights``, computed inside the warehouse.

    The frames equal :func:`salesbi.reports.build.build_reports` on the warehouse's ``core``
    (columns, dtypes, row order; floats to rounding). ``with_fact``: also read
    ``fact_order_lines`` back (the one table as large as the order lines; publishing needs it),
    else it is left out of the frames. ``fact``: the run's build table of the fact's lines
    (:mod:`salesbi.reports.sql.fact_build`), which every statement reads instead of computing
    the lines from core again. Raises ConfigurationError on a dialect other than
    PostgreSQL, SQL Server or SQLite (or on an SQLite too old), SalesBIError when core has no
    order lines.
    """
    check_dialect(engine.dialect.name)
    params = params or ReportParams()
    pushed: dict[str, pd.DataFrame] = {}
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":  # every statement reads the same snapshot of core
            conn.execution_options(isolation_level="REPEATABLE READ")
        if conn.dialect.name == "sqlite":  # before the first statement (temp_store): sorts spill to files
            sqlite.check_connection(conn)
            sqlite.bounded(conn)
        bounds = read_bounds(conn, metadata, fact)
        as_of = bounds.as_of(params)
        windows = Windows.of(as_of, bounds.first_order)
        for name, build in TABLE_SELECTS.items():
            if name != "fact_order_lines":
                pushed[name] = read_report_table(conn, build(metadata), _table(name))
        # the fact's lines (the build table, else a temporary table) and its orders computed once
        sources = sql_summaries.materialised_sources(conn, metadata, fact)
        if with_fact:
            fact_select = sa.select(sources.lines)
            pushed["fact_order_lines"] = read_report_table(conn, fact_select, _table("fact_order_lines"))
        for name, summary in SUMMARY_SELECTS.items():
            pushed[name] = read_summary(conn, summary(metadata, params, windows, sources), _table(name))
        pushed["order_value_distribution"] = read_value_distribution(conn, metadata, windows, sources)
        monthly = monthly_aggregates_select(metadata, params.churn_months, sources.orders)
        monthly_rows = read_select(conn, monthly)
    as_of_ts = pd.Timestamp(as_of)
    month_aggregates = monthly_rows.loc[monthly_rows["kind"] == "sales", ["month", *SALES_AGGREGATES]]
    ledger = monthly_rows.loc[monthly_rows["kind"] == "ledger", ["month", *LEDGER_AGGREGATES]]
    pushed["sales_monthly"] = shape_sales_monthly(month_aggregates, as_of_ts)
    months = pushed["sales_monthly"]["month"]
    first_month = months.dt.year * 12 + months.dt.month - 1
    pushed["customer_growth"] = shape_customer_growth(
        ledger, first_month.to_numpy(dtype="int64"), params.churn_months, as_of_ts
    )
    first, last = bounds.calendar(as_of)
    built = {"dim_date": dims.build_dim_date(first, last, params.fiscal_year_start_month)}
    order = [t.name for t in TABLES if t.name in pushed or t.name in built]
    frames = {name: pushed[name] if name in pushed else built[name] for name in order}
    return WarehouseReports(
        frames=frames,
        in_warehouse=tuple(n for n in order if n in pushed),
        in_python=tuple(n for n in order if n in built),
        bounds=bounds,
    )
