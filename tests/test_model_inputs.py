"""Model inputs aggregated by the warehouse (``reports_in="warehouse"``): one row per order.

Segmentation and prediction read the order history the database aggregates
(:func:`salesbi.reports.sql.model_inputs.read_order_history`: per order and per (customer,
product line) first use) instead of the fact's lines. Every behaviour and prediction feature,
the segments and the predictions equal the per-line path's: integers, dates and labels
exactly, money up to float summation order (the database adds an order's lines in its own
order: relative tolerance 1e-12 on the features, 1e-9 on the model outputs, which LightGBM
computes from those features). On SQLite and PostgreSQL with the generator and classicmodels;
for SQL Server the statements compile with their literals inline and parse as T-SQL (sqlglot).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlglot

from salesbi.errors import SalesBIError
from salesbi.forecasting.series import DAY_COLUMNS, build_series, frequency_choice, order_dates
from salesbi.prediction import predict_customer_sales
from salesbi.prediction.features import features_at, prepare
from salesbi.reports.build import ReportParams, build_reports
from salesbi.reports.fact import build_fact_order_lines
from salesbi.reports.insights import _as_of, build_insights, returns_findings
from salesbi.reports.sql.model_inputs import (
    first_uses_select,
    forecast_days_select,
    insight_facts_select,
    order_history_select,
    read_forecast_days,
    read_insight_facts,
    read_order_history,
)
from salesbi.reports.sql.render import dialect_named
from salesbi.segmentation import segment_customers
from salesbi.segmentation.history import (
    FIRST_USE_COLUMNS,
    HISTORY_ORDER_COLUMNS,
    LINE_COLUMNS,
    OrderHistory,
    behaviour_features,
    lines_from_fact,
    order_history,
)
from salesbi.segmentation.segment import customer_reps
from salesbi.warehouse.ddl import warehouse_metadata
from salesbi.warehouse.engine import create_engine
from tests.test_reports_sql import _ingest
from tests.warehouse_inputs import read_warehouse_inputs

RTOL = 1e-12


def _read(url: str) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, OrderHistory, pd.DataFrame, pd.DataFrame]:
    """Return core, the pandas fact and the order, day and insight aggregates read from ``url``."""
    got = read_warehouse_inputs(url)
    return got.core, build_fact_order_lines(got.core), got.history, got.days, got.insights


def _same(got: pd.DataFrame, want: pd.DataFrame, rtol: float, obj: str) -> None:
    """Assert frames equal: non-float columns exactly, float columns to ``rtol``."""
    assert list(got.columns) == list(want.columns) and list(got.index) == list(want.index), obj
    for column in want.columns:
        a, b = got[column], want[column]
        if pd.api.types.is_float_dtype(b.dtype):
            np.testing.assert_allclose(
                a.to_numpy(dtype="float64"),
                b.to_numpy(dtype="float64"),
                rtol=rtol,
                atol=1e-9,
                err_msg=f"{obj}.{column}",
            )
        else:
            pd.testing.assert_series_equal(a, b, obj=f"{obj}.{column}")


def _check(url: str, as_of: date | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    core, fact, history, days, facts = _read(url)
    _check_forecast_input(core, fact, days)
    _check_insights(core, facts)
    lines = lines_from_fact(fact)
    orders = fact["order_id"].nunique()
    assert len(history.orders) == orders and "order_id" not in history.orders.columns
    assert len(history.first_uses) < len(fact)
    # the orders: sales per order up to summation order, everything else exactly
    cut = pd.Timestamp(as_of) if as_of else pd.Timestamp(lines["order_date"].max()) + pd.Timedelta(days=1)
    want, got = prepare(lines[lines["order_date"] < cut]), prepare(history.before(cut))
    _same(got.orders, want.orders.drop(columns="order_id"), RTOL, "orders")
    pd.testing.assert_frame_equal(got.first_line_use, want.first_line_use)
    # every feature at the as-of date and at earlier cutoffs
    _same(behaviour_features(history, cut.date()), behaviour_features(lines, cut.date()), RTOL, "behaviour")
    for back in (0, 90, 365):
        c = cut - pd.Timedelta(days=back)
        _same(features_at(got, c, 90), features_at(want, c, 90), RTOL, f"features at {c.date()}")
    # the models: same segments, clusters, ranks; predictions to 1e-9
    seg = {
        way: segment_customers(f, core["customers"], core["employees"], as_of=as_of).customer_segments
        for way, f in (("lines", fact), ("orders", history))
    }
    _same(seg["orders"], seg["lines"], 1e-9, "customer_segments")
    pred = {
        way: predict_customer_sales(f, core["customers"], employees=core["employees"], as_of=as_of)
        for way, f in (("lines", fact), ("orders", history))
    }
    a, b = (pred[w].customer_predictions for w in ("orders", "lines"))
    _same(a.drop(columns=["model_version"]), b.drop(columns=["model_version"]), 1e-9, "customer_predictions")
    return seg["lines"], a


@pytest.mark.integration
def test_model_inputs_aggregated_by_the_database_equal_the_lines_on_the_generator(
    sample_company: Path, warehouse: str, tmp_path: Path
) -> None:
    _ingest(sample_company, "canonical", warehouse, tmp_path / "out")
    segments, predictions = _check(warehouse)
    assert len(segments) == 500 and segments["segment"].nunique() > 4 and len(predictions) == len(segments)


@pytest.mark.integration
@pytest.mark.realdata
def test_model_inputs_aggregated_by_the_database_equal_the_lines_on_classicmodels(
    classicmodels_dir: Path, warehouse: str, tmp_path: Path
) -> None:
    _ingest(classicmodels_dir, "classicmodels", warehouse, tmp_path / "out")
    segments, _ = _check(warehouse)
    assert len(segments) == 98


def _check_forecast_input(core: dict[str, pd.DataFrame], fact: pd.DataFrame, days: pd.DataFrame) -> None:
    """The day rows give the per-line path's order dates, frequency and series panels (sums to RTOL)."""
    assert len(days) < len(fact) and int(days["orders"].sum()) == fact["order_id"].nunique()
    want_dates = fact.drop_duplicates("order_id")["order_date"]
    got_dates = order_dates(days)
    assert sorted(got_dates) == sorted(want_dates)
    for week in (0, 6):
        assert frequency_choice(got_dates, week) == frequency_choice(want_dates, week)
    tables = (core["customers"], core["product_lines"], core["offices"])
    for freq in ("D", "W", "M"):
        want = build_series(fact, *tables, freq)
        got = build_series(days, *tables, freq)
        pd.testing.assert_frame_equal(got.meta, want.meta)
        assert list(got.dates) == list(want.dates)
        np.testing.assert_allclose(got.values, want.values, rtol=RTOL, atol=1e-6, err_msg=freq)


