"""Fair backtests, honest intervals, frequency and week start that fit the data (issue 17)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from salesbi.errors import StepSkipped
from salesbi.forecasting import forecast_sales, forecast_series
from salesbi.forecasting.engine import MODELS, choose_champion, interval_scale, run_engine
from salesbi.forecasting.evaluate import _conformal_quantile, calibrate, conformal_rank, intervals
from salesbi.forecasting.lgbm import LightGBMConfig
from salesbi.forecasting.series import (
    SeriesPanel,
    build_series,
    frequency_choice,
    period_start,
    week_start_index,
)
from salesbi.forecasting.synthetic import orders_fact

FAST = LightGBMConfig(num_boost_round=60, max_train_rows=20_000)


def _brute_quantile(values: np.ndarray, q: float) -> float:
    """The conformal quantile by definition: with the next error one of n + 1 exchangeable ones,
    the smallest seen value v with P(next <= v) = #{x <= v} / (n + 1) >= q (upper), or the largest
    with #{x <= v} / (n + 1) <= q (lower); clipped to the seen range."""
    n = len(values)
    ordered = sorted(values)
    if q > 0.5:
        for v in ordered:
            if sum(x <= v for x in values) / (n + 1) >= q - 1e-12:
                return float(v)
        return float(ordered[-1])
    best = ordered[0]
    for v in ordered:
        if sum(x <= v for x in values) / (n + 1) <= q + 1e-12:
            best = v
    return float(best)


def test_conformal_quantile_is_the_right_order_statistic() -> None:
    rng = np.random.default_rng(7)
    errors = rng.permutation(np.arange(1.0, 25.0))  # 24 distinct errors 1..24
    # 90 % upper quantile of 24 errors: rank ceil(25 × 0.9) = 23, i.e. 23, not the maximum 24
    assert conformal_rank(24, 0.9) == 23
    assert _conformal_quantile(errors, 0.9) == 23.0
    assert _conformal_quantile(errors, 0.1) == 2.0  # floor(25 × 0.1) = 2nd smallest
    for n in (1, 2, 5, 9, 19, 24, 39, 100):
        values = rng.normal(size=n)
        for q in (0.025, 0.1, 0.9, 0.975):
            assert _conformal_quantile(values, q) == _brute_quantile(values, q), (n, q)


def test_intervals_nested_never_zero_width_and_missing_when_unknown() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 3, 6))
    groups = np.array(["a", "a", "b", "b"])
    factors, bounds = calibrate(z, np.ones_like(z, dtype=bool), groups)
    forecast = np.full((4, 6), 100.0)
    lo80, hi80 = intervals(forecast, np.full(4, 10.0), factors, bounds[0.8])
    lo95, hi95 = intervals(forecast, np.full(4, 10.0), factors, bounds[0.95])
    assert np.all(lo95 <= lo80) and np.all(hi95 >= hi80)
    assert np.all(hi80 - lo80 > 1.0)
    assert np.all((lo80 <= forecast) & (forecast <= hi80))
    # no residuals at all: unknown bounds stay NaN (never lower = upper = forecast)
    _, empty = calibrate(z, np.zeros_like(z, dtype=bool), groups)
    lo, hi = intervals(forecast, np.full(4, 10.0), factors, empty[0.8])
    assert np.isnan(lo).all() and np.isnan(hi).all()


def test_interval_scale_does_not_switch_at_a_year() -> None:
    rng = np.random.default_rng(3)
    values = 1000 + rng.normal(0, 100, size=(1, 160))
    values[0, 0] = 50_000.0  # one spike a year before: a seasonal difference would jump on it
    for origin in (50, 51, 52, 53, 60):
        hist = values[0, max(0, origin + 1 - 104) : origin + 1]
        expected = np.abs(np.diff(hist)).mean()
        assert interval_scale(values, origin, "W")[0] == pytest.approx(expected)
    after = interval_scale(values, 105, "W")[0]  # the spike has left the two-year window
    assert after == pytest.approx(np.abs(np.diff(values[0, 2:106])).mean())
    assert after < 200


def test_tie_rule_prefers_the_simpler_model() -> None:
    scores = {"lightgbm": (0.200, 1.0, 5.0), "ets_damped": (0.201, 1.0, 5.0), "naive": (0.30, 2.0, 9.0)}
    best, note = choose_champion(scores)
    assert best == "ets_damped" and "tie" in note
    best, _ = choose_champion({"lightgbm": (0.18, 1.0, 5.0), "ets_damped": (0.201, 1.0, 5.0)})
    assert best == "lightgbm"
    best, note = choose_champion({"naive": (0.30, 1.0, 5.0), "theta": (0.40, 1.0, 5.0)})
    assert best == "naive" and note.startswith("baseline")
    # a window without sales: MASE decides
    best, note = choose_champion({"naive": (math.nan, 1.5, 5.0), "theta": (math.nan, 1.2, 5.0)})
    assert best == "theta" and "MASE" in note


