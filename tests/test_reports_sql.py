"""Report tables built inside the warehouse (``reports_in="warehouse"``) equal the pandas build.

On PostgreSQL: the generator's sample company and classicmodels are ingested, then
``build_reports`` over the core frames read back and ``build_reports_in_warehouse`` must give
the same frames (columns, dtypes, row order; floats within 1e-9 relative). Every statement
also compiles for SQL Server with its parameters inline and parses as T-SQL with sqlglot.
"""

from __future__ import annotations

import io
import json
import math
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import sqlglot
from pydantic import ValidationError
from rich.console import Console
from typer.testing import CliRunner

from salesbi import cli, contract
from salesbi.errors import ConfigurationError, SalesBIError
from salesbi.ingest import prepare_warehouse
from salesbi.params import PipelineParams
from salesbi.pipeline import run_pipeline
from salesbi.reports.build import ReportParams, build_reports
from salesbi.reports.fact import FACT_ORDER_LINES
from salesbi.reports.monthly import bin_index
from salesbi.reports.sql import sqlite as sqlite_support
from salesbi.reports.sql import summaries
from salesbi.reports.sql.build import (
    IN_PYTHON,
    IN_WAREHOUSE,
    FactBounds,
    build_reports_in_warehouse,
    check_dialect,
    read_report_table,
)
from salesbi.reports.sql.expr import ceiling_of, days_between, floor_of, rint, round_half_even
from salesbi.reports.sql.fact_build import create_fact_build, drop_fact_build
from salesbi.reports.sql.fact_publish import export_parquet, fact_table, insert_fact
from salesbi.reports.sql.render import dialect_named, render
from salesbi.reports.sql.render import main as render_main
from salesbi.reports.sql.selects import fact_order_lines_select, order_sums_select
from salesbi.reports.sql.summaries import (
    TOP_QUANTILE,
    bins_frame,
    linear_quantile,
    materialise_statements,
    temporary_table,
    value_bins,
)
from salesbi.reports.tables import TABLES
from salesbi.schema import Column, Table
from salesbi.types import conform
from salesbi.warehouse.ddl import warehouse_metadata
from salesbi.warehouse.engine import create_engine
from salesbi.warehouse.load import bulk_insert, read_table

#: the tables computed by the database, and in Python (the calendar), in report order
IN_WAREHOUSE_ORDER = (
    "dim_geography",
    "dim_office",
    "dim_employee",
    "dim_product_line",
    "dim_product",
    "dim_customer",
    "fact_order_lines",
    "customer_summary",
    "location_summary",
    "product_summary",
    "product_line_summary",
    "employee_performance",
    "sales_monthly",
    "customer_growth",
    "order_value_distribution",
)
IN_PY_ORDER = ["dim_date"]


def _ingest(source: Path, profile: str, url: str, out: Path) -> None:
    run_pipeline(
        PipelineParams(source=source, profile=profile, warehouse_url=url, out_dir=out, steps=("ingest",))
    )


def _core(engine: sa.Engine, metadata: sa.MetaData) -> dict[str, pd.DataFrame]:
    with engine.connect() as conn:
        return {
            spec.name: conform(read_table(conn, metadata.tables[f"core.{spec.name}"]), spec)
            for spec in contract.TABLES
        }


def _assert_same(expected: dict[str, pd.DataFrame], got: dict[str, pd.DataFrame]) -> None:
    assert list(got) == list(expected)
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(got[name], frame, check_exact=False, rtol=1e-9, atol=0, obj=name)


def _compare(url: str, params: ReportParams) -> dict[str, pd.DataFrame]:
    engine = create_engine(url)
    metadata = warehouse_metadata()
    try:
        core = _core(engine, metadata)
        expected = build_reports(core, params)
        result = build_reports_in_warehouse(engine, metadata, params)
        _assert_same(expected, result.frames)
        # without the fact: the same frames, the fact left out
        no_fact = build_reports_in_warehouse(engine, metadata, params, with_fact=False).frames
        assert "fact_order_lines" not in no_fact
        _assert_same({k: v for k, v in expected.items() if k != "fact_order_lines"}, no_fact)
        # from the run's build table of the fact's lines (salesbi.reports.sql.fact_build): the same
        build = create_fact_build(engine, metadata, "test-compare")
        try:
            assert build.rows == len(expected["fact_order_lines"])
            from_build = build_reports_in_warehouse(engine, metadata, params, fact=build.table)
            _assert_same(expected, from_build.frames)
        finally:
            drop_fact_build(engine, "test-compare")
    finally:
        engine.dispose()
    assert result.in_warehouse == IN_WAREHOUSE_ORDER
    assert list(result.in_python) == IN_PY_ORDER
    return expected


