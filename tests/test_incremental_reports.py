"""Spliced monthly report tables equal a full rebuild (``salesbi.incremental_reports``), library level.

Library level, no warehouse: day 1 is a generated company's core; day 2 is day 1 with orders
moved between months (old → old, old → a new month, into the first month), cancelled,
reassigned to another customer, lines changed, and new orders. The previous tables are the full
build of day 1; the old state of the changed orders is day 1's. The spliced tables must be
frame-equal (exactly) to the full build of day 2, for several churn windows and random edits.
The pipeline (old state read from core, previous tables from the last run's Parquet, the
fall-backs) is tested in ``tests/test_incremental_outputs.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salesbi.generate import generate_company
from salesbi.incremental_reports import ChangedOrders, affected_months, monthly_tables, splice
from salesbi.reading.reader import core_frames, read_source
from salesbi.reports import monthly
from salesbi.reports.context import ReportContext, build_context
from salesbi.reports.fact import FACT_ORDER_LINES, build_fact_order_lines
from salesbi.reports.params import ReportParams
from salesbi.types import conform

COLS = ["order_id", "customer_id", "order_date", "is_cancelled"]


@pytest.fixture(scope="module")
def day1(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    root: Path = tmp_path_factory.mktemp("splice")
    generate_company(root, order_lines=4_000, seed=7)
    return core_frames(read_source(root, "canonical"))


def _ctx(core: dict[str, pd.DataFrame], churn_months: int) -> ReportContext:
    fact = conform(build_fact_order_lines(core), FACT_ORDER_LINES)
    return build_context(core, fact, ReportParams(churn_months=churn_months))


def _full(ctx: ReportContext) -> dict[str, pd.DataFrame]:
    return {
        "sales_monthly": monthly.build_sales_monthly(ctx),
        "customer_growth": monthly.build_customer_growth(ctx),
    }


def _shift_months(dates: pd.Series, months: np.ndarray) -> pd.Series:
    """Return ``dates`` moved by ``months`` calendar months (day 1 of the month: always valid)."""
    first = dates.dt.to_period("M").dt.to_timestamp()
    return pd.Series(
        [d + pd.DateOffset(months=int(k)) for d, k in zip(first, months, strict=True)], index=dates.index
    ).astype(dates.dtype)


def _day2(
    core: dict[str, pd.DataFrame], rng: np.random.Generator, *, new_month: bool
) -> tuple[dict[str, pd.DataFrame], set[str]]:
    """Return day 2's core (edited copies) and the ids of the orders changed or added."""
    orders, items = core["orders"].copy(), core["order_items"].copy()
    ids = orders["order_id"].to_numpy()
    last = orders["order_date"].max()
    picked = rng.choice(len(orders), size=40, replace=False)
    move, cancel, reassign, relines = np.split(picked, [15, 25, 32])
    # moved between old months, both ways (kept before the last order month)
    dates = orders["order_date"].iloc[move]
    shifted = _shift_months(dates, rng.integers(-8, 9, size=len(move)))
    first = orders["order_date"].min()
    orders.loc[orders.index[move], "order_date"] = shifted.clip(lower=first, upper=last).to_numpy()
    orders.loc[orders.index[cancel], "status"] = "cancelled"
    customers = core["customers"]["customer_id"].to_numpy()
    orders.loc[orders.index[reassign], "customer_id"] = rng.choice(customers, size=len(reassign))
    relined = items["order_id"].isin(ids[relines]).to_numpy()
    items.loc[relined, "quantity"] = items.loc[relined, "quantity"] + 1
    changed = set(ids[picked])
    if new_month:
        # one old order moves to the next month; new orders are dated in it too
        mover = orders.index[rng.integers(len(orders))]
        next_month = (last + pd.offsets.MonthBegin(1)).normalize()
        orders.loc[mover, "order_date"] = next_month
        changed.add(orders.loc[mover, "order_id"])
        new = orders.sample(n=5, random_state=int(rng.integers(1 << 30))).copy()
        new["order_id"] = [f"N{i}" for i in range(len(new))]
        new["order_date"] = next_month + pd.Timedelta(days=2)
        new["status"] = "placed"
        new_lines = items[items["order_id"] == orders.loc[mover, "order_id"]].copy()
        lines = pd.concat([new_lines.assign(order_id=o) for o in new["order_id"]], ignore_index=True)
        orders = pd.concat([orders, new], ignore_index=True)
        items = pd.concat([items, lines], ignore_index=True)
        changed |= set(new["order_id"])
    return {**core, "orders": orders, "order_items": items}, changed


def _changed(before: ReportContext, ids: set[str]) -> ChangedOrders:
    previous = before.orders.loc[before.orders["order_id"].isin(ids), COLS].reset_index(drop=True)
    return ChangedOrders(order_ids=frozenset(ids), previous=previous)


@pytest.mark.parametrize(
    ("seed", "churn_months", "new_month"), [(1, 2, False), (2, 1, True), (3, 3, True), (4, 6, False)]
)
def test_spliced_monthly_tables_equal_a_full_rebuild(
    day1: dict[str, pd.DataFrame], seed: int, churn_months: int, new_month: bool
) -> None:
    rng = np.random.Generator(np.random.PCG64(seed))
    before = _ctx(day1, churn_months)
    core2, ids = _day2(day1, rng, new_month=new_month)
    after = _ctx(core2, churn_months)
    full = _full(after)
    tables, reason, months = splice(after, _changed(before, ids), _full(before))
    assert reason is None
    assert len(months) < len(full["sales_monthly"])  # only some months were recomputed from orders
    for name, frame in full.items():
        pd.testing.assert_frame_equal(tables[name], frame, check_exact=True)
    # the splice changed something a stale table would not have (the test can fail)
    assert not full["customer_growth"].equals(
        _full(before)["customer_growth"].iloc[: len(full["customer_growth"])]
    )


