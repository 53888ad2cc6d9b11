"""rpt.sales_forecast_monthly: month sums of the period forecasts, intervals made for the month total."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from salesbi.forecasting.monthly import build_monthly_forecast, conformal_multiplier
from salesbi.reports.dims import build_dim_date, extend_dim_date


def _frame(start: str, periods: int, freq: str, *, future_from: int, noise: float = 10.0) -> pd.DataFrame:
    step = {"D": "D", "W": "W-MON"}[freq]
    dates = pd.date_range(start, periods=periods, freq=step)
    rng = np.random.default_rng(0)
    point = np.full(periods, 100.0)
    actual = point + rng.normal(0, noise, periods)
    future = np.arange(periods) >= future_from
    return pd.DataFrame(
        {
            "series_id": "total",
            "series_level": "total",
            "series_name": "All sales",
            "date": dates,
            "frequency": freq,
            "actual": np.where(future, np.nan, actual),
            "forecast": point,
            "lower_80": point - 1.2816 * noise,
            "upper_80": point + 1.2816 * noise,
            "is_future": future,
            "is_backtest": ~future,
            "model": "theta",
            "run_id": "r1",
        }
    )


def test_month_point_is_the_sum_and_the_interval_is_not_summed_quantiles() -> None:
    frame = _frame("2024-01-01", 730, "D", future_from=700)  # backtest history, future from 2025-12-01
    months = build_monthly_forecast(frame)
    fut = months[months["is_future"]]
    dec = fut[fut["month_start"] == pd.Timestamp("2025-12-01")].iloc[0]
    assert dec["forecast"] == pytest.approx(3000.0)  # 30 days x 100
    assert not dec["is_complete"] and "partial" in dec["coverage_note"]  # 2025-12-01 .. 12-30
    summed_width = 30 * (2 * 1.2816 * 10.0)
    width = dec["upper_80"] - dec["lower_80"]
    # independent daily errors: the month's 80 % half-width is ~1.28 * 10 * sqrt(30), far below the sum
    assert width < summed_width / 3
    assert dec["lower_95"] <= dec["lower_80"] <= dec["forecast"] <= dec["upper_80"] <= dec["upper_95"]
    assert (
        dec["interval_method"] == "conformal_month" and dec["calibration_months"] == 23
    )  # Jan 2024 .. Nov 2025
    past = months[~months["is_future"]]
    inside = ((past["actual"] >= past["lower_80"]) & (past["actual"] <= past["upper_80"])).mean()
    assert 0.6 <= inside <= 1.0


def test_a_week_across_two_months_is_split_by_days() -> None:
    frame = _frame("2025-01-06", 60, "W", future_from=52)  # weekly, Mondays
    months = build_monthly_forecast(frame)
    fut = months[months["is_future"]]
    assert fut["forecast"].sum() == pytest.approx(8 * 100.0)
    first = frame[frame["is_future"]]["date"].min()
    first_month = fut.iloc[0]
    days_in_first = (first + pd.offsets.MonthEnd(0) - first).days + 1
    assert first_month["forecast"] == pytest.approx(100.0 * days_in_first / 7, abs=0.01)


def test_conformal_multiplier_needs_enough_scores() -> None:
    assert conformal_multiplier(np.arange(1.0, 10.0), 0.95) is None  # 9 < 19 scores
    assert conformal_multiplier(np.arange(1.0, 20.0), 0.95) == 19.0
    assert conformal_multiplier(np.arange(1.0, 11.0), 0.80) == 9.0  # ceil(11 * 0.8) = 9


def test_dim_date_is_extended_over_the_forecast_horizon() -> None:
    """Defect 2: dim_date ended 2025-12-31 and every forecast month from 2026-01 matched nothing."""
    dim = build_dim_date(date(2023, 3, 1), date(2025, 6, 30))
    assert dim["date"].max() == pd.Timestamp("2025-12-31")
    longer = extend_dim_date(dim, date(2026, 3, 31))
    assert longer["date"].min() == pd.Timestamp("2023-01-01")
    assert longer["date"].max() == pd.Timestamp("2026-12-31")
    assert longer["date"].is_unique and len(longer) == 365 * 4 + 1
    assert extend_dim_date(longer, date(2026, 1, 31)) is longer
