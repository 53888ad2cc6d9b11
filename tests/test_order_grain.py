"""The model steps' and insights' inputs computed from the fact's lines in batches (``salesbi.order_grain``).

Cross-checked two ways: equal — values, dtypes and order, exactly — to what the warehouse
computes for the same data (``salesbi.reports.sql.model_inputs``, SQLite and PostgreSQL, the
generator and classicmodels), whatever the batch size and whether the lines come from a frame,
the spilled Parquet file or core's frames (the fact built a batch of orders at a time); and
equal to the same aggregates written plainly with pandas over the whole fact on constructed
shapes (cancelled orders, returns, orders over several product lines, a customer with one
order, lines with no product line, an empty fact).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from salesbi.fact_spill import spill
from salesbi.order_grain import (
    DAYS,
    HISTORY,
    INSIGHTS,
    CoreLines,
    fact_batches_from_core,
    first_uses,
    forecast_days,
    insight_facts,
    line_batches,
    model_inputs_from_lines,
    order_rows,
)
from salesbi.reports.fact import FACT_ORDER_LINES, build_fact_order_lines
from salesbi.reports.sql.model_inputs import (
    DAYS_SPEC,
    FIRST_USES_SPEC,
    INSIGHTS_SPEC,
    ORDERS_SPEC,
)
from salesbi.segmentation.history import FIRST_USE_COLUMNS, HISTORY_ORDER_COLUMNS
from salesbi.types import conform
from tests.census import frames_of_length
from tests.test_reports_sql import _ingest
from tests.warehouse_inputs import read_warehouse_inputs


def _from_warehouse(url: str) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Return core and the warehouse's aggregates (orders, first uses, history, days, insights)."""
    got = read_warehouse_inputs(url)
    want = {
        "orders": got.orders,
        "first_uses": got.first_uses,
        HISTORY: got.history,
        DAYS: got.days,
        INSIGHTS: got.insights,
    }
    return got.core, want


def _check_equal_to_warehouse(url: str, tmp_path: Path) -> None:
    core, want = _from_warehouse(url)
    fact = conform(build_fact_order_lines(core), FACT_ORDER_LINES)  # as the report step builds it
    spilled = spill(fact, FACT_ORDER_LINES, tmp_path / "spill")
    for rows in (1_000, 7_777, 10**9):  # orders straddle the batches; one batch
        got = {
            "orders": order_rows(line_batches(fact, fact.columns, rows)),
            "first_uses": first_uses(line_batches(fact, fact.columns, rows)),
        }
        for name in ("orders", "first_uses"):
            pd.testing.assert_frame_equal(got[name], want[name], check_exact=True, obj=f"{name} {rows}")
        built = list(fact_batches_from_core(core, rows=rows))  # reports did not run
        assert max(len(b) for b in built) < rows + 100 or len(built) == 1
        pd.testing.assert_frame_equal(pd.concat(built, ignore_index=True), fact, check_exact=True)
        for source in (fact, spilled, CoreLines(core)):
            inputs = model_inputs_from_lines(source, core["customers"], (HISTORY, DAYS, INSIGHTS))
            assert inputs.history is not None
            for part in ("orders", "first_uses"):
                pd.testing.assert_frame_equal(
                    getattr(inputs.history, part), getattr(want[HISTORY], part), check_exact=True, obj=part
                )
            for name, frame in ((DAYS, inputs.days), (INSIGHTS, inputs.insights)):
                pd.testing.assert_frame_equal(frame, want[name], check_exact=True, obj=name)
        days = forecast_days(line_batches(spilled, FACT_ORDER_LINES.column_names, rows), core["customers"])
        pd.testing.assert_frame_equal(days, want[DAYS], check_exact=True, obj=f"days {rows}")
    assert int(want[DAYS]["orders"].sum()) == fact["order_id"].nunique() == len(want["orders"])


@pytest.mark.integration
def test_the_inputs_from_the_lines_equal_the_warehouse_s_on_the_generator(
    sample_company: Path, warehouse: str, tmp_path: Path
) -> None:
    _ingest(sample_company, "canonical", warehouse, tmp_path / "out")
    _check_equal_to_warehouse(warehouse, tmp_path)


@pytest.mark.integration
@pytest.mark.realdata
def test_the_inputs_from_the_lines_equal_the_warehouse_s_on_classicmodels(
    classicmodels_dir: Path, warehouse: str, tmp_path: Path
) -> None:
    _ingest(classicmodels_dir, "classicmodels", warehouse, tmp_path / "out")
    _check_equal_to_warehouse(warehouse, tmp_path)