def test_an_order_moved_from_an_old_month_into_a_new_one(day1: dict[str, pd.DataFrame]) -> None:
    before = _ctx(day1, 2)
    orders = day1["orders"].copy()
    last = orders["order_date"].max()
    next_month = (last + pd.offsets.MonthBegin(1)).normalize()
    # an order of the customer's first month: the customer's first month and the old month's sales change
    first_of = (
        before.orders[~before.orders["is_cancelled"]].sort_values("order_date").drop_duplicates("customer_id")
    )
    row = first_of.iloc[len(first_of) // 2]
    orders.loc[orders["order_id"] == row["order_id"], "order_date"] = next_month
    after = _ctx({**day1, "orders": orders}, 2)
    full = _full(after)
    tables, reason, months = splice(after, _changed(before, {str(row["order_id"])}), _full(before))
    assert reason is None
    old_month = f"{row['order_date']:%Y-%m}"
    assert months == [old_month, f"{next_month:%Y-%m}"]
    for name, frame in full.items():
        pd.testing.assert_frame_equal(tables[name], frame, check_exact=True)
    old = full["sales_monthly"].set_index("year_month")
    was = _full(before)["sales_monthly"].set_index("year_month")
    assert old.loc[old_month, "orders_placed"] == was.loc[old_month, "orders_placed"] - 1
    assert old.loc[f"{next_month:%Y-%m}", "orders_placed"] == 1


def test_a_range_that_starts_elsewhere_is_rebuilt_in_full(day1: dict[str, pd.DataFrame]) -> None:
    before = _ctx(day1, 2)
    orders = day1["orders"].copy()
    first = orders["order_date"].min()
    earlier = orders.index[orders["order_date"] == first][0]
    orders.loc[earlier, "order_date"] = first - pd.DateOffset(months=1)
    after = _ctx({**day1, "orders": orders}, 2)
    ids = {str(orders.loc[earlier, "order_id"])}
    tables, reason, _ = splice(after, _changed(before, ids), _full(before))
    assert tables == {} and reason is not None and "range of order months" in reason
    # through the builder: rebuilt in full, and equal to the full build
    from salesbi.incremental_reports import SpliceDecision

    decision = SpliceDecision()
    built = monthly_tables(_changed(before, ids), lambda: (_full(before), None), decision)(after)
    assert decision.spliced == {} and "range of order months" in decision.rebuilt["sales_monthly"]
    pd.testing.assert_frame_equal(built["sales_monthly"], monthly.build_sales_monthly(after))


def test_affected_months_are_the_new_and_old_dates(day1: dict[str, pd.DataFrame]) -> None:
    before = _ctx(day1, 2)
    orders = day1["orders"].copy()
    i = orders.index[10]
    old = orders.loc[i, "order_date"]
    orders.loc[i, "order_date"] = old + pd.DateOffset(months=3)
    after = _ctx({**day1, "orders": orders}, 2)
    got = affected_months(after, _changed(before, {str(orders.loc[i, "order_id"])}))
    assert got.tolist() == [old.year * 12 + old.month - 1, old.year * 12 + old.month - 1 + 3]


def test_previous_orders_read_from_core_are_what_the_fact_says(
    warehouse: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The old state read from core before a load equals the report context's orders (SQLite, PostgreSQL)."""
    from salesbi.incremental_reports import previous_orders
    from salesbi.params import PipelineParams
    from salesbi.pipeline import open_warehouse, run_pipeline

    root = tmp_path_factory.mktemp("previous_orders")
    generate_company(root / "day1", order_lines=3_000, seed=11)
    # a cancelled order whose first line is a return (a credit note) is not a cancelled sale
    items = pd.read_csv(root / "day1" / "order_items.csv", dtype=str, keep_default_na=False)
    orders = pd.read_csv(root / "day1" / "orders.csv", dtype=str, keep_default_na=False)
    order = orders.loc[orders["status"] == "cancelled", "order_id"].iloc[0]
    lines = items.index[items["order_id"] == order]
    first = lines[items.loc[lines, "line_number"].astype(int).argmin()]
    items.loc[first, "quantity"] = "-" + items.loc[first, "quantity"]
    items.to_csv(root / "day1" / "order_items.csv", index=False, lineterminator="\n")
    params = PipelineParams(
        source=root / "day1", warehouse_url=warehouse, out_dir=root / "out", steps=("ingest",)
    )
    run_pipeline(params)
    ctx = _ctx(core_frames(read_source(root / "day1", "canonical")), 2)
    expected = ctx.orders[COLS].sort_values("order_id", ignore_index=True)
    assert not expected.set_index("order_id").loc[order, "is_cancelled"]
    assert expected["is_cancelled"].any()
    engine, metadata = open_warehouse(params)
    try:
        got = previous_orders(engine, metadata, [*sorted(expected["order_id"]), "no such order"])
    finally:
        engine.dispose()
    got = got.sort_values("order_id", ignore_index=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert got["order_date"].dtype == expected["order_date"].dtype
