"""The single-customer fast path of prediction gives exactly the batch path's features and answers."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from salesbi.prediction import predict_customer_sales, predict_from_history
from salesbi.prediction.features import FEATURES, customer_features_at, features_at, prepare
from salesbi.prediction.model import predict_frame
from salesbi.prediction.synthetic import synthetic_fact
from salesbi.segmentation.history import customer_lines, lines_from_fact, lines_from_history

CREATED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
HISTORY = ["order_id", "order_date", "net_sales", "is_cancelled", "product_line_id"]


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    fact, customers, employees, _ = synthetic_fact(400, seed=1)
    result = predict_customer_sales(fact, customers, employees=employees, boost_rounds=40, created_at=CREATED)
    ids = sorted(fact["customer_id"].astype(str).unique())
    sample = [str(c) for c in np.random.default_rng(5).choice(ids, size=50, replace=False)]
    return fact, result, sample


def same(a: Any, b: Any) -> bool:
    if a is None or a is pd.NA or (isinstance(a, float) and math.isnan(a)):
        return b is None or b is pd.NA or (isinstance(b, float) and math.isnan(b))
    return bool(a == b)


def api_history(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "order_id": str(r.order_id),
                "order_date": pd.Timestamp(r.order_date).date(),
                "net_sales": float(r.net_sales),
                "is_cancelled": bool(r.is_cancelled),
                "product_line_id": str(r.product_line_id),
            }
            for r in rows.itertuples()
        ]
    )


@pytest.mark.parametrize("cutoff", [date(2025, 1, 1), date(2024, 3, 17), date(2023, 8, 2)])
def test_fast_features_equal_the_batch_features(world, cutoff: date) -> None:  # type: ignore[no-untyped-def]
    fact, result, sample = world
    batch = features_at(prepare(lines_from_fact(fact)), cutoff, result.model.horizon_days)
    for cid in sample:
        rows = fact[fact["customer_id"] == cid]
        for history in (rows[HISTORY], api_history(rows)):
            fast = customer_features_at(customer_lines(history), cutoff, result.model.horizon_days)
            if cid not in batch.index:
                assert fast is None
                continue
            assert fast is not None
            assert list(fast) == list(FEATURES)
            for name in FEATURES:
                assert same(fast[name], batch.loc[cid, name]), (cid, cutoff, name)


def test_fast_features_on_shuffled_lines_equal_the_frame_path(world) -> None:  # type: ignore[no-untyped-def]
    fact, result, sample = world
    rng = np.random.default_rng(2)
    t = pd.Timestamp(result.model.as_of)
    for cid in sample[:25]:
        rows = fact[fact["customer_id"] == cid][HISTORY]
        history = rows.iloc[rng.permutation(len(rows))].astype({"order_id": object})
        history.loc[history.index[rng.random(len(history)) < 0.15], "order_id"] = None
        lines = lines_from_history(history)
        frame = features_at(prepare(lines[lines["order_date"] < t]), t, result.model.horizon_days)
        fast = customer_features_at(customer_lines(history), t, result.model.horizon_days)
        assert fast is not None
        for name in FEATURES:
            assert same(fast[name], frame.iloc[0][name]), (cid, name)


@pytest.mark.parametrize("sales_method", [None, "lightgbm", "naive_average"])
def test_fast_prediction_equals_the_batch(world, sales_method: str | None) -> None:  # type: ignore[no-untyped-def]
    """The stored model, and the same boosters forced to each sales method (drivers, interval, naive)."""
    fact, result, sample = world
    model = result.model
    if sales_method is not None:
        model = dataclasses.replace(model, sales_method=sales_method)
    t = pd.Timestamp(model.as_of)
    features = features_at(prepare(lines_from_fact(fact)), t, model.horizon_days)
    batch = predict_frame(features, model)
    published = result.customer_predictions.set_index("customer_id")
    for cid in sample:
        single = predict_from_history(api_history(fact[fact["customer_id"] == cid]), model)
        assert single["as_of_date"] == model.as_of
        for column in batch.columns:
            assert same(single[column], batch.loc[cid, column]), (cid, column)
            if sales_method is None:
                assert same(single[column], published.loc[cid, column]), (cid, column)
        for name in FEATURES:
            assert same(single["features"][name], features.loc[cid, name]), (cid, name)


def test_more_threads_give_the_same_predictions(world) -> None:  # type: ignore[no-untyped-def]
    fact, result, _ = world
    _, customers, employees, _ = synthetic_fact(400, seed=1)
    two = predict_customer_sales(
        fact, customers, employees=employees, boost_rounds=40, created_at=CREATED, threads=2
    )
    left = result.customer_predictions.drop(columns="model_version")
    right = two.customer_predictions.drop(columns="model_version")
    pd.testing.assert_frame_equal(left, right)
    assert two.model_runs[0].params["lightgbm"]["num_threads"] == 2
    assert two.model_runs[0].metrics["mae"] == result.model_runs[0].metrics["mae"]