@pytest.fixture(scope="module")
def short_weekly() -> tuple[pd.DataFrame, object]:
    """42 weeks of orders: less than a yearly season of weeks, so no seasonal naive."""
    fact, customers, product_lines, offices = orders_fact(300, 20.0, seed=11)
    result = forecast_sales(
        fact,
        customers,
        product_lines,
        offices,
        run_id="r",
        frequency="W",
        horizon=4,
        top_countries=2,
        lgbm_config=FAST,
    )
    return fact, result


def test_published_champion_is_the_backtest_best(short_weekly: tuple[pd.DataFrame, object]) -> None:
    _, result = short_weekly
    sf, acc = result.sales_forecast, result.forecast_accuracy  # type: ignore[attr-defined]
    n_series = sf["series_id"].nunique()
    assert len(acc) == n_series * len(MODELS)  # every model has a row, candidate or not
    # seasonal naive needs 52 weeks: not a candidate anywhere, no scores
    sn = acc[acc["model"] == "seasonal_naive"]
    assert (sn["status"] == "not_candidate").all() and sn["wape"].isna().all() and not sn["is_champion"].any()
    for series_id, rows in acc.groupby("series_id"):
        cand = rows[rows["status"] == "ok"].set_index("model")
        best = cand["wape"].min()
        tied = [m for m in MODELS if m in cand.index and cand.loc[m, "wape"] <= best * 1.01 + 1e-12]
        champ = rows[rows["is_champion"]]
        assert list(champ["model"]) == [tied[0]], series_id
        published = sf[(sf["series_id"] == series_id) & sf["is_future"]]["model"].unique()
        assert list(published) == [tied[0]]
        # the champion's WAPE, recomputed from the published backtest rows (one window per origin)
        bt = sf[(sf["series_id"] == series_id) & sf["is_backtest"]].sort_values("date")
        assert list(bt["model"].unique()) == [tied[0]]
        windows = np.arange(len(bt)) // result.horizon  # type: ignore[attr-defined]
        per_origin = [
            (w["actual"] - w["forecast"]).abs().sum() / w["actual"].sum()
            for _, w in bt.groupby(windows)
            if w["actual"].sum() > 0
        ]
        assert float(champ["wape"].iloc[0]) == pytest.approx(np.mean(per_origin), abs=1e-4)
        # the coverage recorded is the share of published backtest actuals inside the interval
        inside = ((bt["actual"] >= bt["lower_80"] - 0.01) & (bt["actual"] <= bt["upper_80"] + 0.01)).mean()
        assert float(champ["coverage_80"].iloc[0]) == pytest.approx(inside, abs=1e-9)


def test_published_intervals_are_nested_and_open(short_weekly: tuple[pd.DataFrame, object]) -> None:
    _, result = short_weekly
    sf = result.sales_forecast  # type: ignore[attr-defined]
    fut = sf[sf["is_future"]]
    assert fut[["lower_80", "upper_80", "lower_95", "upper_95"]].notna().all().all()
    assert (fut["lower_95"] <= fut["lower_80"]).all() and (fut["upper_95"] >= fut["upper_80"]).all()
    assert (fut["lower_80"] <= fut["forecast"]).all() and (fut["forecast"] <= fut["upper_80"]).all()
    total = fut[fut["series_id"] == "total"]
    assert (total["upper_80"] - total["lower_80"] > 0.05 * total["forecast"]).all()


def test_without_a_backtest_intervals_are_missing_and_the_baseline_is_published() -> None:
    fact, customers, product_lines, offices = orders_fact(200, 20.0, seed=2)
    result = forecast_sales(
        fact,
        customers,
        product_lines,
        offices,
        run_id="r",
        frequency="W",
        horizon=4,
        backtest_origins=0,
        top_countries=1,
        lgbm_config=FAST,
    )
    fut = result.sales_forecast[result.sales_forecast["is_future"]]
    assert fut[["lower_80", "upper_80", "lower_95", "upper_95"]].isna().all().all()
    assert set(fut["model"]) == {"naive"}  # 28 weeks: no full season, so the plain naive
    assert fut["model_note"].str.startswith("baseline").all()
    total = fut[fut["series_id"] == "total"]["forecast"]
    weeks = period_start(fact["order_date"], "W")
    last_full = fact.groupby(weeks)["net_sales"].sum().iloc[-2]  # the last week is not over
    np.testing.assert_allclose(total.to_numpy(), round(last_full, 2), atol=0.01)