@pytest.mark.integration
@pytest.mark.slow
def test_push_down_equals_pandas_on_the_generated_company(
    sample_company: Path, warehouse: str, tmp_path: Path
) -> None:
    pg_warehouse = warehouse  # SQLite and PostgreSQL
    _ingest(sample_company, "canonical", pg_warehouse, tmp_path / "out")
    expected = _compare(pg_warehouse, ReportParams(churn_months=3, fiscal_year_start_month=4))
    assert len(expected["fact_order_lines"]) == 20_000 or len(expected["fact_order_lines"]) > 15_000
    # an as-of date inside the history cuts the months differently
    last = expected["fact_order_lines"]["order_date"].max()
    _compare(pg_warehouse, ReportParams(as_of=(last - pd.Timedelta(days=40)).date()))
    # through the pipeline's reports stage: published, and the summary says where each table was built
    out = tmp_path / "report"
    run_pipeline(
        PipelineParams(warehouse_url=pg_warehouse, out_dir=out, steps=("reports",), reports_in="warehouse")
    )
    doc = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
    assert doc["status"] == "succeeded"
    assert "read_core" not in doc["timings"] and "reports" in doc["timings"]  # core is not read back
    assert doc["outputs"]["reports_built_in"] == {
        "warehouse": list(IN_WAREHOUSE_ORDER),
        "python": IN_PY_ORDER,
    }
    engine = create_engine(pg_warehouse)
    try:
        with engine.connect() as conn:
            published = conn.exec_driver_sql("SELECT COUNT(*) FROM rpt.fact_order_lines").scalar_one()
    finally:
        engine.dispose()
    assert published == len(expected["fact_order_lines"])


@pytest.mark.integration
@pytest.mark.realdata
@pytest.mark.slow
def test_push_down_equals_pandas_on_classicmodels(
    classicmodels_dir: Path, warehouse: str, tmp_path: Path
) -> None:
    _ingest(classicmodels_dir, "classicmodels", warehouse, tmp_path / "out")
    expected = _compare(warehouse, ReportParams())
    assert len(expected["fact_order_lines"]) == 2996
    monthly = expected["sales_monthly"]
    # cross-check: the monthly table's sales add up to the fact's net sales
    assert monthly["net_sales"].sum() == pytest.approx(expected["fact_order_lines"]["net_sales"].sum())


def test_every_statement_compiles_for_sql_server_and_parses_as_tsql() -> None:
    statements = render("mssql", churn_months=3, as_of=date(2024, 5, 31))
    shaped_here = ("sales_monthly", "customer_growth", "order_value_distribution")
    steps = {"monthly.aggregates", "fact.bounds", "order_value.stats", "order_value.bins"}
    assert set(statements) == {n for n in IN_WAREHOUSE_ORDER if n not in shaped_here} | steps
    for name, sql in statements.items():
        assert "%(" not in sql and "?" not in sql, name
        parsed = sqlglot.parse_one(sql, read="tsql")
        assert parsed is not None, name
        assert not re.search(r"\bLIMIT\s+\d", sql, re.IGNORECASE) and " || " not in sql, name
        assert "COLLATE Latin1_General_100_BIN2" in sql or name != "dim_geography"
    assert "> 3" in statements["monthly.aggregates"]
    # the summaries: windows as dates, day counts with DATEDIFF, ranks with code-point ties,
    # shares as running sums, doubles (not NUMERIC) where Python computes in floating point
    customers = statements["customer_summary"]
    assert "CAST(N'2023-05-31' AS DATE)" in customers and "CAST(N'2024-05-31' AS DATE)" in customers
    assert "DATEDIFF(day, " in customers and "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW" in customers
    assert "COLLATE Latin1_General_100_BIN2 DESC" not in customers and "ORDER BY " in customers
    assert "ceiling(CAST(0.2 AS FLOAT(53))" in statements["employee_performance"]
    assert "PARTITION BY " in statements["location_summary"]
    assert "0.99 AS FLOAT(53)" in statements["order_value.stats"]
    # the fact's lines and orders, computed once as temporary tables, on SQL Server
    mssql = dialect_named("mssql")
    fact = fact_order_lines_select(warehouse_metadata())
    lines = temporary_table(mssql, fact, "report_fact")
    for name, select in (
        ("report_fact", fact),
        ("report_order_sums", order_sums_select(lines)),
    ):
        _, create, insert = materialise_statements(mssql, select, name)
        ddl = str(create.compile(dialect=mssql))
        sql = str(insert.compile(dialect=mssql, compile_kwargs={"literal_binds": True}))
        assert ddl.strip().startswith(f"CREATE TABLE [#{name}] (") and "%(" not in sql
        assert f"INSERT INTO [#{name}] (" in sql and (name != "report_fact" or sql.startswith("WITH "))
        for statement in (ddl, sql):
            assert sqlglot.parse_one(statement, read="tsql") is not None


