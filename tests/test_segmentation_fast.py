"""The single-customer fast path of segmentation gives exactly the batch path's features and answers."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from salesbi.prediction.synthetic import synthetic_fact
from salesbi.segmentation import segment_customers, segment_from_history
from salesbi.segmentation.actions import recommend
from salesbi.segmentation.history import (
    BEHAVIOUR_COLUMNS,
    behaviour_features,
    customer_behaviour,
    customer_lines,
    customer_orders,
    lines_from_fact,
    lines_from_history,
    orders_from_lines,
)
from salesbi.segmentation.tables import CUSTOMER_SEGMENTS

CREATED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
HISTORY = ["order_id", "order_date", "net_sales", "is_cancelled", "product_line_id"]


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    fact, customers, employees, _ = synthetic_fact(400, seed=1)
    result = segment_customers(fact, customers, employees, random_state=0, created_at=CREATED)
    ids = sorted(fact["customer_id"].astype(str).unique())
    sample = [str(c) for c in np.random.default_rng(5).choice(ids, size=50, replace=False)]
    return fact, result, sample


def same(a: Any, b: Any) -> bool:
    """Exact equality, NaN equal to NaN and None, dates equal to their Timestamps."""
    if a is None or a is pd.NA or (isinstance(a, float) and math.isnan(a)):
        return b is None or b is pd.NA or (isinstance(b, float) and math.isnan(b))
    if isinstance(b, pd.Timestamp) and not isinstance(a, pd.Timestamp):
        return bool(pd.Timestamp(a) == b)
    return bool(a == b)


def variants(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The same history as a frame slice, as the API sends it (dates), and with ISO date strings."""
    records = [
        {
            "order_id": str(r.order_id),
            "order_date": pd.Timestamp(r.order_date).date(),
            "net_sales": float(r.net_sales),
            "is_cancelled": bool(r.is_cancelled),
            "product_line_id": str(r.product_line_id),
        }
        for r in rows.itertuples()
    ]
    iso = [{**r, "order_date": r["order_date"].isoformat()} for r in records]
    return {"frame": rows[HISTORY], "api": pd.DataFrame(records), "iso": pd.DataFrame(iso)}


def test_fast_behaviour_equals_the_batch_features(world) -> None:  # type: ignore[no-untyped-def]
    fact, result, sample = world
    as_of = result.model.as_of
    batch = behaviour_features(lines_from_fact(fact), as_of)
    for cid in sample:
        rows = fact[fact["customer_id"] == cid]
        for kind, history in variants(rows).items():
            fast = customer_behaviour(customer_lines(history), as_of)
            assert fast is not None
            for column in BEHAVIOUR_COLUMNS:
                assert same(fast[column], batch.loc[cid, column]), (cid, kind, column)


def test_fast_behaviour_at_an_earlier_date_equals_the_batch(world) -> None:  # type: ignore[no-untyped-def]
    fact, _, sample = world
    as_of = date(2024, 3, 17)
    batch = behaviour_features(lines_from_fact(fact), as_of)
    for cid in sample:
        fast = customer_behaviour(customer_lines(fact[fact["customer_id"] == cid][HISTORY]), as_of)
        if cid not in batch.index:
            assert fast is None
            continue
        assert fast is not None
        for column in BEHAVIOUR_COLUMNS:
            assert same(fast[column], batch.loc[cid, column]), (cid, column)


def test_fast_segment_equals_the_batch_row(world) -> None:  # type: ignore[no-untyped-def]
    fact, result, sample = world
    batch = result.customer_segments.set_index("customer_id")
    skip = {"customer_id", "customer_name", "country", "sales_rep_id", "as_of_date"}
    for cid in sample:
        rep = batch.loc[cid, "sales_rep_name"]
        for kind, history in variants(fact[fact["customer_id"] == cid]).items():
            single = segment_from_history(history, result.model, sales_rep_name=None if pd.isna(rep) else rep)
            assert single["as_of_date"] == result.model.as_of
            for column in CUSTOMER_SEGMENTS.column_names:
                if column not in skip:
                    assert same(single[column], batch.loc[cid, column]), (cid, kind, column)


def test_fast_orders_and_features_equal_the_frame_path_on_awkward_histories(world) -> None:  # type: ignore[no-untyped-def]
    """Shuffled lines (orders not contiguous), missing order ids, amount, no optional columns."""
    fact, _, sample = world
    rng = np.random.default_rng(11)
    for cid in sample[:25]:
        rows = fact[fact["customer_id"] == cid][HISTORY].reset_index(drop=True)
        shuffled = rows.iloc[rng.permutation(len(rows))].reset_index(drop=True)
        holes = shuffled.astype({"order_id": object, "product_line_id": object})
        holes.loc[rng.random(len(holes)) < 0.2, "order_id"] = None
        holes.loc[rng.random(len(holes)) < 0.2, "product_line_id"] = None
        bare = rows[["order_date", "net_sales"]].rename(columns={"net_sales": "amount"})
        strings = shuffled.astype({"order_date": str, "net_sales": str, "is_cancelled": object})
        for kind, history in (("shuffled", shuffled), ("holes", holes), ("bare", bare), ("strings", strings)):
            for as_of in (date(2024, 3, 17), date(2025, 1, 1)):
                lines = lines_from_history(history)
                fast_lines = customer_lines(history)
                keep = fast_lines.order_date < pd.Timestamp(as_of).to_datetime64()
                orders = orders_from_lines(lines[lines["order_date"] < pd.Timestamp(as_of)])
                fast_orders = customer_orders(fast_lines, keep)
                assert fast_orders.order_id == orders["order_id"].tolist(), (cid, kind)
                assert fast_orders.net_sales.tolist() == orders["net_sales"].tolist(), (cid, kind)
                assert fast_orders.is_cancelled.tolist() == orders["is_cancelled"].tolist(), (cid, kind)
                frame = behaviour_features(lines, as_of)
                fast = customer_behaviour(fast_lines, as_of)
                if frame.empty:
                    assert fast is None
                    continue
                assert fast is not None
                for column in BEHAVIOUR_COLUMNS:
                    assert same(fast[column], frame.iloc[0][column]), (cid, kind, as_of, column)


def test_no_order_before_the_as_of_date_is_a_clear_error(world) -> None:  # type: ignore[no-untyped-def]
    fact, result, sample = world
    history = fact[fact["customer_id"] == sample[0]][HISTORY]
    with pytest.raises(Exception, match="no order before"):
        segment_from_history(history, result.model, as_of=date(1999, 1, 1))


def test_action_without_a_rep_has_single_parentheses() -> None:
    _, detail, _ = recommend("Lost", "low", "high", 400, 2, 120.0, None)
    assert detail == (
        "Include in low-cost campaigns only; do not spend account-owner time (no sales rep assigned): "
        "spent $120 over 2 orders, 400 days quiet"
    )
    _, named, _ = recommend("Lost", "low", "high", 400, 2, 120.0, "Ann Lee")
    assert "(by Ann Lee): " in named
    _, call, _ = recommend("Lost", "high", "high", 400, 2, 120.0, None)
    assert call.startswith("Retention call (no sales rep assigned): ")
    assert "((" not in detail and "))" not in detail