def test_engine_candidates_skip_models_missing_at_an_origin() -> None:
    rng = np.random.default_rng(5)
    values = np.abs(rng.normal(100, 20, size=(2, 60)))
    meta = pd.DataFrame(
        {
            "series_id": ["total", "product_line:A"],
            "series_level": ["total", "product_line"],
            "series_name": ["All", "A"],
            "country_code": [None, None],
        }
    )
    panel = SeriesPanel("W", pd.date_range("2024-01-01", periods=60, freq="7D"), values, meta)
    out = run_engine(panel, 4, 3, lgbm_config=FAST)
    assert out.origins == [47, 51, 55]
    # 48 periods at the first origin: no season of 52 there; the later origins have one, but a
    # model scored on two windows out of three is not comparable: not a candidate at all
    sn = out.backtest["seasonal_naive"]
    assert np.isnan(sn[:, 0]).all() and np.isfinite(sn[:, 1:]).all()
    assert out.status["seasonal_naive"] == ["not_candidate"] * 2
    assert np.isnan(out.metrics["seasonal_naive"]["wape"]).all()
    assert "seasonal_naive" not in out.champion
    assert all(np.isfinite(out.future[c][i]).all() for i, c in enumerate(out.champion))


def test_week_start_moves_the_weeks() -> None:
    fact, customers, product_lines, offices = orders_fact(120, 10.0, seed=4)
    sunday = build_series(fact, customers, product_lines, offices, "W", 2, week_start_index("SUN"))
    monday = build_series(fact, customers, product_lines, offices, "W", 2, week_start_index("MON"))
    assert set(sunday.dates.day_name()) == {"Sunday"} and set(monday.dates.day_name()) == {"Monday"}
    # Sunday weeks: the total of the week starting Sunday d is the sum of orders d..d+6 (pandas check)
    d = sunday.dates[3]
    in_week = fact[(fact["order_date"] >= d) & (fact["order_date"] < d + pd.Timedelta(days=7))]
    assert sunday.values[0, 3] == pytest.approx(in_week["net_sales"].sum())
    assert sunday.values[0, 3] != pytest.approx(monday.values[0, 3])
    with pytest.raises(Exception, match="week start"):
        week_start_index("FUNDAY")


def test_thin_history_switches_to_a_finer_frequency_or_skips() -> None:
    # two months of ~20 orders a day: monthly would have 2 periods; days are dense → daily
    dense, customers, product_lines, offices = orders_fact(61, 20.0, seed=1)
    freq, why = frequency_choice(dense["order_date"])
    assert freq == "D" and "months of history" in why
    result = forecast_sales(
        dense, customers, product_lines, offices, run_id="r", top_countries=1, lgbm_config=FAST
    )
    assert result.frequency == "D" and result.frequency_note == why
    assert result.sales_forecast["frequency"].eq("D").all()
    # two months of ~3 orders a week: no frequency has enough periods → the step is skipped
    sparse, *_ = orders_fact(61, 0.4, seed=1)
    assert frequency_choice(sparse["order_date"])[0] == "M"
    with pytest.raises(StepSkipped, match="only 2 full monthly periods"):
        forecast_sales(sparse, customers, product_lines, offices, run_id="r", lgbm_config=FAST)
    # a frequency asked for is never switched: too few weeks → skipped, not daily
    with pytest.raises(StepSkipped, match="weekly forecast needs at least 8"):
        forecast_sales(
            dense[dense["order_date"] < "2022-02-20"],
            customers,
            product_lines,
            offices,
            run_id="r",
            frequency="W",
            lgbm_config=FAST,
        )


def test_public_forecast_says_which_frequency_it_chose() -> None:
    months = pd.date_range("2021-01-01", "2024-12-01", freq="MS")
    rng = np.random.default_rng(1)
    out = forecast_series(pd.Series(30_000 + rng.normal(0, 1_000, len(months)), index=months))
    assert set(out["frequency"]) == {"M"}
    sundays = pd.date_range("2023-01-01", periods=80, freq="W-SUN")
    weekly = forecast_series(pd.Series(5_000 + rng.normal(0, 200, 80), index=sundays), frequency="W")
    assert set(weekly["frequency"]) == {"W"}
    assert set(weekly["date"].dt.day_name()) == {"Sunday"}  # the caller's weeks are kept
    assert weekly["date"].min() == sundays[-1] + pd.Timedelta(days=7)


