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


def test_coverage_origins_add_earlier_origins_to_coverage_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--coverage-origins``: headline rows on the last origins; earlier ones with a backtest add coverage.

    One monthly series 0, 1, …, 9 and a fake engine forecasting the last value seen: the truth is
    always 1 above.  Its 80 % interval is ±1.5 at the earlier origins (covers) and ±0.5 at the
    last three (misses); its 95 % interval ±2 (covers); before period 5 it has no backtest.
    """
    from types import SimpleNamespace

    from salesbi.forecasting.engine import MODELS
    from salesbi.forecasting.series import SeriesPanel

    values = np.arange(10.0)[None, :]
    meta = pd.DataFrame({"series_id": ["total"], "series_level": ["total"], "series_name": ["All"]})
    panel = SeriesPanel("M", pd.date_range("2024-01-01", periods=10, freq="MS"), values, meta)
    monkeypatch.setattr(accuracy, "choose_frequency", lambda dates: "M")
    monkeypatch.setattr(accuracy, "choose_horizon", lambda f, n, k: 1)
    monkeypatch.setattr(accuracy, "panel_of", lambda data, f: panel)

    def engine(seen: SeriesPanel, horizon: int, *args: object, **kwargs: object) -> SimpleNamespace:
        cut = seen.n_periods
        fc = seen.values[:, -1:]
        half80 = 0.5 if cut >= 7 else 1.5
        bounds = {0.8: (fc - half80, fc + half80), 0.95: (fc - 2.0, fc + 2.0)}
        return SimpleNamespace(
            origins=[cut - 2] if cut >= 5 else [],
            seconds={},
            champion=[MODELS[0]],
            future=dict.fromkeys(MODELS, fc),
            future_bounds=dict.fromkeys(MODELS, bounds),
        )

    def baselines(seen: SeriesPanel, horizon: int) -> tuple[dict, dict, float]:  # type: ignore[type-arg]
        return {"Naive": seen.values[:, -1:]}, {}, 0.0

    monkeypatch.setattr(accuracy, "run_engine", engine)
    monkeypatch.setattr(accuracy, "statsforecast_run", baselines)
    headline_only = accuracy.forecast_benchmark(_dataset(), 3, 1)
    # WAPE 3 / (7 + 8 + 9); MASE 1 (the naive MAE of 0, 1, 2, … is 1)
    assert "| **champion (published)** | 0.125 | 1.000 | 0.000 | 1.000 |" in headline_only
    assert "Coverage over the last" not in headline_only
    text = accuracy.forecast_benchmark(_dataset(), 3, 1, coverage_origins=6)
    assert "| **champion (published)** | 0.125 | 1.000 | 0.000 | 1.000 |" in text  # headline unchanged
    # origins at periods 5 … 9 (period 4 has no backtest): 80 % covers 2 of 5, 95 % all
    assert "where the engine has a backtest (5 origins;" in text
    assert "| champion (published) | 0.400 | 1.000 | 5 |" in text
