"""The forecast on a daily run (salesbi.incremental_forecast): the stored champions extended."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from salesbi import contract, modelstore
from salesbi.forecasting.series import SeriesPanel
from salesbi.generate import generate_company
from salesbi.generate.nextday import next_day_drop
from salesbi.incremental_forecast import (
    MIN_DRIFT_PERIODS,
    Extension,
    ForecastModel,
    extend_forecast,
    forecast_drift,
    prepare_extension,
    run_forecast_step,
)


def _core(folder: Path) -> dict[str, pd.DataFrame]:
    from salesbi.ingest import read_step
    from salesbi.types import conform

    data = read_step(folder, "canonical")
    return {t.name: conform(data.tables[t.name].frame, t) for t in contract.TABLES}


def _fact(core: dict[str, pd.DataFrame]) -> pd.DataFrame:
    from salesbi.reports.fact import build_fact_order_lines

    return build_fact_order_lines(core)


def _forecast(fact: pd.DataFrame, core: dict[str, pd.DataFrame], run_id: str = "r1", **kw: Any) -> Any:
    from salesbi.forecasting import forecast_sales

    return forecast_sales(
        fact, core["customers"], core["product_lines"], core["offices"], run_id=run_id, **kw
    )


@pytest.fixture(scope="module")
def fitted(sample_company: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The generated company's full forecast fit, its stored model folder, its core and fact."""
    core = _core(sample_company)
    fact = _fact(core)
    result = _forecast(fact, core)
    models = tmp_path_factory.mktemp("forecast_models")
    modelstore.save_all(result.models, models)
    return {"core": core, "fact": fact, "result": result, "models": models}


def test_the_stored_model_reproduces_the_fit_on_the_same_data(fitted: dict[str, Any]) -> None:
    result = fitted["result"]
    stored = modelstore.load_latest(fitted["models"], "sales_forecast")
    assert isinstance(stored, ForecastModel)
    # every kind of champion is exercised: LightGBM (the stored booster), ETS (stored smoothing),
    # Theta, and the three naive baselines
    assert set(stored.champions()) >= {"lightgbm", "ets_damped", "theta", "window_average"}
    assert stored.card()["metrics"]["series"] == len(stored.series)
    ext = prepare_extension(stored, fitted["fact"], fitted["core"], frequency=None, horizon=None)
    assert (ext.horizon, ext.new_periods) == (result.horizon, 0)
    assert forecast_drift(stored, ext) is None  # no period since the fit
    extended = extend_forecast(stored, ext, run_id="r1")
    # the same history: every row the same, the backtest rows as stored, the future recomputed
    pd.testing.assert_frame_equal(extended.sales_forecast, result.sales_forecast)
    accuracy = extended.forecast_accuracy
    assert (
        accuracy["note"]
        .str.endswith(
            f"stored backtest of forecast model {stored.version}"
            f" (fitted {stored.created_at[:10]}), not re-run"
        )
        .all()
    )
    pd.testing.assert_frame_equal(
        accuracy.drop(columns="note"), result.forecast_accuracy.drop(columns="note")
    )
    assert extended.model_runs == [] and extended.models == {}
    # the future rows really come from the extension: a changed champion changes them
    naive_rows = [i for i, s in enumerate(stored.series) if s["champion"] == "window_average"]
    stored.series[naive_rows[0]]["champion"] = "naive"
    other = extend_forecast(stored, ext, run_id="r1").sales_forecast
    sid = stored.series[naive_rows[0]]["series_id"]
    mine = other[(other["series_id"] == sid) & other["is_future"]]
    last_actual = ext.panel.values[naive_rows[0], -1]
    assert mine["forecast"].to_numpy() == pytest.approx(np.full(len(mine), round(last_actual, 2)))


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A generated company's day 1 and day 2 (snapshot drop), fitted daily on day 1 (cheap LightGBM)."""
    from salesbi.forecasting.lgbm import LightGBMConfig

    root = tmp_path_factory.mktemp("forecast_days")
    generate_company(root / "day1", order_lines=3_000, seed=11)
    drop = next_day_drop(root / "day1", root / "day2", kind="snapshot", seed=5)
    core1, core2 = _core(root / "day1"), _core(root / "day2")
    config = LightGBMConfig(num_boost_round=60, max_train_rows=20_000)
    result = _forecast(_fact(core1), core1, frequency="D", lgbm_config=config)
    models = root / "models"
    modelstore.save_all(result.models, models)
    return {"day": drop.day, "core2": core2, "fact2": _fact(core2), "result": result, "models": models}