def test_the_statements_print_for_a_dba(capsys: pytest.CaptureFixture[str]) -> None:
    render_main(["postgresql", "--as-of", "2024-05-31"])
    out = capsys.readouterr().out
    assert out.count("-- ") == len(render("postgresql")) and 'COLLATE "C"' in out and "round(" in out
    assert "-- customer_summary\n" in out and "'2024-05-31'" in out


@pytest.mark.integration
@pytest.mark.postgres
def test_rounding_is_numpys_half_to_even_in_binary_floating_point(pg_url: str) -> None:
    values = [0.125, 0.375, 2.675, -0.125, -0.375, 1.005, 100.005, 12345.6789, -2.5e-3, 0.0, 0.015, -7.5]
    expected = [float(pd.Series([v]).round(2).iloc[0]) for v in values]
    # the cases that tell the roundings apart: ties go to even (0.125), and 100.005 × 100 is
    # exactly 10000.5 in binary (numeric ROUND would give 100.01), 2.675 × 100 is 267.5
    assert [expected[values.index(v)] for v in (0.125, 100.005, 2.675)] == [0.12, 100.0, 2.68]
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            for v, want in zip(values, expected, strict=True):
                # PostgreSQL's own rendering: round(double precision)
                got = conn.execute(sa.select(round_half_even(sa.literal(v), 2))).scalar_one()
                assert got == want, v
                # SQL Server's rendering (FLOOR and a tie test) is plain SQL: evaluated here too
                tsql = str(
                    sa.select(round_half_even(sa.literal(v), 2)).compile(
                        dialect=dialect_named("mssql"), compile_kwargs={"literal_binds": True}
                    )
                )
                assert "FLOOR" in tsql
                assert conn.exec_driver_sql(tsql).scalar_one() == want, (v, tsql)
    finally:
        engine.dispose()


def test_the_split_names_every_report_table_once() -> None:
    assert set(IN_WAREHOUSE) == set(IN_WAREHOUSE_ORDER)
    assert list(IN_PYTHON) == IN_PY_ORDER
    assert sorted([*IN_WAREHOUSE_ORDER, *IN_PY_ORDER]) == sorted(
        t.name for t in TABLES if t.name != "insights"
    )


def test_sqlite_is_accepted_and_an_sqlite_without_window_functions_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for dialect in ("postgresql", "mssql", "sqlite"):
        check_dialect(dialect)
    with pytest.raises(ConfigurationError, match="PostgreSQL, SQL Server or SQLite"):
        check_dialect("oracle")
    assert PipelineParams(warehouse_url="sqlite:///x.db", reports_in="warehouse").reports_in == "warehouse"
    assert PipelineParams(warehouse_url="sqlite:///x.db").reports_in == "python"
    monkeypatch.delenv("SALESBI_WAREHOUSE_URL", raising=False)
    assert PipelineParams(reports_in="warehouse").reports_in == "warehouse"  # the default warehouse
    assert (
        sqlite_support.version_problem("3.40.1") is None and sqlite_support.version_problem("3.25.0") is None
    )
    assert "older than 3.25.0" in (sqlite_support.version_problem("3.24.9") or "")
    # a Python linking an SQLite without window functions: refused before anything is touched
    monkeypatch.setattr(sqlite_support.sqlite3, "sqlite_version", "3.22.0")
    with pytest.raises(ValidationError, match=r"SQLite 3\.22\.0 is older than 3\.25\.0"):
        PipelineParams(warehouse_url="sqlite:///x.db", reports_in="warehouse")
    assert PipelineParams(warehouse_url="postgresql+psycopg://u:p@db/wh", reports_in="warehouse")
    url = f"sqlite:///{tmp_path / 'w.db'}"
    result = CliRunner().invoke(cli.app, ["report", "--warehouse", url, "--reports-in", "warehouse"])
    assert result.exit_code == 2
    assert "older than 3.25.0" in " ".join(result.output.split())
    assert not (tmp_path / "w.db").exists()
    assert CliRunner().invoke(cli.app, ["report", "--reports-in", "duckdb"]).exit_code == 2


