"""bench/accuracy.py's own arithmetic: the series it builds and the scores it prints.

The benchmark's data sets (CDNOW in lifetimes, bike sales in pytimetk) and statsforecast are
bench-only dependencies; these tests use hand-made orders and numbers instead.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import accuracy


def _dataset() -> accuracy.Dataset:
    # Monday 2024-01-01 … Wednesday 2024-01-17: weeks of Jan 1 and Jan 8 complete, Jan 15 not
    orders = pd.DataFrame(
        {
            "customer_id": ["a", "b", "a", "b", "a", "b"],
            "order_id": ["1", "2", "3", "4", "5", "6"],
            "order_date": pd.to_datetime(
                ["2024-01-01", "2024-01-07", "2024-01-09", "2024-01-14", "2024-01-15", "2024-01-17"]
            ),
            "net_sales": [10.0, 5.0, 7.0, 1.0, 100.0, 100.0],
            "band": ["x", "y", "x", "x", "y", "y"],
        }
    )
    fact = accuracy._fact(orders)
    return accuracy.Dataset(
        "t", "test", fact, accuracy._customers(fact["customer_id"]), {"band": "band"}, date(2024, 1, 18)
    )


def test_panel_sums_per_week_and_drops_the_incomplete_last_week() -> None:
    panel = accuracy.panel_of(_dataset(), "W")
    assert list(panel.dates) == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-08")]
    assert panel.meta["series_id"].tolist() == ["total", "band:x", "band:y"]
    # by hand: week 1 = 10 + 5, week 2 = 7 + 1; x = 10 | 7 + 1, y = 5 | 0
    np.testing.assert_allclose(panel.values, [[15.0, 8.0], [10.0, 8.0], [5.0, 0.0]])
    np.testing.assert_allclose(panel.values[1:].sum(axis=0), panel.values[0])


def test_period_start_of_weeks_and_months() -> None:
    dates = pd.Series(pd.to_datetime(["2024-01-07", "2024-01-08", "2024-02-29"]))
    assert accuracy.period_start(dates, "W").dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-01",
        "2024-01-08",
        "2024-02-26",
    ]
    assert accuracy.period_start(dates, "M").dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-01",
        "2024-01-01",
        "2024-02-01",
    ]


def test_score_pools_wape_averages_mase_and_counts_coverage() -> None:
    score = accuracy.Score()
    truth = np.array([[10.0, 20.0], [0.0, 4.0]])
    fc = np.array([[12.0, 14.0], [1.0, 4.0]])
    history = np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 6.0]])
    bounds = {80: (fc - 3.0, fc + 3.0), 95: (fc - 10.0, fc + 10.0)}
    score.add(truth, fc, history, season=52, bounds=bounds)
    name, wape, mase, c80, c95 = score.row("m")
    assert name == "m"
    assert wape == pytest.approx((2 + 6 + 1 + 0) / (10 + 20 + 0 + 4))
    # season longer than the history: naive scale, MAE (2+6)/2 / mean(|2|,|1|) and (1+0)/2 / mean(0, 1)
    assert mase == pytest.approx(np.mean([4.0 / 1.5, 0.5 / 0.5]))
    assert (c80, c95) == (0.75, 1.0)  # |20 − 14| = 6 > 3: one of four points outside the 80 % band
    score.add(truth, fc, history, season=52, bounds=None)  # an origin without intervals
    assert score.row("m")[3:] == (0.75, 1.0)  # coverage over the points that had intervals only
    assert score.row("m")[1] == pytest.approx(wape)