def _fact(rows: list[tuple[str, int, str, str, str, str | None, str | None, str, float]]) -> pd.DataFrame:
    """Return a fact frame (the columns the inputs read) from (order, line, customer, date, status,
    product line, office, employee, net sales) rows; cancelled = status 'cancelled'."""
    frame = pd.DataFrame(
        rows,
        columns=[
            "order_id",
            "line_number",
            "customer_id",
            "order_date",
            "status",
            "product_line_id",
            "office_id",
            "employee_id",
            "net_sales",
        ],
    )
    frame["is_cancelled"] = frame["status"] == "cancelled"
    spec = _spec(list(frame.columns))
    return conform(frame[list(spec.column_names)], spec)


def _spec(columns: list[str]):  # type: ignore[no-untyped-def]
    import dataclasses

    return dataclasses.replace(
        FACT_ORDER_LINES, columns=tuple(c for c in FACT_ORDER_LINES.columns if c.name in columns), indexes=()
    )


SHAPES = [
    # c1: an order over two product lines, a cancelled order, a return (negative, not cancelled)
    ("o1", 1, "c1", "2024-01-05", "shipped", "A", "x", "e1", 10.10),
    ("o1", 2, "c1", "2024-01-05", "shipped", "B", "x", "e1", 5.55),
    ("o2", 1, "c1", "2024-02-01", "cancelled", "A", "x", "e2", 0.0),
    ("o3", 1, "c1", "2024-02-01", "shipped", "C", "x", "e2", 7.25),
    ("o4", 1, "c1", "2024-03-01", "returned", "A", None, "e2", -3.0),
    ("o4", 2, "c1", "2024-03-01", "returned", "B", None, "e2", 0.1),
    # c2: one order, one of its lines with no product line, a customer unknown to customers
    ("o5", 1, "c2", "2024-01-10", "shipped", None, "y", "e1", 1.0),
    ("o5", 2, "c2", "2024-01-10", "shipped", "A", "y", "e1", 0.2),
    ("o6", 1, "c9", "2024-01-10", "shipped", "A", "y", "e1", 2.3),
]
CUSTOMERS = pd.DataFrame({"customer_id": ["c1", "c2"], "country": ["France", None]}, dtype="string")