def test_sqlite_rounds_as_numpy_and_floors_without_python_callbacks(tmp_path: Path) -> None:
    values = [
        0.125,
        0.375,
        2.675,
        -0.125,
        -0.375,
        1.005,
        100.005,
        12345.6789,
        -2.5e-3,
        0.0,
        0.015,
        -7.5,
        2.5,
        -3.5,
    ]
    expected = [float(pd.Series([v]).round(2).iloc[0]) for v in values]
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        with engine.connect() as conn:
            for v, want in zip(values, expected, strict=True):
                assert conn.execute(sa.select(round_half_even(sa.literal(v), 2))).scalar_one() == want, v
                assert conn.execute(sa.select(rint(sa.literal(v)))).scalar_one() == float(np.rint(v)), v
                assert conn.execute(sa.select(floor_of(sa.literal(v)))).scalar_one() == math.floor(v), v
                assert conn.execute(sa.select(ceiling_of(sa.literal(v)))).scalar_one() == math.ceil(v), v
            # NULL stays NULL (SQLAlchemy's driver-level floor(), math.floor, fails on it)
            nothing = sa.cast(sa.null(), sa.Float())
            for fn in (rint, floor_of, ceiling_of):
                assert conn.execute(sa.select(fn(nothing))).scalar_one() is None
            # dates: ISO text constants, day differences by julianday
            day = summaries.date_literal(date(2024, 3, 1))
            assert conn.execute(sa.select(day)).scalar_one() == date(2024, 3, 1)
            assert (
                conn.execute(
                    sa.select(days_between(summaries.date_literal(date(2024, 2, 1)), day))
                ).scalar_one()
                == 29
            )
    finally:
        engine.dispose()
    sql = str(sa.select(rint(sa.literal(1.5))).compile(dialect=dialect_named("sqlite")))
    assert "floor" not in sql.lower() and "round(" in sql


@pytest.mark.integration
@pytest.mark.postgres
def test_the_copy_read_keeps_nulls_empty_text_and_awkward_values_apart(pg_url: str) -> None:
    table = Table(
        name="awkward",
        schema="rpt",
        key=("id",),
        columns=(Column("id", "id", required=True), Column("text", "text"), Column("flag", "bool")),
    )
    texts = ["", None, "NA", "null", 'say "hi", then\nleave', "Zürich ü", " padded "]
    rows = [
        sa.select(
            sa.literal(f"r{i}").label("id"),
            sa.cast(sa.literal(t), sa.Unicode()).label("text"),
            sa.literal(i % 2 == 0).label("flag"),
        )
        for i, t in enumerate(texts)
    ]
    union = sa.union_all(*rows).subquery("u")
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            got = read_report_table(conn, sa.select(union), table)
    finally:
        engine.dispose()
    assert got["id"].tolist() == [f"r{i}" for i in range(len(texts))]
    assert [None if pd.isna(v) else v for v in got["text"]] == texts
    assert got["flag"].tolist() == [i % 2 == 0 for i in range(len(texts))]