def test_week_start_reaches_the_forecast_from_the_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    import salesbi.forecasting
    import salesbi.pipeline
    from salesbi import cli

    seen: dict[str, Any] = {}

    def fake_pipeline(params: Any, progress: Any = None) -> Any:
        seen["week_start"] = params.week_start
        return SimpleNamespace(as_dict=lambda: {"status": "succeeded", "tables": {}, "outputs": {}})

    monkeypatch.setattr(salesbi.pipeline, "run_pipeline", fake_pipeline)
    monkeypatch.setattr(cli, "_print_outputs", lambda summary: None)
    runner = CliRunner()
    args = ["run", "--source", str(tmp_path), "--out", str(tmp_path / "out"), "--steps", "ingest"]
    assert runner.invoke(cli.app, [*args, "--week-start", "sun"]).exit_code == 0
    assert seen["week_start"] == "SUN"
    assert runner.invoke(cli.app, args).exit_code == 0
    assert seen["week_start"] == "MON"
    assert runner.invoke(cli.app, [*args, "--week-start", "XYZ"]).exit_code == 2
    # and the pipeline's fit function hands it to forecast_sales
    captured: dict[str, Any] = {}
    monkeypatch.setattr(salesbi.forecasting, "forecast_sales", lambda *a, **k: captured.update(k))
    core = {name: pd.DataFrame() for name in ("customers", "product_lines", "offices")}
    params = salesbi.pipeline.PipelineParams(week_start="SAT")
    salesbi.pipeline.fit_forecast(pd.DataFrame(), core, params, "r")
    assert captured["week_start"] == "SAT"


@pytest.mark.slow
def test_a_run_on_two_sparse_months_skips_the_forecast_and_goes_on(tmp_path: Path) -> None:
    from salesbi.generate import generate_company
    from salesbi.params import PipelineParams
    from salesbi.pipeline import run_pipeline

    generate_company(tmp_path / "src", order_lines=100, seed=3, years=2 / 12)
    summary = run_pipeline(
        PipelineParams(
            source=tmp_path / "src",
            warehouse_url=f"sqlite:///{tmp_path / 'w.db'}",
            out_dir=tmp_path / "out",
            steps=("ingest", "reports", "forecast"),
        )
    ).as_dict()
    assert summary["status"] == "succeeded_with_warnings" and summary["failed_step"] is None
    text = json.dumps(summary)
    assert "forecast skipped: only 1 full monthly period of sales" in text
    assert "too sparse for a finer frequency" in text
    assert summary["outputs"]["rpt_tables"]["fact_order_lines"] == 100  # the reports were built


def test_refit_origins_spread_the_fits_and_never_look_ahead() -> None:
    from salesbi.forecasting.lgbm import refit_origins

    assert refit_origins([47, 51, 55], 1) == [47, 47, 47]
    assert refit_origins([47, 51, 55], 2) == [47, 47, 55]
    assert refit_origins([47, 51, 55], 3) == [47, 51, 55]
    assert refit_origins([47, 51, 55], 9) == [47, 51, 55]
    assert refit_origins([], 1) == []
    assert refit_origins([47, 51, 55], None) == [47, 51, 55]  # the default: one model per origin
    assert LightGBMConfig().backtest_fits is None
    for fits in range(1, 5):
        assert all(
            f <= o for f, o in zip(refit_origins([10, 20, 30, 40], fits), [10, 20, 30, 40], strict=True)
        )


def test_one_backtest_fit_forecasts_every_origin_from_what_it_saw(monkeypatch: pytest.MonkeyPatch) -> None:
    """backtest_fits=1: one LightGBM for the backtest (trained at the first origin) plus the final one."""
    import salesbi.forecasting.engine as engine
    import salesbi.forecasting.lgbm as lgbm

    rng = np.random.default_rng(6)
    values = np.abs(rng.normal(100, 20, size=(2, 60)))
    meta = pd.DataFrame(
        {
            "series_id": ["total", "product_line:A"],
            "series_level": ["total", "product_line"],
            "series_name": ["All", "A"],
            "country_code": [None, None],
        }
    )
    panel = SeriesPanel("W", pd.date_range("2024-01-01", periods=60, freq="7D"), values, meta)
    cutoffs: list[int] = []
    real = lgbm.fit_lightgbm
    monkeypatch.setattr(
        lgbm, "fit_lightgbm", lambda ctx, c, h, cfg: cutoffs.append(c) or real(ctx, c, h, cfg)
    )
    one = run_engine(panel, 4, 3, lgbm_config=LightGBMConfig(num_boost_round=60, backtest_fits=1))
    assert cutoffs == [47, 59]
    cutoffs.clear()
    every = run_engine(panel, 4, 3, lgbm_config=LightGBMConfig(num_boost_round=60, backtest_fits=3))
    assert cutoffs == [47, 51, 55, 59]
    # the first origin's window and the published future are the same model either way
    np.testing.assert_allclose(one.backtest["lightgbm"][:, 0], every.backtest["lightgbm"][:, 0])
    np.testing.assert_allclose(one.future["lightgbm"], every.future["lightgbm"])
    # a later window forecast by the stale model differs, and equals that model's forecast there
    stale = real(one_ctx := engine._context(panel, 4), 47, 4, LightGBMConfig(num_boost_round=60))
    np.testing.assert_allclose(one.backtest["lightgbm"][:, 2], stale.predict(one_ctx, 55, 4))
