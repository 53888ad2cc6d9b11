"""The forecast's LightGBM fits: early stopping, rounds reused by later fits, fits side by side (issue 18)."""

from __future__ import annotations

import warnings
from dataclasses import replace

import lightgbm as lgb
import numpy as np
import pytest

from salesbi.forecasting.engine import _context, run_engine
from salesbi.forecasting.features import CATEGORICAL, build_features
from salesbi.forecasting.lgbm import LightGBMConfig, fit_lightgbm, fit_models, training_rows
from salesbi.forecasting.synthetic import daily_panel

CFG = LightGBMConfig(
    num_boost_round=150, max_train_rows=8_000, learning_rate=0.2, early_stopping_rounds=10, min_rounds=1
)
H = 14


@pytest.fixture(scope="module")
def panel():  # type: ignore[no-untyped-def]
    return daily_panel(3, 420, seed=5, noise=0.4)


def _validation_curve(ctx, cutoff: int, cfg: LightGBMConfig) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The validation L1 of every round, trained without early stopping on the same split."""
    rows, origins, steps = training_rows(
        ctx.values.shape[0], cutoff, H, ctx.frequency, cfg.max_train_rows, cfg.random_state
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        x, scale = build_features(ctx, rows, origins, steps)
    y = ctx.values[rows, origins + steps] / scale
    recent = origins + steps > cutoff - H
    train = lgb.Dataset(x[~recent], label=y[~recent], categorical_feature=CATEGORICAL)
    valid = lgb.Dataset(x[recent], label=y[recent], reference=train)
    history: dict[str, dict[str, list[float]]] = {}
    lgb.train(
        cfg.params(int((~recent).sum())),
        train,
        num_boost_round=cfg.num_boost_round,
        valid_sets=[valid],
        valid_names=["v"],
        callbacks=[lgb.record_evaluation(history)],
    )
    return np.asarray(history["v"]["l1"])


def test_early_stopping_keeps_the_best_round_on_the_recent_targets(panel) -> None:  # type: ignore[no-untyped-def]
    ctx = _context(panel, H)
    cutoff = 380
    fitted = fit_lightgbm(ctx, cutoff, H, CFG)
    curve = _validation_curve(ctx, cutoff, CFG)
    best = int(np.argmin(curve)) + 1
    # the curve checked independently: the first round at the minimum, not improved on within 10 rounds
    assert fitted.rounds == best
    assert fitted.booster is not None and fitted.booster.best_iteration == best
    assert fitted.rounds < CFG.num_boost_round  # with a high learning rate it does stop early
    # validated on the rows whose target is in the last H days up to the cutoff, trained on the others
    _, origins, steps = training_rows(3, cutoff, H, "D", 8_000, 0)
    assert fitted.n_validation == int((origins + steps > cutoff - H).sum()) > 0
    assert fitted.n_train + fitted.n_validation == len(origins)


def test_early_stopping_keeps_at_least_min_rounds(panel) -> None:  # type: ignore[no-untyped-def]
    """The kept round is the best at or after min_rounds, however early the curve bottoms out."""
    ctx = _context(panel, H)
    curve = _validation_curve(ctx, 380, CFG)
    floor = int(np.argmin(curve)) + 20  # past the overall best: the floor decides
    fitted = fit_lightgbm(ctx, 380, H, replace(CFG, min_rounds=floor))
    assert fitted.rounds == floor + int(np.argmin(curve[floor - 1 :]))
    assert fitted.rounds >= floor
    assert fitted.booster is not None and fitted.booster.best_iteration == fitted.rounds


def test_no_early_stopping_below_the_validation_minimum(panel) -> None:  # type: ignore[no-untyped-def]
    ctx = _context(panel, H)
    cfg = replace(CFG, min_validation_rows=10**6)
    fitted = fit_lightgbm(ctx, 380, H, cfg)
    assert fitted.n_validation == 0
    assert fitted.rounds == cfg.num_boost_round
    assert fitted.booster is not None and fitted.booster.current_iteration() == cfg.num_boost_round
    off = fit_lightgbm(ctx, 380, H, replace(CFG, early_stopping_rounds=None))
    assert off.n_validation == 0 and off.rounds == CFG.num_boost_round


def test_later_fits_reuse_the_earliest_fits_rounds_on_all_their_rows(panel) -> None:  # type: ignore[no-untyped-def]
    ctx = _context(panel, H)
    fitted, rounds = fit_models(ctx, [394, 366, 380], H, CFG)
    assert sorted(fitted) == [366, 380, 394]
    assert rounds == fit_lightgbm(ctx, 366, H, CFG).rounds
    for cutoff in (380, 394):
        model = fitted[cutoff]
        assert model.n_validation == 0 and model.rounds == rounds
        assert model.booster is not None and model.booster.current_iteration() == rounds
        assert model.n_train == len(training_rows(3, cutoff, H, "D", 8_000, 0)[0])
    # no early stopping at the earliest fit: none at the later ones either (the configured rounds)
    fixed, none = fit_models(ctx, [366, 380], H, replace(CFG, min_validation_rows=10**6, num_boost_round=20))
    assert none is None
    assert [m.rounds for m in fixed.values()] == [20, 20] and all(m.n_validation == 0 for m in fixed.values())


def test_workers_fit_the_same_models(panel) -> None:  # type: ignore[no-untyped-def]
    """Fits side by side in threads (and beside the baselines) give the same forecasts as one at a time."""
    one = run_engine(panel, H, 3, lgbm_config=replace(CFG, workers=1))
    two = run_engine(panel, H, 3, lgbm_config=replace(CFG, workers=2))
    np.testing.assert_array_equal(one.backtest["lightgbm"], two.backtest["lightgbm"])
    np.testing.assert_array_equal(one.future["lightgbm"], two.future["lightgbm"])
    assert one.champion == two.champion
    assert one.lgbm_rounds == two.lgbm_rounds and one.lgbm_rounds is not None
    assert one.lgbm_validation_rows > 0


def test_threads_reach_lightgbm(panel) -> None:  # type: ignore[no-untyped-def]
    ctx = _context(panel, H)
    fitted = fit_lightgbm(ctx, 380, H, replace(CFG, num_threads=2, num_boost_round=5))
    assert fitted.booster is not None
    assert fitted.booster.params["num_threads"] == 2
    assert LightGBMConfig(num_threads=3).params(1000)["num_threads"] == 3


def test_pipeline_passes_workers_and_threads_to_both_model_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """model_workers (default: the usable cores) and model_threads reach the fits of both steps."""
    import os

    import salesbi.forecasting
    import salesbi.prediction
    from salesbi.params import PipelineParams, available_cores
    from salesbi.pipeline import fit_forecast, fit_predictions

    assert available_cores() == len(os.sched_getaffinity(0))
    assert PipelineParams().fit_workers == available_cores()
    seen: dict[str, object] = {}
    monkeypatch.setattr(salesbi.forecasting, "forecast_sales", lambda *a, **k: seen.update(forecast=k))
    monkeypatch.setattr(salesbi.prediction, "predict_customer_sales", lambda *a, **k: seen.update(predict=k))
    params = PipelineParams(model_workers=3, model_threads=2)
    core = {"customers": None, "employees": None, "product_lines": None, "offices": None}
    fit_forecast(None, core, params, "run")
    fit_predictions(None, core, params)
    config = seen["forecast"]["lgbm_config"]  # type: ignore[index]
    assert (config.workers, config.num_threads) == (3, 2)
    assert (seen["predict"]["workers"], seen["predict"]["threads"]) == (3, 2)  # type: ignore[index]


def test_model_run_says_how_many_rounds_were_fitted() -> None:
    """forecast_lightgbm's params record the rounds and how they were chosen."""
    from salesbi.forecasting import forecast_sales
    from salesbi.forecasting.synthetic import orders_fact

    fact, customers, product_lines, offices = orders_fact(500, 20, seed=1)
    cfg = replace(CFG, num_boost_round=60, min_rounds=5, max_train_rows=5_000)
    runs = {}
    for name, config in (("stopped", cfg), ("fixed", replace(cfg, early_stopping_rounds=None))):
        result = forecast_sales(
            fact, customers, product_lines, offices, run_id="r", top_countries=1, lgbm_config=config
        )
        runs[name] = next(r for r in result.model_runs if r.model_name == "forecast_lightgbm").params
    assert 5 <= runs["stopped"]["boost_rounds"] <= 60
    assert runs["stopped"]["boost_rounds_chosen_by"].startswith("early stopping at the earliest fit")
    assert runs["fixed"]["boost_rounds"] == 60
    assert runs["fixed"]["boost_rounds_chosen_by"] == "fixed (no early stopping)"