def _edge_core() -> dict[str, pd.DataFrame]:
    """Core frames made of the cases where SQL and pandas could part: rounding ties, returns,
    unknown costs, collation-sensitive ties, credited employees without an order's own employee."""
    n = None
    frames = {
        "offices": pd.DataFrame(
            {
                "office_id": ["O1", "O2"],
                "city": ["Paris", "Tokyo"],
                "state": [n, n],
                "country": ["France", "Japan"],
                "territory": ["NA", ""],
                "postal_code": ["75001", n],
            }
        ),
        "employees": pd.DataFrame(
            {
                "employee_id": ["E1", "E2", "E3"],
                "first_name": ["Ann", "Bob", "Cy"],
                "last_name": ["Lee", "Moe", ""],
                "job_title": ["VP", "Rep", "Rep"],
                "office_id": ["O1", "O1", "O2"],
                "manager_id": [n, "E1", "E1"],
                "email": [n, n, n],
                "hire_date": ["2020-01-01", n, "2021-05-05"],
            }
        ),
        "customers": pd.DataFrame(
            {
                "customer_id": ["C1", "C2", "C3", "C4", "C5", "c0"],
                "customer_name": ["One", "Two", "Three", "Four", "Five", "Zero"],
                "contact_name": [n] * 6,
                # Bern: one customer in state 'b', one in 'C' — by code point 'C' < 'b'
                "city": ["Bern", "Bern", "Lyon", "Lyon", "Zürich", "Lyon"],
                "state": ["b", "C", "ARA", "ARA", n, n],
                "country": ["Switzerland", "Switzerland", "France", "France", "Switzerland", "France"],
                "postal_code": [n] * 6,
                "sales_rep_id": ["E2", "E3", n, "E2", "E3", "E2"],
                "credit_limit": [1000.0, n, 0.0, 12.5, n, 1.0],
            }
        ),
        "product_lines": pd.DataFrame(
            {"product_line_id": ["L1", "L2"], "name": ["Cars", "Empty"], "description": ["x", n]}
        ),
        "products": pd.DataFrame(
            {
                "product_id": ["P1", "P2", "P3"],
                "product_name": ["Car", "Part", "Free"],
                "product_line_id": ["L1", "L1", "L1"],
                "vendor": [n, "V", n],
                "unit_cost": [1.23, n, 0.01],
                "list_price": [3.35, 2.0, 0.0],
                "quantity_in_stock": [5, n, 0],
            }
        ),
        "orders": pd.DataFrame(
            {
                # non-ASCII ids: code-point order ('a0' < 'É1' < 'Ａ' U+FF21 < '😀' U+1F600) is
                # UTF-8 byte order (SQLite's BINARY collation), not UTF-16 order (😀 before Ａ)
                "order_id": ["A1", "A2", "A3", "A4", "A5", "A6", "a0", "É1", "\uff21", "\U0001f600"],
                "customer_id": ["C1", "C2", "C3", "C1", "C4", "C5", "c0", "C1", "C2", "C4"],
                # A3: no employee and a customer without a rep; A5: four months after A4
                "employee_id": [n, "E1", n, n, "E3", n, n, "E2", n, "E3"],
                "order_date": [
                    "2023-01-15",
                    "2023-01-20",
                    "2023-02-01",
                    "2023-02-10",
                    "2023-06-30",
                    "2023-07-01",
                    "2023-03-03",
                    "2023-05-05",
                    "2023-05-06",
                    "2023-05-07",
                ],
                "required_date": [n] * 10,
                "shipped_date": [n, "2023-01-22", n, n, "2023-07-02", n, n, n, n, n],
                "status": [
                    *("shipped", "cancelled", "cancelled", "shipped", "shipped", "cancelled", "shipped"),
                    *("shipped",) * 3,
                ],
                "ship_city": [n] * 10,
                "ship_country": [n] * 10,
            }
        ),
        "order_items": pd.DataFrame(
            {
                "order_id": [
                    *("A1", "A1", "A2", "A3", "A3", "A4", "A5", "A6", "A6", "a0"),
                    *("É1", "\uff21", "\uff21", "\U0001f600"),
                ],
                "line_number": [1, 2, 1, 1, 2, 1, 1, 1, 2, 1, 1, 2, 10, 1],
                "product_id": [
                    "P1",
                    "P3",
                    "P1",
                    "P1",
                    "P1",
                    "P2",
                    "P3",
                    "P1",
                    "P1",
                    "P1",
                    "P1",
                    "P1",
                    "P3",
                    "P1",
                ],
                # A3 starts with a return (negative quantity on a cancelled order): not a cancelled order
                "quantity": [3, 1, 2, -1, 4, 7, 1, 2, -2, 1, 1, 2, 3, 4],
                # 0.01 × 0.5 = 0.005 and 0.03 × 0.5 = 0.015: ties that NUMERIC ROUND would round up
                "unit_price": [33.35, 0.01, 3.35, 3.35, 3.35, 2.0, 0.03, 1.0, 1.0, 0.07, 1.0, 2.0, 3.0, 4.0],
                "discount": [0.05, 0.5, 0.0, n, 0.125, 0.1, 0.5, 0.0, 0.0, 0.5, n, n, n, n],
            }
        ),
    }
    return {spec.name: conform(frames[spec.name], spec) for spec in contract.TABLES}


def _edge_warehouse(url: str) -> None:
    """Fill a fresh warehouse's core with :func:`_edge_core`."""
    engine = create_engine(url)
    try:
        metadata = prepare_warehouse(engine)
        with engine.begin() as conn:
            for name, frame in _edge_core().items():
                bulk_insert(conn, metadata.tables[f"core.{name}"], frame)
    finally:
        engine.dispose()


