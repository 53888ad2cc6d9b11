"""Forecasting: honest accuracy on synthetic series, intervals, leakage, series building, tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesbi.errors import ConfigurationError
from salesbi.forecasting import forecast_sales, forecast_series
from salesbi.forecasting.baselines import fit_baselines, seasonal_naive
from salesbi.forecasting.engine import EngineOutput, _context, backtest_origins, run_engine
from salesbi.forecasting.evaluate import bias, mase, naive_mae, wape
from salesbi.forecasting.features import build_features
from salesbi.forecasting.lgbm import LightGBMConfig, fit_lightgbm
from salesbi.forecasting.series import (
    SeriesPanel,
    build_panel,
    build_series,
    choose_frequency,
    choose_horizon,
    country_code,
    normalize_frequency,
    to_month_end,
)
from salesbi.forecasting.synthetic import daily_panel, orders_fact
from salesbi.forecasting.tables import FORECAST_ACCURACY, SALES_FORECAST
from salesbi.rpt import rpt_table

FAST = LightGBMConfig(num_boost_round=120, max_train_rows=40_000)
H = 28


@pytest.fixture(scope="module")
def synthetic() -> tuple[SeriesPanel, SeriesPanel, EngineOutput]:
    """8 daily series over ~2.3 years; the engine sees all but the last 28 days (held out)."""
    full = daily_panel(8, 2 * 364 + 140, seed=3)
    t = full.n_periods - H
    seen = SeriesPanel("D", full.dates[:t], full.values[:, :t], full.meta)
    return full, seen, run_engine(seen, H, 3, 0, lgbm_config=FAST)


def test_lightgbm_beats_seasonal_naive_on_wape(
    synthetic: tuple[SeriesPanel, SeriesPanel, EngineOutput],
) -> None:
    full, seen, out = synthetic
    # recompute WAPE over the backtest independently, from the raw values
    errors: dict[str, float] = {}
    for model in ("lightgbm", "seasonal_naive"):
        num = den = 0.0
        for k, o in enumerate(out.origins):
            actual = seen.values[:, o + 1 : o + 1 + H]
            num += float(np.abs(actual - out.backtest[model][:, k, :]).sum())
            den += float(actual.sum())
        errors[model] = num / den
    assert errors["lightgbm"] < 0.9 * errors["seasonal_naive"]
    # and on the 28 held-out days nobody saw
    truth = full.values[:, seen.n_periods :]
    held = {
        m: float(np.abs(truth - out.future[m]).sum() / truth.sum()) for m in ("lightgbm", "seasonal_naive")
    }
    assert held["lightgbm"] < held["seasonal_naive"]
    # the per-series metric is the mean over origins of each origin's WAPE
    i = 0
    per_origin = [
        np.abs(out.actual[i, k] - out.backtest["lightgbm"][i, k]).sum() / out.actual[i, k].sum()
        for k in range(len(out.origins))
    ]
    assert out.metrics["lightgbm"]["wape"][i] == pytest.approx(np.mean(per_origin))


def test_interval_coverage_near_nominal(synthetic: tuple[SeriesPanel, SeriesPanel, EngineOutput]) -> None:
    full, seen, out = synthetic
    truth = full.values[:, seen.n_periods :]
    for level, tag in ((0.8, 80), (0.95, 95)):
        lo, hi = out.future_bounds["lightgbm"][level]
        held_out = float(((truth >= lo) & (truth <= hi)).mean())
        assert abs(held_out - level) <= 0.10, (level, held_out)
        # the coverage the backtest reports (each origin calibrated on the others)
        reported = float(np.mean(out.metrics["lightgbm"][f"coverage_{tag}"]))
        assert abs(reported - level) <= 0.10, (level, reported)
    lo80, hi80 = out.future_bounds["lightgbm"][0.8]
    lo95, hi95 = out.future_bounds["lightgbm"][0.95]
    assert np.all(lo95 <= lo80 + 1e-9) and np.all(hi95 >= hi80 - 1e-9)


def test_features_do_not_read_past_the_origin() -> None:
    panel = daily_panel(3, 500, seed=1)
    ctx = _context(panel, H)
    origin = 400
    rows = np.repeat(np.arange(3), H)
    steps = np.tile(np.arange(1, H + 1), 3)
    origins = np.full(len(rows), origin)
    before, scale_before = build_features(ctx, rows, origins, steps)
    altered = panel.values.copy()
    altered[:, origin + 1 :] = altered[:, origin + 1 :] * 5 + 1000  # change every later value
    ctx.values = altered
    after, scale_after = build_features(ctx, rows, origins, steps)
    pd.testing.assert_frame_equal(before, after)
    np.testing.assert_array_equal(scale_before, scale_after)
    # but the value at the origin itself is used: altering it changes lag_0
    altered[:, origin] += 500
    changed, _ = build_features(ctx, rows, origins, steps)
    assert not changed["lag_0"].equals(before["lag_0"])


def test_backtest_model_does_not_see_after_its_cutoff() -> None:
    """A model trained at a backtest origin predicts the same whatever happens after that origin."""
    panel = daily_panel(3, 420, seed=2)
    cfg = LightGBMConfig(num_boost_round=30, max_train_rows=5000)
    cutoff = 380
    ctx = _context(panel, 14)
    first = fit_lightgbm(ctx, cutoff, 14, cfg).predict(ctx, cutoff, 14)
    altered = panel.values.copy()
    altered[:, cutoff + 1 :] = 0.0
    ctx.values = altered
    second = fit_lightgbm(ctx, cutoff, 14, cfg).predict(ctx, cutoff, 14)
    np.testing.assert_array_equal(first, second)


def test_metrics_by_hand() -> None:
    a = np.array([10.0, 0.0, 30.0])
    f = np.array([12.0, 1.0, 24.0])
    assert wape(a, f) == pytest.approx((2 + 1 + 6) / 40)
    assert bias(a, f) == pytest.approx((2 + 1 - 6) / 40)
    # seasonal-naive MAE with season 2 of [1, 3, 2, 6]: |2-1|, |6-3| → 2
    assert naive_mae(np.array([1.0, 3.0, 2.0, 6.0]), 2) == pytest.approx(2.0)
    assert mase(a, f, 2.0) == pytest.approx(3.0 / 2.0)
    assert np.isnan(wape(np.zeros(3), f))


def test_seasonal_naive_repeats_last_season() -> None:
    y = np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert list(seasonal_naive(y, 5, 3)) == [8.0, 9.0, 10.0, 8.0, 9.0]
    # without a full season there is no seasonal naive (never "the last value" under its name)
    assert np.isnan(seasonal_naive(np.array([4.0, 5.0]), 3, 7)).all()


def test_baselines_that_cannot_be_fitted_are_not_candidates() -> None:
    zeros = np.zeros(60)
    out = fit_baselines(zeros, [40, 59], 5, 7, "D")
    assert out.status["ets_damped"] == "ok" and np.all(out.forecasts["theta"] == 0)
    short = np.array([5.0, 0.0, 3.0, 4.0, 0.0, 6.0, 2.0, 1.0, 0.0, 3.0, 4.0, 5.0, 6.0])
    out = fit_baselines(short, [5, 8, 12], 3, 12, "M")
    assert out.status["ets_damped"] == "not_candidate" and "too few" in out.notes["ets_damped"]
    assert out.status["seasonal_naive"] == "not_candidate" and "one season" in out.notes["seasonal_naive"]
    assert out.status["naive"] == "ok"
    assert out.forecasts["ets_damped"].shape == (3, 3)
    # NaN exactly where the model could not be fitted: 6 and 9 periods < 10; 13 periods fit
    assert (
        np.isnan(out.forecasts["ets_damped"][:2]).all() and np.isfinite(out.forecasts["ets_damped"][2]).all()
    )
    # seasonal naive: the first two origins lack a season of 12, the last has one (phase 12 back)
    assert np.isnan(out.forecasts["seasonal_naive"][:2]).all()
    assert list(out.forecasts["seasonal_naive"][2]) == [0.0, 3.0, 4.0]
    assert list(out.forecasts["naive"][0]) == [6.0, 6.0, 6.0]
    # window average: the mean of the last 12 months, only where 12 are known
    assert np.isnan(out.forecasts["window_average"][:2]).all()
    assert out.forecasts["window_average"][2] == pytest.approx([short[1:].mean()] * 3)


def test_frequency_from_density() -> None:
    dense, *_ = orders_fact(400, 30.0, seed=1)
    assert choose_frequency(dense["order_date"]) == "D"
    # ~2.5 orders a week over 2.5 years, like classicmodels (326 orders): monthly
    sparse, *_ = orders_fact(900, 0.36, seed=1)
    assert choose_frequency(sparse["order_date"]) == "M"
    weekly, *_ = orders_fact(900, 2.0, seed=1)  # ~14 orders a week, gaps on many days
    assert choose_frequency(weekly["order_date"]) == "W"
    assert choose_horizon("D", 900, 3) == 28


def test_a_default_daily_horizon_ends_on_a_month_end() -> None:
    # data to 31 Dec: 28 days would end on 28 Jan, a partial month; stretched to 31 Jan
    assert to_month_end(28, "D", pd.Timestamp("2025-12-31"), 900, 3) == 31
    # data to 15 Mar: 28 days end 12 Apr; stretched to 30 Apr (46 days)
    assert to_month_end(28, "D", pd.Timestamp("2025-03-15"), 900, 3) == 46
    assert to_month_end(28, "D", pd.Timestamp("2025-01-31"), 900, 3) == 28  # 28 Feb already is one
    assert to_month_end(28, "D", pd.Timestamp("2025-03-15"), 150, 3) == 28  # too little history to stretch
    assert to_month_end(8, "W", pd.Timestamp("2025-12-31"), 900, 3) == 8  # weeks and months unchanged
    assert choose_horizon("M", 29, 3) == 3
    assert choose_horizon("M", 15, 3) == 1
    assert normalize_frequency("monthly") == "M"
    with pytest.raises(ConfigurationError):
        normalize_frequency("fortnightly")


def test_missing_periods_are_zero_and_partial_last_period_dropped() -> None:
    long = pd.DataFrame(
        {
            "series_id": ["total"] * 4,
            "order_date": pd.to_datetime(["2024-01-05", "2024-01-20", "2024-04-02", "2024-05-10"]),
            "net_sales": [100.0, 50.0, 70.0, 30.0],
        }
    )
    meta = pd.DataFrame(
        {"series_id": ["total"], "series_level": ["total"], "series_name": ["All"], "country_code": [None]}
    )
    panel = build_panel(long, meta, "M")
    # May is not over on 10 May: dropped; February and March had no sales: zeros
    assert list(panel.dates.strftime("%Y-%m")) == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert panel.values.tolist() == [[150.0, 0.0, 0.0, 70.0]]
    weekly = build_panel(long, meta, "W", end=pd.Timestamp("2024-05-12"))
    assert weekly.n_periods == 19  # Monday 1 Jan 2024 .. Monday 6 May 2024
    assert weekly.values.sum() == 250.0
    assert int((weekly.values > 0).sum()) == 4


def test_series_levels_and_top_countries() -> None:
    fact, customers, product_lines, offices = orders_fact(120, 10.0, seed=4, countries=4)
    panel = build_series(fact, customers, product_lines, offices, "W", top_countries=2)
    ids = list(panel.meta["series_id"])
    assert ids[0] == "total"
    assert {"product_line:PL1", "product_line:PL2", "office:1", "office:2", "country:Other"} <= set(ids)
    countries = [i for i in ids if i.startswith("country:")]
    assert len(countries) == 3  # top 2 + Other
    total = panel.values[0]
    for level in ("product_line", "country", "office"):
        rows = (panel.meta["series_level"] == level).to_numpy()
        np.testing.assert_allclose(panel.values[rows].sum(axis=0), total)
    assert country_code("USA") == "US" and country_code("France") == "FR" and country_code("Atlantis") is None
    codes = dict(zip(panel.meta["series_id"], panel.meta["country_code"], strict=True))
    assert codes["office:1"] == "FR"


def test_forecast_sales_tables() -> None:
    fact, customers, product_lines, offices = orders_fact(500, 20.0, seed=5)
    result = forecast_sales(
        fact,
        customers,
        product_lines,
        offices,
        run_id="r1",
        frequency="W",
        horizon=4,
        top_countries=2,
        lgbm_config=FAST,
    )
    sf, acc = result.sales_forecast, result.forecast_accuracy
    assert list(sf.columns) == SALES_FORECAST.column_names
    assert list(acc.columns) == FORECAST_ACCURACY.column_names
    assert rpt_table("sales_forecast") is SALES_FORECAST
    assert not sf.duplicated(["series_id", "date"]).any()
    assert not acc.duplicated(["series_id", "model"]).any()
    assert (result.frequency, result.horizon) == ("W", 4)
    future = sf[sf["is_future"]]
    n_series = sf["series_id"].nunique()
    assert len(future) == 4 * n_series
    assert future["actual"].isna().all() and future["forecast"].notna().all()
    assert (future["lower_95"] <= future["upper_95"]).all()
    # history: actual equals the fact's net sales per week (independent pandas sum)
    hist = sf[(sf["series_id"] == "total") & ~sf["is_future"]].set_index("date")["actual"]
    weeks = fact["order_date"] - pd.to_timedelta(fact["order_date"].dt.day_of_week, unit="D")
    by_week = fact.groupby(weeks)["net_sales"].sum().round(2)
    np.testing.assert_allclose(hist.to_numpy(), by_week.reindex(hist.index).fillna(0).to_numpy(), atol=0.02)
    # one champion per series, and the published model is the champion
    champs = acc[acc["is_champion"]]
    assert len(champs) == n_series
    published = future.groupby("series_id")["model"].first()
    assert published.to_dict() == champs.set_index("series_id")["model"].to_dict()
    assert acc["n_origins"].eq(3).all()
    assert {r.model_name for r in result.model_runs} == {
        "forecast_lightgbm",
        "forecast_naive",
        "forecast_window_average",
        "forecast_seasonal_naive",
        "forecast_ets_damped",
        "forecast_theta",
    }
    # backtest rows of the history carry the champion's out-of-sample forecasts
    assert int(sf["is_backtest"].sum()) == 3 * 4 * n_series


def test_forecast_series_one_series() -> None:
    days = pd.date_range("2023-01-01", "2024-12-31", freq="D")
    rng = np.random.default_rng(0)
    sales = pd.Series(
        1000 + 200 * np.sin(2 * np.pi * days.day_of_year / 365.25) + rng.normal(0, 50, len(days)), index=days
    )
    monthly = forecast_series(sales, horizon=3, frequency="M")
    assert list(monthly["date"].dt.strftime("%Y-%m")) == ["2025-01", "2025-02", "2025-03"]
    assert (monthly["lower_80"] <= monthly["upper_80"]).all()
    # monthly totals are ~30 days × 1000
    assert monthly["forecast"].between(20_000, 40_000).all()


def test_backtest_origins_tile_the_last_horizons() -> None:
    assert backtest_origins(100, 10, 3, "D") == [69, 79, 89]
    assert backtest_origins(30, 3, 3, "M") == [20, 23, 26]
    assert backtest_origins(8, 3, 3, "M") == []


def test_forecast_series_picks_the_frequency_of_daily_totals() -> None:
    # one total per day, every day selling: daily (entry counts are not order counts)
    days = pd.date_range("2023-01-01", "2024-12-31", freq="D")
    rng = np.random.default_rng(1)
    daily = pd.Series(1000 + rng.normal(0, 50, len(days)), index=days)
    out = forecast_series(daily)
    assert out["date"].diff().dropna().eq(pd.Timedelta(days=1)).all()
    assert out["date"].min() == pd.Timestamp("2025-01-01")
    # monthly totals stay monthly; individual orders (several a day, a few a week) go by density
    months = pd.date_range("2021-01-01", "2024-12-01", freq="MS")
    monthly = forecast_series(pd.Series(30_000 + rng.normal(0, 1_000, len(months)), index=months))
    assert list(monthly["date"].dt.day.unique()) == [1] and monthly["date"].dt.month.nunique() == len(monthly)
    sparse_orders = pd.Series(100.0, index=pd.DatetimeIndex(days[::3].tolist() * 2))
    assert len(forecast_series(sparse_orders)) <= 8  # weekly or monthly, not 28 days