def _plain(fact: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The aggregates written plainly over the whole fact (one groupby each, sums of cents)."""
    f = fact.assign(c=np.rint(fact["net_sales"].to_numpy() * 100).astype("int64"))
    orders = f.groupby("order_id", as_index=False).agg(
        customer_id=("customer_id", "first"),
        order_date=("order_date", "first"),
        employee_id=("employee_id", "first"),
        is_cancelled=("is_cancelled", "max"),
        c=("c", "sum"),
    )
    orders["net_sales"] = orders["c"] / 100.0
    placed = f[~f["is_cancelled"] & f["product_line_id"].notna()]
    uses = placed.groupby(["customer_id", "product_line_id"], as_index=False)["order_date"].min()
    country = f["customer_id"].map(dict(zip(CUSTOMERS["customer_id"], CUSTOMERS["country"], strict=True)))
    d = f.assign(
        country=country.astype("string").fillna("Unknown"), first=(f["line_number"] == 1).astype("int64")
    )
    keys = ["order_date", "country", "product_line_id", "office_id"]
    days = d.groupby(keys, as_index=False, dropna=False).agg(c=("c", "sum"), orders=("first", "sum"))
    days = days.sort_values(keys, na_position="last")
    days["net_sales"] = days["c"] / 100.0
    ins = f.groupby(["status", "is_cancelled"], as_index=False).agg(
        order_date=("order_date", "max"), c=("c", "sum")
    )
    ins["net_sales"] = ins["c"] / 100.0
    return {
        "orders": conform(orders[list(ORDERS_SPEC.column_names)], ORDERS_SPEC),
        "first_uses": conform(
            uses[list(FIRST_USES_SPEC.column_names)].reset_index(drop=True), FIRST_USES_SPEC
        ),
        DAYS: conform(days[list(DAYS_SPEC.column_names)].reset_index(drop=True), DAYS_SPEC),
        INSIGHTS: conform(ins[list(INSIGHTS_SPEC.column_names)], INSIGHTS_SPEC),
    }


@pytest.mark.parametrize("rows", [1, 2, 3, 100])
def test_the_inputs_of_constructed_shapes_equal_plain_aggregates(rows: int) -> None:
    fact = _fact(SHAPES)
    want = _plain(fact)
    got = {
        "orders": order_rows(line_batches(fact, fact.columns, rows)),
        "first_uses": first_uses(line_batches(fact, fact.columns, rows)),
        DAYS: forecast_days(line_batches(fact, fact.columns, rows), CUSTOMERS),
        INSIGHTS: insight_facts(line_batches(fact, fact.columns, rows)),
    }
    for name, frame in want.items():
        pd.testing.assert_frame_equal(got[name], frame, check_exact=True, obj=name)
    orders = got["orders"].set_index("order_id")
    assert orders.loc["o1", "net_sales"] == 15.65 and orders.loc["o4", "net_sales"] == -2.9
    assert orders["is_cancelled"].tolist() == [False, True, False, False, False, False]
    assert got[DAYS]["orders"].sum() == 6 and "Unknown" in set(got[DAYS]["country"])
    assert got["first_uses"]["product_line_id"].notna().all()


def test_an_empty_fact_gives_empty_inputs_of_the_warehouse_s_columns() -> None:
    fact = _fact(SHAPES).iloc[:0]
    inputs = model_inputs_from_lines(fact, CUSTOMERS, (HISTORY, DAYS, INSIGHTS))
    assert inputs.history is not None and inputs.history.empty
    assert inputs.days is not None and list(inputs.days.columns) == list(DAYS_SPEC.column_names)
    assert inputs.insights is not None and list(inputs.insights.columns) == list(INSIGHTS_SPEC.column_names)
    assert inputs.days.empty and inputs.insights.empty
    assert model_inputs_from_lines(fact, None, (INSIGHTS,)).history is None


@pytest.mark.integration
@pytest.mark.slow
def test_a_model_step_run_alone_builds_its_input_from_core_in_batches(
    sample_company: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--steps segments`` alone (no report step): the fact is built from core a batch of orders at a
    time, no frame as long as the fact is alive when the model fits, and the segments equal those of
    a run whose report step spilled the fact (the same inputs)."""
    from collections.abc import Callable

    from salesbi import order_grain, pipeline
    from salesbi.params import PipelineParams
    from salesbi.pipeline import run_pipeline

    url = f"sqlite:///{tmp_path / 'var' / 'warehouse.db'}"

    def params(out: str, steps: tuple[str, ...]) -> PipelineParams:
        return PipelineParams(
            source=sample_company,
            profile="canonical",
            warehouse_url=url,
            out_dir=tmp_path / out,
            steps=steps,  # type: ignore[arg-type]
            fact_spill_lines=0,
            refit="always",
            model_workers=1,  # the census runs inside a model step (tests/census.py)
        )

    run_pipeline(params("full", ("ingest", "reports", "segments")))
    lines = len(pd.read_parquet(tmp_path / "full" / "powerbi" / "data" / "fact_order_lines.parquet"))
    seen: dict[str, Any] = {}
    fit, tables = pipeline.MODEL_FITS["segments"]

    def watched(*args: Any, _fit: Callable[..., Any] = fit) -> Any:
        seen["line_frames"] = frames_of_length(lines)
        seen["columns"] = list(args[0].orders.columns), list(args[0].first_uses.columns)
        return _fit(*args)

    monkeypatch.setitem(pipeline.MODEL_FITS, "segments", (watched, tables))
    calls: list[int] = []
    real = order_grain.fact_batches_from_core

    def counting(core: Any, columns: Any, rows: int, lines: Any = None) -> Any:
        for batch in real(core, columns, 3_000, lines):  # batches smaller than the company
            calls.append(len(batch))
            yield batch

    monkeypatch.setattr(order_grain, "fact_batches_from_core", counting)
    summary = run_pipeline(params("alone", ("segments",)))
    assert summary.status in ("succeeded", "succeeded_with_warnings")
    assert seen["columns"] == (list(HISTORY_ORDER_COLUMNS), list(FIRST_USE_COLUMNS))  # no per-line rows
    assert seen["line_frames"] == []  # neither the fact nor core's order lines
    assert sum(calls) == lines and len(calls) > 1  # built in batches
    data = {
        way: tmp_path / way / "powerbi" / "data" / "customer_segments.parquet" for way in ("full", "alone")
    }
    want, got = (pd.read_parquet(p).drop(columns=["run_id"], errors="ignore") for p in data.values())
    for frame in (want, got):
        if "model_version" in frame.columns:  # '<UTC time>-<content hash>': the hash names the model
            frame["model_version"] = frame["model_version"].str.split("-").str[-1]
    pd.testing.assert_frame_equal(got, want, check_exact=True)