@pytest.mark.integration
def test_push_down_equals_pandas_on_the_edge_cases(warehouse: str, tmp_path: Path) -> None:
    pg_warehouse = warehouse  # SQLite and PostgreSQL
    _edge_warehouse(pg_warehouse)
    expected = _compare(pg_warehouse, ReportParams(churn_months=1, as_of=date(2023, 7, 15)))
    fact = expected["fact_order_lines"].set_index(["order_id", "line_number"])
    assert fact.loc[("A1", 2), "revenue"] == 0.0  # 0.005 rounds to even, as numpy does
    assert fact.loc[("A5", 1), "revenue"] == 0.02  # 0.015 × 100 is 1.5 in binary: to even, 2
    assert bool(fact.loc[("A3", 1), "is_cancelled"]) is False and fact.loc[("A3", 1), "net_sales"] < 0
    assert pd.isna(fact.loc[("A4", 1), "net_profit"])  # a product without cost
    assert pd.isna(fact.loc[("A3", 1), "employee_id"])  # no employee on the order, no rep
    geography = expected["dim_geography"].set_index("geography_key")
    assert geography.loc["Switzerland|Bern", "state"] == "C"  # the tie goes to the lower code point
    assert expected["fact_order_lines"]["order_id"].tolist()[0] == "A1"  # 'A…' before 'a0'
    # the fact's rows in pandas' (code-point) order: in the table the database fills and in the
    # Parquet file written from it (ORDER BY order_id, line_number: BINARY / "C" / BIN2 collation)
    fact_lines = expected["fact_order_lines"]
    keys = list(zip(fact_lines["order_id"], fact_lines["line_number"], strict=True))
    assert keys == sorted(keys)  # Python compares str by code point
    assert [k for k in keys if k[0] > "a0"] == [("É1", 1), ("\uff21", 2), ("\uff21", 10), ("\U0001f600", 1)]
    engine = create_engine(pg_warehouse)
    path = tmp_path / "fact.parquet"
    try:
        with engine.begin() as conn:
            table = fact_table(warehouse_metadata())
            table.create(conn, checkfirst=True)
            conn.execute(table.delete())
            insert_fact(conn, warehouse_metadata())
            export_parquet(conn, table, FACT_ORDER_LINES, path, batch_rows=3)
    finally:
        engine.dispose()
    exported = pq.read_table(path)
    assert (
        list(
            zip(
                exported.column("order_id").to_pylist(),
                exported.column("line_number").to_pylist(),
                strict=True,
            )
        )
        == keys
    )


def test_the_cli_says_where_the_report_tables_were_built(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=200))
    built = {"warehouse": list(IN_WAREHOUSE_ORDER), "python": IN_PY_ORDER}
    cli._print_outputs(
        {"run_id": "r", "status": "succeeded", "tables": {}, "outputs": {"reports_built_in": built}}
    )
    assert "reports_built_in     15 tables in the warehouse, 1 in Python" in out.getvalue()


def _ties_core() -> dict[str, pd.DataFrame]:
    """Core frames of ties and gaps: equal sales at a tier boundary ('C10' and 'C9', 30 each, ranked
    by code point), a customer exactly at the Gold/Silver boundary (80 % of sales above it), a
    customer without orders, a month without orders (February), NULL territories and states,
    a product line without products, a product without cost, two reps tied on sales."""
    n = None
    orders = [
        # order, customer, employee, date, status, product, quantity, price
        ("O01", "C10", "E1", "2023-01-10", "shipped", "P1", 3, 10.0),
        ("O02", "c1", "E3", "2023-01-20", "shipped", "P1", 2, 10.0),
        ("O03", "C9", "E2", "2023-03-05", "shipped", "P1", 1, 30.0),
        ("O04", "C3", n, "2023-03-09", "cancelled", "P1", 4, 10.0),
        ("O05", "C2", "E3", "2023-04-02", "shipped", "P2", 1, 15.0),
        ("O06", "C3", n, "2023-04-03", "shipped", "P1", 1, 5.0),
    ]
    frames = {
        "offices": pd.DataFrame(
            {
                "office_id": ["F1", "F2"],
                "city": ["Paris", "Oslo"],
                "country": ["France", "Norway"],
                "territory": [n, "EMEA"],
            }
        ),
        "employees": pd.DataFrame(
            {
                "employee_id": ["E1", "E2", "E3", "E4"],
                "first_name": ["Ann", "Bob", "Cy", "Di"],
                "last_name": ["Lee", "Moe", "Ng", "Ok"],
                "office_id": ["F1", "F1", "F2", "F2"],
            }
        ),
        "customers": pd.DataFrame(
            {
                "customer_id": ["C10", "C9", "c1", "C2", "C3", "C4"],
                "customer_name": ["Ten", "Nine", "One", "Two", "Three", "Four"],
                "city": ["Paris", "Paris", "Oslo", "Oslo", "Lyon", "Bergen"],
                "state": ["IDF", n, n, "Oslo", n, n],
                "country": ["France", "France", "Norway", "Norway", "France", "Norway"],
                "sales_rep_id": ["E1", "E2", "E3", "E3", "E1", "E4"],
            }
        ),
        "product_lines": pd.DataFrame({"product_line_id": ["L1", "L2"], "name": ["Cars", "Empty"]}),
        "products": pd.DataFrame(
            {
                "product_id": ["P1", "P2", "P3"],
                "product_name": ["Car", "Part", "Unsold"],
                "product_line_id": ["L1", "L1", "L1"],
                "unit_cost": [4.0, n, 1.0],
            }
        ),
        "orders": pd.DataFrame(
            {
                "order_id": [o[0] for o in orders],
                "customer_id": [o[1] for o in orders],
                "employee_id": [o[2] for o in orders],
                "order_date": [o[3] for o in orders],
                "status": [o[4] for o in orders],
            }
        ),
        "order_items": pd.DataFrame(
            {
                "order_id": [o[0] for o in orders],
                "line_number": [1] * len(orders),
                "product_id": [o[5] for o in orders],
                "quantity": [o[6] for o in orders],
                "unit_price": [o[7] for o in orders],
            }
        ),
    }
    return {spec.name: conform(frames[spec.name], spec) for spec in contract.TABLES}


