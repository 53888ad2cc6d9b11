"""Issue 18 memory: the report builders aggregate the fact's sold lines without copying them.

The reference is the code as it was before the change (kept below, verbatim but for its names):
the report context's copy of the non-cancelled lines (``sold``, a frame) and the product
builders' per-line frame grouped by pandas. The new aggregates (per-key partial sums added block
by block, :mod:`salesbi.reports.partials`) must give the same frames, value for value, bit for
bit and dtype for dtype, on the generator, on edge cases (cancelled orders, returns, unknown
cost, unknown customer, products without a line), on a company whose every order is cancelled,
and on the real samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salesbi.reading.reader import core_frames, read_source
from salesbi.reports import summaries
from salesbi.reports.build import build_reports
from salesbi.reports.context import ReportContext, build_context
from salesbi.reports.fact import FACT_ORDER_LINES, build_fact_order_lines
from salesbi.reports.params import ReportParams
from salesbi.types import conform
from tests.reports_helpers import make_core
from tests.test_memory_fact import _edge_cases

# --- the code before the change ----------------------------------------------------------------

_OLD_SOLD_COLUMNS = (
    "product_id",
    "product_line_id",
    "order_date",
    "quantity",
    "net_sales",
    "cost",
    "discount_amount",
)


def _old_sold(fact: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """The report context's ``sold`` frame as it was built before (from build_context)."""
    from salesbi.reports.context import order_starts

    starts_order = order_starts(fact["order_id"])
    kept = ~fact["is_cancelled"].to_numpy(dtype=bool, na_value=False)
    order_no = np.cumsum(starts_order) - 1
    customer_of_order = pd.factorize(orders["customer_id"], use_na_sentinel=True)[0].astype("float64")
    customer_of_order[customer_of_order < 0] = np.nan  # like the text column: no customer, not counted
    return fact[list(_OLD_SOLD_COLUMNS)][kept].assign(
        _order_no=order_no[kept], _customer_no=customer_of_order[order_no[kept]] if len(fact) else order_no
    )


def _old_product_lines(s: pd.DataFrame, ctx: ReportContext, key: str) -> pd.DataFrame:
    """``salesbi.reports.summaries._product_lines`` before the change (``s`` was ``ctx.sold``)."""
    dates = s["order_date"]
    in_last = (dates >= pd.Timestamp(ctx.last_12m_start)) & (dates < pd.Timestamp(ctx.as_of))
    in_prior = (dates >= pd.Timestamp(ctx.prior_12m_start)) & (dates < pd.Timestamp(ctx.last_12m_start))
    sales = s["net_sales"].to_numpy(dtype="float64", na_value=0.0)
    cost = s["cost"].to_numpy(dtype="float64", na_value=np.nan)
    work = pd.DataFrame(
        {
            key: s[key],
            "order_id": s["_order_no"].to_numpy(),
            "customer_id": s["_customer_no"].to_numpy(),
            "units": s["quantity"].to_numpy(dtype="float64", na_value=0.0),
            "net_sales": sales,
            "cost": np.nan_to_num(cost, nan=0.0),
            "cost_unknown": np.isnan(cost).astype("int64"),
            "discount_amount": s["discount_amount"].to_numpy(dtype="float64", na_value=0.0),
            "sales_last_12m": np.where(in_last.to_numpy(), sales, 0.0),
            "sales_prior_12m": np.where(in_prior.to_numpy(), sales, 0.0),
        },
        copy=False,
    )
    g = work.groupby(key, sort=True, observed=True, dropna=True)
    out = g.agg(
        orders=("order_id", "nunique"),
        customers=("customer_id", "nunique"),
        units=("units", "sum"),
        net_sales=("net_sales", "sum"),
        cost=("cost", "sum"),
        cost_unknown=("cost_unknown", "sum"),
        discount_amount=("discount_amount", "sum"),
        sales_last_12m=("sales_last_12m", "sum"),
        sales_prior_12m=("sales_prior_12m", "sum"),
    )
    out["cost"] = out["cost"].where(out["cost_unknown"] == 0)
    out["gross_profit"] = out["net_sales"] - out["cost"]
    for col in ("net_sales", "cost", "gross_profit", "discount_amount", "sales_last_12m", "sales_prior_12m"):
        out[col] = out[col].round(2)
    return out.drop(columns="cost_unknown")


def _old_products_per_line(s: pd.DataFrame) -> pd.Series:
    """``build_product_line_summary``'s distinct products per line before the change."""
    return s.groupby("product_line_id", observed=True)["product_id"].nunique()


# --- the cases ---------------------------------------------------------------------------------