def test_day2_extends_the_forecast_by_one_day(two_days: dict[str, Any]) -> None:
    day1 = two_days["result"]
    stored = modelstore.load_latest(two_days["models"], "sales_forecast")
    assert isinstance(stored, ForecastModel)
    ext = prepare_extension(stored, two_days["fact2"], two_days["core2"], frequency="D", horizon=None)
    assert ext.new_periods == 1 and ext.panel.dates[-1].date() == two_days["day"]
    # the horizon still ends on the month's last day: one step fewer (same month)
    assert ext.horizon == day1.horizon - 1
    day2 = extend_forecast(stored, ext, run_id="r2").sales_forecast
    f1, f2 = day1.sales_forecast, day2
    assert f2.loc[~f2["is_future"], "date"].max().date() == two_days["day"]
    assert f2.loc[f2["is_future"], "date"].min().date() == two_days["day"] + timedelta(days=1)
    assert f2.loc[f2["is_future"], "date"].max() == f1.loc[f1["is_future"], "date"].max()
    # the new day's actual is in the history, the stored backtest rows are as they were
    total = f2[(f2["series_id"] == "total") & (f2["date"].dt.date == two_days["day"])]
    assert total["actual"].iloc[0] == pytest.approx(round(float(ext.panel.values[0, -1]), 2))
    key = ["series_id", "date"]
    cols = ["forecast", "lower_80", "upper_80", "lower_95", "upper_95", "model", "horizon_step"]
    b1 = f1[f1["is_backtest"]].set_index(key)[cols]
    b2 = f2[f2["is_backtest"]].set_index(key)[cols]
    pd.testing.assert_frame_equal(b2, b1)
    # a baseline champion's new forecast is that baseline on the day-2 history (computed another way)
    from salesbi.forecasting.baselines import AVERAGE_WINDOW

    for i, s in enumerate(stored.series):
        fut = f2[(f2["series_id"] == s["series_id"]) & f2["is_future"]]
        assert (fut["model"] == s["champion"]).all()
        y = ext.panel.values[i]
        if s["champion"] == "naive":
            assert fut["forecast"].to_numpy() == pytest.approx(round(y[-1], 2))
        elif s["champion"] == "window_average":
            assert fut["forecast"].to_numpy() == pytest.approx(round(y[-AVERAGE_WINDOW["D"] :].mean(), 2))
        elif s["champion"] == "seasonal_naive":
            expected = np.resize(y[-7:], len(fut)).round(2)
            assert fut["forecast"].to_numpy() == pytest.approx(expected)
        assert (fut["lower_80"] <= fut["forecast"]).all() and (fut["forecast"] <= fut["upper_95"]).all()
    assert {s["champion"] for s in stored.series} & {"naive", "window_average", "seasonal_naive"}


def _extension_with(stored: ForecastModel, ext: Extension, extra: np.ndarray) -> Extension:
    """Return ``ext`` with ``extra`` (series, periods) appended after the stored model's last period."""
    p = ext.panel
    dates = pd.date_range(p.dates[0], periods=p.n_periods + extra.shape[1], freq="D")
    values = np.concatenate([p.values, extra], axis=1)
    return Extension(SeriesPanel(p.frequency, dates, values, p.meta), ext.horizon, extra.shape[1])


def test_drift_compares_the_error_since_the_fit_with_the_backtest_error(two_days: dict[str, Any]) -> None:
    stored = modelstore.load_latest(two_days["models"], "sales_forecast")
    assert isinstance(stored, ForecastModel)
    ext = prepare_extension(stored, two_days["fact2"], two_days["core2"], frequency="D", horizon=None)
    base = Extension(
        SeriesPanel("D", ext.panel.dates[:-1], ext.panel.values[:, :-1], ext.panel.meta), ext.horizon, 0
    )
    future = np.asarray(stored.future, dtype="float64")
    m = MIN_DRIFT_PERIODS["D"]
    assert forecast_drift(stored, _extension_with(stored, base, future[:, : m - 1])) is None  # too few days
    # the days since the fit exactly as forecast: no error, drift -100 %
    assert forecast_drift(stored, _extension_with(stored, base, future[:, :m])) == pytest.approx(-1.0)
    # cross-check on sales twice the forecast: WAPE 0.5 against the backtest WAPE of steps 1..m
    doubled = forecast_drift(stored, _extension_with(stored, base, 2 * future[:, :m]))
    a = np.asarray(stored.backtest["actual"])[:, :, :m]
    f = np.asarray(stored.backtest["forecast"])[:, :, :m]
    ok = np.isfinite(f)
    backtest_wape = np.abs(a[ok] - f[ok]).sum() / np.abs(a[ok]).sum()
    assert doubled == pytest.approx(0.5 / backtest_wape - 1)