@pytest.mark.integration
def test_push_down_equals_pandas_on_ties_and_gaps(warehouse: str) -> None:
    pg_warehouse = warehouse  # SQLite and PostgreSQL
    engine = create_engine(pg_warehouse)
    try:
        metadata = prepare_warehouse(engine)
        with engine.begin() as conn:
            for name, frame in _ties_core().items():
                bulk_insert(conn, metadata.tables[f"core.{name}"], frame)
    finally:
        engine.dispose()
    expected = _compare(pg_warehouse, ReportParams(as_of=date(2023, 6, 1)))
    _compare(pg_warehouse, ReportParams(churn_months=1))  # as of the day after the last order
    customers = expected["customer_summary"].set_index("customer_id")
    # 30 + 30 + 20 + 15 + 5 = 100: the tie goes to 'C10' (code point '1' < '9'), both Platinum;
    # c1 has 60 % above it (Gold), C2 exactly 80 % (not below 0.5 + 0.3: Silver), C3 95 % (Bronze)
    assert customers["sales_rank"].to_dict() == {"C10": 1, "C9": 2, "c1": 3, "C2": 4, "C3": 5, "C4": 6}
    assert customers["loyalty_tier"].to_dict() == {
        "C10": "Platinum",
        "C9": "Platinum",
        "c1": "Gold",
        "C2": "Silver",
        "C3": "Bronze",
        "C4": "None",
    }
    assert customers.loc["C2", "cumulative_share"] == pytest.approx(0.95)
    # the customer without orders: zeros, no profit, no dates, not lapsed
    c4 = customers.loc["C4"]
    assert (c4["orders"], c4["net_sales"], bool(c4["is_lapsed"])) == (0, 0.0, False)
    assert pd.isna(c4["gross_profit"]) and pd.isna(c4["recency_days"]) and pd.isna(c4["avg_order_value"])
    assert customers.loc["C3", "cancelled_orders"] == 1
    # February has no orders: a row of zeros between January and March
    monthly = expected["sales_monthly"].set_index("year_month")
    assert list(monthly.index) == ["2023-01", "2023-02", "2023-03", "2023-04"]
    assert (monthly.loc["2023-02", "orders_placed"], monthly.loc["2023-02", "net_sales"]) == (0, 0.0)
    assert monthly.loc["2023-03", "orders_cancelled"] == 1
    # reps: E1 and E3 tie on 35 (E1 first); 3 with sales → 1 Gold, up to ceil(1.5) = 2 Silver
    reps = expected["employee_performance"].set_index("employee_id")
    assert reps["reward_tier"].to_dict() == {"E1": "Gold", "E3": "Silver", "E2": "Bronze", "E4": "None"}
    assert reps["rank_in_office"].to_dict() == {"E1": 1, "E3": 1, "E2": 2, "E4": 2}
    # states only where customers have one; NULL territory passes through
    locations = expected["location_summary"]
    assert set(locations.loc[locations["level"] == "state", "location_key"]) == {"France|IDF", "Norway|Oslo"}
    assert pd.isna(expected["dim_office"].set_index("office_id").loc["F1", "territory"])
    lines = expected["product_line_summary"].set_index("product_line_id")
    assert (lines.loc["L2", "products"], lines.loc["L2", "cost"], lines.loc["L2", "abc_class"]) == (
        0,
        0.0,
        "C",
    )
    products = expected["product_summary"].set_index("product_id")
    assert pd.isna(products.loc["P2", "cost"]) and products.loc["P3", "cost"] == 0.0
    assert pd.isna(products.loc["P2", "profit_rank"]) and products.loc["P1", "profit_rank"] == 1
    bins = expected["order_value_distribution"]
    assert bins["orders"].sum() == 5 and bins["net_sales"].sum() == pytest.approx(100.0)