def _fact(core: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return conform(build_fact_order_lines(core), FACT_ORDER_LINES)


def _context(core: dict[str, pd.DataFrame]) -> tuple[ReportContext, pd.DataFrame]:
    """Return the report context and the fact frame it was built from (the context does not hold it)."""
    fact = _fact(core)
    return build_context(core, fact, ReportParams()), fact


@pytest.fixture(scope="module")
def generated_core(sample_company: Path) -> dict[str, pd.DataFrame]:
    """Return the core frames of the session's generated company."""
    return core_frames(read_source(sample_company, "canonical"))


def _more_edge_cases(core: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Return :func:`_edge_cases` plus a product without a line and a whole cancelled stretch."""
    out = _edge_cases(core)
    out["products"].loc[1, "product_line_id"] = pd.NA  # its lines have no line key: left out by line
    cancelled = out["orders"].index[10:400:3]
    out["orders"].loc[cancelled, "status"] = "cancelled"
    return out


def _all_cancelled() -> dict[str, pd.DataFrame]:
    return make_core(
        [
            ("O1", "C1", "2024-01-05", "cancelled", [("P1", 2, 10.0, 0.0), ("P2", 1, 5.0, 0.1)]),
            ("O2", "C2", "2024-02-05", "cancelled", [("P3", 1, 1.0, 0.0)]),
        ]
    )


def _cases(generated_core: dict[str, pd.DataFrame]) -> Iterator[tuple[str, dict[str, pd.DataFrame]]]:
    yield "generator", generated_core
    yield "edge cases", _more_edge_cases(generated_core)
    yield "every order cancelled", _all_cancelled()


def _assert_same(ctx: ReportContext, fact: pd.DataFrame) -> None:
    old_sold = _old_sold(fact, ctx.orders)
    for key in ("product_id", "product_line_id"):
        pd.testing.assert_frame_equal(
            summaries._product_lines(ctx, key), _old_product_lines(old_sold, ctx, key), check_exact=True
        )
    pd.testing.assert_series_equal(
        summaries.products_per_line(ctx), _old_products_per_line(old_sold), check_exact=True
    )


def test_product_aggregates_equal_the_old_ones_on_the_generator_and_edge_cases(
    generated_core: dict[str, pd.DataFrame],
) -> None:
    for name, core in _cases(generated_core):
        ctx, fact = _context(core)
        _assert_same(ctx, fact)
        if name == "edge cases":  # the cases are really there
            assert fact["product_line_id"].isna().any() and fact["cost"].isna().any()
            assert fact["is_cancelled"].sum() > 1000 and (fact["quantity"] < 0).any()
        if name == "every order cancelled":
            assert fact["is_cancelled"].all() and summaries._product_lines(ctx, "product_id").empty


@pytest.mark.realdata
@pytest.mark.parametrize("profile", ["classicmodels", "northwind"])
def test_product_aggregates_equal_the_old_ones_on_the_real_samples(datasets_dir: Path, profile: str) -> None:
    _assert_same(*_context(core_frames(read_source(datasets_dir / profile, profile))))


def _assert_same_build(core: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole build, new against the old product aggregates patched in: every table identical."""
    new = build_reports(core)
    fact = _fact(core)
    with monkeypatch.context() as m:
        m.setattr(
            summaries,
            "_product_lines",
            lambda ctx, key: _old_product_lines(_old_sold(fact, ctx.orders), ctx, key),
        )
        m.setattr(
            summaries,
            "products_per_line",
            lambda ctx: _old_products_per_line(_old_sold(fact, ctx.orders)),
        )
        old = build_reports(core)
    assert list(new) == list(old)
    for table in new:
        pd.testing.assert_frame_equal(new[table], old[table], check_exact=True, obj=table)


def test_every_report_table_equals_the_old_build(
    generated_core: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    for _name, core in _cases(generated_core):
        _assert_same_build(core, monkeypatch)


@pytest.mark.realdata
@pytest.mark.parametrize("profile", ["classicmodels", "northwind"])
def test_every_report_table_equals_the_old_build_on_the_real_samples(
    datasets_dir: Path, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _assert_same_build(core_frames(read_source(datasets_dir / profile, profile)), monkeypatch)


def test_the_context_holds_nothing_per_line(generated_core: dict[str, pd.DataFrame]) -> None:
    """The context keeps no array as long as the fact: per-key partial sums, per-order frames."""
    ctx, fact = _context(generated_core)
    n = len(fact)
    assert ctx.lines.rows == n
    per_line = [
        name
        for name, value in vars(ctx.lines.partials.product).items()
        if isinstance(value, np.ndarray) and len(value) >= n
    ]
    assert per_line == []
    assert len(ctx.orders) == fact["order_id"].nunique() < n