@pytest.mark.parametrize(
    ("refit", "days_old", "drift", "frequency", "action", "reason"),
    [
        ("auto", 1, None, "D", "reuse", "stored model from"),
        ("never", 400, 5.0, "D", "reuse", "refit=never: stored model from"),
        ("auto", 8, None, "D", "refit", "older than 7 days"),
        ("auto", 1, 0.30, "D", "refit", "past the 25% threshold"),
        ("auto", 1, 0.25, "D", "reuse", "extended by 1 period"),
        ("always", 1, None, "D", "refit", "refit=always"),
        ("auto", 1, None, "W", "refit", "cannot be extended: the run asks for frequency W"),
        ("never", 1, None, "M", "refit", "cannot be extended"),
    ],
)
def test_forecast_refit_decision_table(
    two_days: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    refit: str,
    days_old: float,
    drift: float | None,
    frequency: str,
    action: str,
    reason: str,
) -> None:
    import salesbi.incremental_forecast as inc

    stored = modelstore.load_latest(two_days["models"], "sales_forecast")
    monkeypatch.setattr(inc, "forecast_drift", lambda model, ext: drift)
    calls: list[str] = []

    def fit() -> str:
        calls.append("fit")
        return "fitted"

    now = pd.Timestamp(stored.created_at).to_pydatetime() + timedelta(days=days_old)
    result, decision = run_forecast_step(
        fit,
        two_days["fact2"],
        two_days["core2"],
        run_id="r2",
        models_dir=two_days["models"],
        refit=refit,
        frequency=frequency,
        now=now,
    )
    assert decision.action == action and reason in decision.reason, decision.reason
    assert calls == (["fit"] if action == "refit" else [])
    assert decision.version == stored.version and decision.age_days == pytest.approx(days_old)
    if action == "reuse":
        assert result.horizon == two_days["result"].horizon - 1


def test_no_stored_forecast_model_fits(tmp_path: Path, two_days: dict[str, Any]) -> None:
    result, decision = run_forecast_step(
        lambda: "fitted", two_days["fact2"], two_days["core2"], run_id="r", models_dir=tmp_path
    )
    assert (result, decision.action, decision.reason) == ("fitted", "refit", "no stored model")


def test_a_longer_horizon_is_capped_at_the_stored_one(
    two_days: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import salesbi.forecasting.series as series
    from salesbi.incremental_forecast import CannotExtend

    stored = modelstore.load_latest(two_days["models"], "sales_forecast")
    assert isinstance(stored, ForecastModel)
    H = stored.horizon
    # a daily horizon that now runs to the end of the next month: the stored calibration stops at H
    monkeypatch.setattr(series, "to_month_end", lambda *args: H + 20)
    ext = prepare_extension(stored, two_days["fact2"], two_days["core2"], frequency="D", horizon=None)
    assert ext.horizon == H and f"a fit would choose {H + 20}" in ext.note
    future = extend_forecast(stored, ext, run_id="r").sales_forecast
    assert (future[future["is_future"]].groupby("series_id").size() == H).all()
    _, decision = run_forecast_step(
        lambda: "fitted",
        two_days["fact2"],
        two_days["core2"],
        run_id="r",
        models_dir=two_days["models"],
        frequency="D",
        now=pd.Timestamp(stored.created_at).to_pydatetime(),
    )
    assert decision.action == "reuse" and f"horizon {H} (the stored calibration's" in decision.reason
    # a horizon the run asks for beyond the stored one: refit
    with pytest.raises(CannotExtend, match="past the stored model's"):
        prepare_extension(stored, two_days["fact2"], two_days["core2"], frequency="D", horizon=H + 1)


def test_run_summary_markdown_says_how_each_model_step_decided() -> None:
    from salesbi.run_report import render_run_markdown

    reason = "refit=auto: stored model from 2026-11-30 extended by 1 period(s)"
    summary = {
        "run_id": "r2",
        "status": "succeeded",
        "tables": {},
        "outputs": {
            "model_decisions": {
                "forecast": {"action": "reuse", "reason": reason},
                "predictions": {"action": "refit", "reason": "stored model older than 7 days"},
            }
        },
    }
    md = render_run_markdown(summary, {})
    assert f"- forecast: reuse ({reason})" in md
    assert "- predictions: refit (stored model older than 7 days)" in md