def test_the_percentile_is_numpys_to_the_last_bit() -> None:
    rng = np.random.default_rng(1)
    naive_differs = 0
    for n in range(2, 200):
        values = np.sort(np.round(rng.lognormal(5, 1.5, n), 2))
        h = math.floor((n - 1) * TOP_QUANTILE)
        below, above = float(values[h]), float(values[h + 1])
        want = float(np.quantile(values, TOP_QUANTILE))
        assert linear_quantile(n, below, above, float(values[-1])) == want, n
        t = (n - 1) * TOP_QUANTILE - h
        naive_differs += below + (above - below) * t != want  # the textbook a + (b − a) × t
    assert naive_differs >= 3  # n = 12, 42, 105: numpy interpolates from above when t >= 0.5
    assert linear_quantile(1, 4.25, None, 4.25) == float(np.quantile([4.25], TOP_QUANTILE))
    assert linear_quantile(5, 7.5, 7.5, 7.5) == 7.5  # ties: equal neighbours


def test_the_bins_come_from_the_statements_rows_as_pandas_bins_them() -> None:
    values = np.array([5.0, 15.0, 20.0, 30.0, 30.0, 980.0])
    n = len(values)
    h = math.floor((n - 1) * TOP_QUANTILE)
    stats = {
        "n": n,
        "low": 5.0,
        "high": 980.0,
        "total": values.sum(),
        "below": values[h],
        "above": values[h + 1],
    }
    edges = value_bins(stats)
    assert edges is not None
    start, step, count, top_open = edges
    idx = bin_index(values, start, step, count if top_open else count - 1)
    rows = [(int(b), int((idx == b).sum()), float(values[idx == b].sum())) for b in np.unique(idx)]
    got = bins_frame(rows, edges, float(values.sum()))
    assert got["orders"].sum() == n and got["net_sales"].sum() == pytest.approx(values.sum())
    assert got["orders"].iloc[0] == 5 and got["upper_bound"].iloc[0] == step  # 5..30 in the first bin
    assert (
        value_bins({"n": 0, "low": None, "high": None, "total": None, "below": None, "above": None}) is None
    )


def test_no_order_lines_is_the_same_clear_error_as_pandas() -> None:
    with pytest.raises(SalesBIError, match="no order lines to report on"):
        FactBounds(None, None, None, None).as_of(ReportParams())
    bounds = FactBounds(date(2023, 1, 5), date(2023, 3, 1), date(2023, 1, 7), date(2023, 3, 9))
    assert bounds.as_of(ReportParams()) == date(2023, 3, 2)
    assert bounds.calendar(date(2023, 3, 2)) == (date(2023, 1, 5), date(2023, 3, 9))
    assert bounds.calendar(date(2024, 1, 1)) == (date(2023, 1, 5), date(2023, 12, 31))


def test_sqlite_statements_spill_their_sorts_to_files_with_capped_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    seen: list[dict[str, int]] = []
    try:
        with engine.connect() as conn:
            sqlite_support.bounded(conn)
            got = sqlite_support.settings(conn)
        assert got["temp_store"] == 1  # FILE
        caches = {k: v for k, v in got.items() if k.endswith(".cache_size")}
        assert {"main.cache_size", "core.cache_size", "rpt.cache_size"} <= set(caches)
        assert set(caches.values()) == {-sqlite_support.CACHE_KIB}
        # the build sets them on its connection before its first statement (an empty core: it
        # then stops at "no order lines", after the settings were taken)
        prepare_warehouse(engine)
        bounded = sqlite_support.bounded

        def spy(conn: sa.Connection, *args: object, **kwargs: object) -> None:
            bounded(conn, *args, **kwargs)  # type: ignore[arg-type]
            seen.append(sqlite_support.settings(conn))

        monkeypatch.setattr(sqlite_support, "bounded", spy)
        with pytest.raises(SalesBIError, match="no order lines"):
            build_reports_in_warehouse(engine, warehouse_metadata())
    finally:
        engine.dispose()
    assert len(seen) == 1 and seen[0]["temp_store"] == 1 and seen[0]["core.cache_size"] == -32768
    # and a DBA can print SQLite's statements too
    assert "julianday(" in render("sqlite", as_of=date(2024, 5, 31))["customer_summary"]