def _check_insights(core: dict[str, pd.DataFrame], facts: pd.DataFrame) -> None:
    """The insights from the aggregate equal those from the fact's lines, text for text."""
    reports = build_reports(core)
    fact = reports["fact_order_lines"]
    assert len(facts) <= 2 * fact["status"].nunique() and len(facts) < len(fact)
    ours = {**reports, "fact_order_lines": facts}
    want, got = build_insights(reports), build_insights(ours)
    assert got["finding"].tolist() == want["finding"].tolist()
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
    # the as-of fallback (no customer_summary) and the returns finding on their own
    no_summary = ReportParams()
    for tables in (reports, ours):
        tables.pop("customer_summary")
    assert _as_of(ours, no_summary) == _as_of(reports, no_summary)
    mine, theirs = returns_findings(ours, no_summary), returns_findings(reports, no_summary)
    assert [f.finding for f in mine] == [f.finding for f in theirs]
    for a, b in zip(mine, theirs, strict=True):
        assert a.details == pytest.approx(b.details, rel=1e-12)


def _lines(rows: list[tuple[str, str, str, float, bool, str | None, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(LINE_COLUMNS))


def test_order_rows_and_first_uses_rebuild_every_feature_of_a_small_history() -> None:
    # c1: a cancelled order on the day it first bought line B (another order), a return line
    # (not cancelled) on a cancelled order; c2: two orders the same day, no product line on one
    lines = lines_from_fact(
        _lines(
            [
                ("c1", "o1", "2024-01-05", 10.0, False, "A", "e1"),
                ("c1", "o1", "2024-01-05", 5.5, False, "B", "e1"),
                ("c1", "o2", "2024-02-01", 0.0, True, "A", "e2"),
                ("c1", "o3", "2024-02-01", 7.25, False, "C", "e2"),
                ("c1", "o4", "2024-03-01", 0.0, True, "A", None),
                ("c1", "o4", "2024-03-01", -3.0, False, "B", None),
                ("c2", "o5", "2024-01-10", 1.0, False, None, "e1"),
                ("c2", "o6", "2024-01-10", 2.0, False, "A", "e3"),
                ("c2", "o7", "2024-03-15", 4.0, False, "A", "e3"),
            ]
        )
    )
    orders = lines.groupby("order_id", sort=True).agg(
        customer_id=("customer_id", "first"),
        order_date=("order_date", "first"),
        employee_id=("employee_id", "first"),
        is_cancelled=("is_cancelled", "max"),
        net_sales=("net_sales", "sum"),
    )
    orders = orders.reset_index()[
        ["customer_id", "order_id", "order_date", "employee_id", "is_cancelled", "net_sales"]
    ]
    placed = lines[~lines["is_cancelled"] & lines["product_line_id"].notna()]
    uses = placed.groupby(["customer_id", "product_line_id"], as_index=False)["order_date"].min()
    ours = order_history(orders, uses)
    assert len(ours.orders) == 7 and len(ours.first_uses) == 4  # 4 (customer, product line) first uses
    before = _rebuilt_rows(orders, uses)  # the history-shaped rows the features read before
    customers = pd.DataFrame({"customer_id": ["c1", "c2"], "sales_rep_id": [None, None]})
    for cut in ("2024-01-06", "2024-02-02", "2024-03-02", "2024-04-01"):
        for reference in (before, lines):
            pd.testing.assert_frame_equal(
                behaviour_features(ours, date.fromisoformat(cut)),
                behaviour_features(reference, date.fromisoformat(cut)),
            )
            pd.testing.assert_frame_equal(
                features_at(prepare(ours), pd.Timestamp(cut), 30),
                features_at(prepare(reference), pd.Timestamp(cut), 30),
            )
        index = pd.Index(["c1", "c2", "c3"], dtype="string", name="customer_id")
        pd.testing.assert_series_equal(
            customer_reps(ours, customers, index), customer_reps(before, customers, index)
        )
    assert customer_reps(ours, customers, pd.Index(["c1", "c2"], dtype="string")).tolist() == ["e2", "e3"]
    # o4 holds a return (not cancelled) on a cancelled order: the order is cancelled, its sales -3
    assert behaviour_features(ours, date(2024, 4, 1)).loc["c1", "cancellation_rate"] == pytest.approx(0.5)
    # a first use without an order that day: the inputs are not from the same data
    with pytest.raises(SalesBIError, match="no order that day"):
        order_history(orders, uses.assign(order_date=pd.Timestamp("2023-12-31")))


def _rebuilt_rows(orders: pd.DataFrame, first_uses: pd.DataFrame) -> pd.DataFrame:
    """The history-shaped rows the model steps read before ``OrderHistory`` (the orders, then one
    zero-sales row per first use filed under an order of that customer on that day)."""
    day_orders = orders.drop_duplicates(["customer_id", "order_date"])[
        ["customer_id", "order_date", "order_id", "employee_id"]
    ]
    filed = first_uses.merge(day_orders, on=["customer_id", "order_date"], how="left", sort=False)
    extra = filed.assign(net_sales=0.0, is_cancelled=False)
    base = orders.assign(product_line_id=pd.Series(pd.NA, index=orders.index, dtype="string"))
    return lines_from_fact(
        pd.concat([base[list(LINE_COLUMNS)], extra[list(LINE_COLUMNS)]], ignore_index=True)
    )


def test_the_aggregate_statements_compile_for_sql_server_and_parse_as_tsql() -> None:
    mssql = dialect_named("mssql")
    metadata = warehouse_metadata()
    selects = (order_history_select, first_uses_select, forecast_days_select, insight_facts_select)
    for select in (make(metadata) for make in selects):
        sql = str(select.compile(dialect=mssql, compile_kwargs={"literal_binds": True}))
        assert "GROUP BY" in sql and "COLLATE Latin1_General_100_BIN2" in sql.rsplit("ORDER BY", 1)[1]
        assert "%(" not in sql and " || " not in sql
        assert sqlglot.parse_one(sql, read="tsql") is not None


def test_the_aggregate_statements_run_on_sqlite_without_core_rows(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'wh.db'}")
    metadata = warehouse_metadata()
    try:
        from salesbi.ingest import prepare_warehouse

        metadata = prepare_warehouse(engine)
        with engine.connect() as conn:
            history = read_order_history(conn, metadata)
            days = read_forecast_days(conn, metadata)
            facts = read_insight_facts(conn, metadata)
    finally:
        engine.dispose()
    assert list(history.orders.columns) == list(HISTORY_ORDER_COLUMNS) and history.empty
    assert list(history.first_uses.columns) == list(FIRST_USE_COLUMNS) and history.first_uses.empty
    assert list(days.columns) == list(DAY_COLUMNS) and days.empty
    assert list(facts.columns) == ["status", "is_cancelled", "order_date", "net_sales"] and facts.empty


@pytest.mark.integration
@pytest.mark.slow
def test_a_warehouse_run_scores_with_its_stored_models_from_the_aggregates(
    sample_company: Path, warehouse: str, tmp_path: Path
) -> None:
    """A second warehouse run reuses the stored models on the aggregated inputs: same tables as the fit."""
    import json

    pg_warehouse = warehouse  # SQLite and PostgreSQL

    from salesbi.params import PipelineParams
    from salesbi.pipeline import run_pipeline

    _ingest(sample_company, "canonical", pg_warehouse, tmp_path / "ingest")
    out = tmp_path / "out"
    steps = ("reports", "segments", "predictions", "forecast")
    tables = {}
    for refit in ("always", "auto"):
        run_pipeline(
            PipelineParams(
                warehouse_url=pg_warehouse, out_dir=out, steps=steps, reports_in="warehouse", refit=refit
            )
        )
        doc = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
        assert doc["status"] in ("succeeded", "succeeded_with_warnings"), doc
        data = out / "powerbi" / "data"
        tables[refit] = {
            n: pd.read_parquet(data / f"{n}.parquet") for n in ("customer_segments", "sales_forecast")
        }
    decisions = doc["outputs"]["model_decisions"]
    assert {s: decisions[s]["action"] for s in steps[1:]} == dict.fromkeys(steps[1:], "reuse"), decisions
    for name in ("customer_segments", "sales_forecast"):
        a, b = (tables[r][name].drop(columns=["run_id"], errors="ignore") for r in ("always", "auto"))
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, obj=name)
