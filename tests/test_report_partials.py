"""Issue 18 memory: the report's per-block partial aggregates (``salesbi.reports.partials``), by hand.

The whole build is held to the old one in tests/test_report_blocks.py; here the pieces: whole
cents (exact, refused when not cents), distinct pairs across blocks, the 12-month windows at
their edges, and integer-cent sums against pandas' double sums rounded to cents.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesbi.reports.partials import PairSet, ProductPartials, distinct, whole_cents


def test_whole_cents_are_exact_and_anything_else_is_refused() -> None:
    values = np.array([1.1, -2.35, 0.0, 0.07, 123456789.99])
    assert whole_cents(values, "x").tolist() == [110, -235, 0, 7, 12345678999]
    with pytest.raises(ValueError, match="not whole cents"):
        whole_cents(np.array([0.125]), "net_sales")
    with pytest.raises(ValueError, match="not whole cents"):
        whole_cents(np.array([np.inf]), "cost")


def test_distinct_pairs_across_blocks() -> None:
    assert distinct(np.array([5, 1, 5, 3, 1], dtype=np.int64)).tolist() == [1, 3, 5]
    pairs = PairSet()
    pairs.add(np.array([0, 0, 1, -1, 2]), np.array([7, 7, 7, 9, -1]))  # -1 on either side: left out
    pairs.add(np.array([0, 1, 1]), np.array([8, 7, 2**32 - 1]))  # (1, 7) seen in the first block
    assert pairs.counts(4).tolist() == [2, 2, 0, 0]


def _block(rows: list[tuple[str, str, str, str, float, float, float | None]]) -> tuple[pd.DataFrame, ...]:
    """Return (block, order_no, orders) for lines (order, customer, product, date, qty, sales, cost)."""
    f = pd.DataFrame(rows, columns=["order_id", "customer_id", "product_id", "order_date", "q", "s", "c"])
    block = pd.DataFrame(
        {
            "order_id": f["order_id"].astype("string"),
            "product_id": f["product_id"].astype("string"),
            "product_line_id": pd.Series(["L"] * len(f), dtype="string"),
            "order_date": pd.to_datetime(f["order_date"]).astype("datetime64[s]"),
            "is_cancelled": np.zeros(len(f), dtype=bool),
            "quantity": f["q"].astype("Int64"),
            "net_sales": f["s"].astype("float64"),
            "cost": f["c"].astype("float64"),
            "discount_amount": np.zeros(len(f)),
        }
    )
    codes, _ = pd.factorize(f["order_id"])
    orders = pd.DataFrame(
        {"customer_id": f.groupby(codes)["customer_id"].first().astype("string").to_numpy()}
    )
    return block, codes.astype(np.int64), orders


def test_windows_distinct_counts_and_unknown_cost_by_hand() -> None:
    partials = ProductPartials()
    partials.add(
        *_block(
            [
                ("O1", "C1", "P1", "2023-06-30", 1, 10.0, 4.0),  # the day before the last 12 months
                ("O1", "C1", "P2", "2023-06-30", 2, 5.5, None),  # no cost: P2's cost is unknown
                ("O2", "C2", "P1", "2023-07-01", 3, 1.25, 1.0),  # the first day of the last 12 months
            ]
        )
    )
    partials.add(
        *_block(
            [
                ("O3", "C1", "P1", "2024-06-30", 1, 2.0, 1.5),  # the last day before as-of
                ("O4", "C3", "P1", "2024-07-01", 1, 100.0, 0.0),  # the as-of day: in no window
                ("O4", "C3", "P2", "2024-07-01", 1, 0.3, None),
            ]
        )
    )
    t = partials.product.table(
        pd.Timestamp("2023-07-01"), pd.Timestamp("2022-07-01"), pd.Timestamp("2024-07-01")
    )
    assert t.index.tolist() == ["P1", "P2"] and t.index.name == "product_id"
    p1, p2 = t.loc["P1"], t.loc["P2"]
    assert (p1["orders"], p1["customers"], p1["units"]) == (4, 3, 6.0)  # O1..O4; C1, C2, C3
    assert (p2["orders"], p2["customers"], p2["units"]) == (2, 2, 3.0)
    assert (p1["net_sales"], p1["cost"], p1["gross_profit"]) == (113.25, 6.5, 106.75)
    assert p1["sales_last_12m"] == 3.25 and p1["sales_prior_12m"] == 10.0
    assert np.isnan(p2["cost"]) and np.isnan(p2["gross_profit"]) and p2["net_sales"] == 5.8
    assert partials.products_per_line().to_dict() == {"L": 2}


def test_integer_cent_sums_equal_pandas_double_sums_rounded_to_cents() -> None:
    """Many whole-cent amounts in several blocks: the integer sum / 100 is pandas' sum rounded."""
    rng = np.random.default_rng(18)
    n = 60_000
    cents = rng.integers(-50_000, 5_000_000, n)
    amounts = np.round(cents / 100.0, 2)
    product = rng.choice(np.array(["P1", "P2", "P3"]), n)
    partials = ProductPartials()
    for start in range(0, n, 7_000):
        stop = min(start + 7_000, n)
        rows = [
            (f"O{i}", f"C{i % 50}", product[i], "2024-01-15", 1, float(amounts[i]), float(amounts[i]) / 2)
            for i in range(start, stop)
        ]
        block, order_no, orders = _block(rows)
        block["cost"] = np.round(block["cost"], 2)
        partials.add(block, order_no, orders)
    t = partials.product.table(
        pd.Timestamp("2023-07-01"), pd.Timestamp("2022-07-01"), pd.Timestamp("2024-07-01")
    )
    frame = pd.DataFrame({"p": product, "s": amounts, "c": np.round(amounts / 2, 2)})
    by_pandas = frame.groupby("p").sum()
    assert t["net_sales"].tolist() == by_pandas["s"].round(2).tolist()
    assert t["cost"].tolist() == by_pandas["c"].round(2).tolist()
    assert t["sales_last_12m"].tolist() == t["net_sales"].tolist()
    assert t["net_sales"].tolist() == [
        float(np.round(c / 100, 2)) for c in pd.Series(cents).groupby(product).sum()
    ]
