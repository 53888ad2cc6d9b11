"""Customer prediction at long horizons (one calibration window), champions, calibrated probabilities."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss

from salesbi.prediction import predict_customer_sales, predict_from_history
from salesbi.prediction.model import platt_apply, platt_fit
from salesbi.prediction.predict import choose_methods, out_of_fold_platt, top_decile_share
from salesbi.prediction.synthetic import synthetic_fact

CREATED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
ROUNDS = 40


@pytest.fixture(scope="module")
def company() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return synthetic_fact(1000, seed=3)


@pytest.fixture(scope="module")
def weeks78(company):  # type: ignore[no-untyped-def]
    """The last 78 weeks of the company, predicted 39 weeks ahead: the classic CLV split."""
    fact, customers, employees, _ = company
    start = pd.Timestamp("2024-12-31") - pd.Timedelta(weeks=78)
    short = fact[fact["order_date"] >= start]
    result = predict_customer_sales(
        short, customers, employees=employees, horizon_days=273, boost_rounds=ROUNDS, created_at=CREATED
    )
    return short, result


def test_39_weeks_ahead_on_78_weeks_uses_one_calibration_window(weeks78) -> None:  # type: ignore[no-untyped-def]
    short, result = weeks78
    model = result.model
    m = model.metrics
    assert model.status == "ok" and m["design"] == "one_calibration_window"
    assert m["eval_window"] == ["2024-04-02", "2024-12-30"]
    # every candidate was scored on the same holdout customers; the champion has the lowest RMSE
    assert set(m["rmse"]) == {"lightgbm", "bgnbd", "naive_last_window", "naive_average"}
    order = ("naive_average", "naive_last_window", "bgnbd", "lightgbm")  # exact ties: the simpler
    ranked = sorted(m["rmse"], key=lambda k: (m["rmse"][k], order.index(k)))
    assert m["sales_method"] == ranked[0] and m["sales_runner_up"] == ranked[1]
    baselines = {k: m["rmse"][k] for k in ("naive_average", "naive_last_window")}
    assert m["sales_baseline"] == min(baselines, key=baselines.get)
    # a calibration period no longer than the horizon: both baselines are the calibration spend
    assert m["rmse"]["naive_average"] == m["rmse"]["naive_last_window"]
    # LightGBM (with BG/NBD features) beats copying the calibration spend on RMSE and MAE
    assert m["sales_method"] == "lightgbm"
    assert m["rmse"]["lightgbm"] < 0.9 * baselines["naive_average"]
    assert m["mae"]["lightgbm"] < m["mae"]["naive_average"]
    assert set(result.customer_predictions["method"]) == {m["sales_method"]}
    # the holdout is half the customers known at the calibration end (the other half trains LightGBM)
    calibration_end = pd.Timestamp("2024-04-02")
    known = short[short["order_date"] < calibration_end]["customer_id"].nunique()
    assert m["eval_customers"] == known - known // 2
    # rank metrics and the total are recorded beside RMSE for every candidate
    assert all(0.5 < m["spearman"][k] < 1.0 for k in ranked)
    assert all(0.3 < m["top_decile_share"][k] < 0.8 for k in ranked)
    assert abs(m["total_error"]["bgnbd"]) < 0.1  # BG/NBD × Gamma-Gamma gets the total right
    assert model.params["btyd"]["bgnbd"]["r"] > 0 and model.params["btyd"]["gamma_gamma"]["q"] > 1


def test_single_customer_matches_batch_with_btyd_features(weeks78) -> None:  # type: ignore[no-untyped-def]
    short, result = weeks78
    batch = result.customer_predictions.set_index("customer_id")
    for cid in batch.index[:6]:
        history = short[short["customer_id"] == cid][
            ["order_id", "order_date", "net_sales", "is_cancelled", "product_line_id"]
        ]
        single = predict_from_history(history, result.model)
        for column in ("predicted_sales", "order_probability", "churn_risk", "method"):
            assert single[column] == batch.loc[cid, column], (cid, column)


def test_published_probabilities_are_calibrated_out_of_sample(company) -> None:  # type: ignore[no-untyped-def]
    """Predict at a past date, then look at what the customers did in the next 90 days."""
    fact, customers, employees, _ = company
    as_of = pd.Timestamp("2024-05-01")  # before the generator's planted returns (regained personas)
    result = predict_customer_sales(
        fact, customers, employees=employees, as_of=as_of.date(), boost_rounds=ROUNDS, created_at=CREATED
    )
    m = result.model.metrics
    briers = {k: v for k, v in m["brier"].items() if k not in m.get("probability_excluded", {})}
    assert m["probability_method"] == min(briers, key=briers.get)
    assert m["probability_method"] != "naive_rate"
    frame = result.customer_predictions.set_index("customer_id")
    future = fact[
        (fact["order_date"] >= as_of)
        & (fact["order_date"] < as_of + pd.Timedelta(days=90))
        & ~fact["is_cancelled"]
    ]
    ordered = frame.index.isin(future["customer_id"].unique()).astype(int)
    p = frame["order_probability"].to_numpy()
    # the published probability is calibrated on the future window nobody saw
    assert abs(p.mean() - ordered.mean()) < 0.05, (p.mean(), ordered.mean())
    base = ordered.mean() * (1 - ordered.mean())  # Brier of the constant true rate
    assert brier_score_loss(ordered, p) < 0.6 * base
    # churn-risk bands: observed order rates fall from low to medium to high risk
    rates = pd.Series(ordered, index=frame.index).groupby(frame["churn_risk"]).mean()
    assert set(rates.index) == {"high", "medium", "low"}
    assert rates["high"] < rates["medium"] < rates["low"]
    # and each band's observed rate is near the band's probability range (0-0.3, 0.3-0.6, 0.6-1)
    assert rates["high"] < 0.3 and 0.25 < rates["medium"] < 0.65 and rates["low"] > 0.6


def test_platt_recovers_a_known_distortion() -> None:
    rng = np.random.default_rng(0)
    true = rng.uniform(0.02, 0.98, 20_000)
    y = (rng.random(20_000) < true).astype(int)
    logit = np.log(true / (1 - true))
    distorted = 1 / (1 + np.exp(-(0.5 * logit + 1.0)))  # over-confident toward ordering
    slope, intercept = platt_fit(distorted, y)
    assert slope == pytest.approx(2.0, rel=0.08) and intercept == pytest.approx(-2.0, rel=0.1)
    fixed = platt_apply(distorted, slope, intercept)
    assert brier_score_loss(y, fixed) < brier_score_loss(y, distorted) - 0.01
    oof = out_of_fold_platt(distorted, y, 0)
    assert abs(oof.mean() - y.mean()) < 0.01


def test_platt_fit_reaches_scikit_learns_logistic_regression() -> None:
    from sklearn.linear_model import LogisticRegression

    from salesbi.prediction.model import _logit

    rng = np.random.default_rng(3)
    for n, a, b in ((20_000, 0.5, 1.0), (5_000, 1.3, -0.2), (200, 3.0, 0.5)):
        true = rng.uniform(0.02, 0.98, n)
        y = (rng.random(n) < true).astype(int)
        p = 1 / (1 + np.exp(-(a * np.log(true / (1 - true)) + b)))
        slope, intercept = platt_fit(p, y)
        ref = LogisticRegression(C=1e6, max_iter=1000, tol=1e-10).fit(_logit(p)[:, None], y)
        assert slope == pytest.approx(ref.coef_[0, 0], rel=1e-4, abs=1e-5)
        assert intercept == pytest.approx(ref.intercept_[0], rel=1e-4, abs=1e-5)
    assert platt_fit(np.array([0.2, 0.7]), np.array([1, 1])) == (1.0, 0.0)  # one class: identity


def test_top_decile_share_by_hand() -> None:
    y = np.array([10.0, 0, 0, 0, 0, 0, 0, 0, 0, 90.0])
    assert top_decile_share(y, np.arange(10.0)) == pytest.approx(0.9)  # ranks customer 10 first
    assert top_decile_share(y, -np.arange(10.0)) == pytest.approx(0.1)
    assert top_decile_share(np.zeros(3), np.ones(3)) is None


def _probability_metrics(brier: dict[str, float], auc: dict[str, float | None]) -> dict[str, object]:
    sales = {"naive_average": 10.0, "naive_last_window": 11.0, "bgnbd": 9.0, "lightgbm": 9.5}
    return {"rmse": sales, "brier": brier, "roc_auc": auc}


def test_probability_champion_needs_rank_skill() -> None:
    """The generated benchmark's case: calibration shrank a non-ranking LightGBM to the base rate."""
    brier = {"naive_rate": 0.1865, "bgnbd": 0.1811, "lightgbm": 0.2042, "lightgbm_calibrated": 0.1685}
    auc = {"naive_rate": 0.641, "bgnbd": 0.671, "lightgbm": 0.552, "lightgbm_calibrated": 0.474}
    chosen = choose_methods(_probability_metrics(brier, auc), thin=False)
    assert chosen["probability_method"] == "bgnbd"  # best Brier among those that rank
    assert set(chosen["probability_excluded"]) == {"lightgbm", "lightgbm_calibrated"}
    assert chosen["probability_runner_up"] == "naive_rate"
    assert chosen["probability_baseline"] == "naive_rate"
    assert chosen["sales_method"] == "bgnbd"
    # with rank skill the Brier score decides: the calibrated model wins
    auc_ok = {**auc, "lightgbm": 0.70, "lightgbm_calibrated": 0.70}
    chosen = choose_methods(_probability_metrics(brier, auc_ok), thin=False)
    assert chosen["probability_method"] == "lightgbm_calibrated" and "probability_excluded" not in chosen
    # within the slack below the baseline's AUC a candidate stays; the floor holds however bad the baseline
    near = {**auc, "lightgbm_calibrated": 0.625}
    assert (
        choose_methods(_probability_metrics(brier, near), False)["probability_method"]
        == "lightgbm_calibrated"
    )
    weak = {"naive_rate": 0.50, "bgnbd": 0.54, "lightgbm": 0.60, "lightgbm_calibrated": 0.53}
    chosen = choose_methods(_probability_metrics(brier, weak), thin=False)
    assert chosen["probability_method"] == "lightgbm"
    assert set(chosen["probability_excluded"]) == {"naive_rate", "bgnbd", "lightgbm_calibrated"}


def test_probability_champion_when_nothing_ranks_falls_back_to_brier() -> None:
    brier = {"naive_rate": 0.25, "bgnbd": 0.24, "lightgbm": 0.26, "lightgbm_calibrated": 0.23}
    auc: dict[str, float | None] = {
        "naive_rate": 0.5,
        "bgnbd": 0.51,
        "lightgbm": None,
        "lightgbm_calibrated": 0.5,
    }
    chosen = choose_methods(_probability_metrics(brier, auc), thin=False)
    assert chosen["probability_method"] == "lightgbm_calibrated" and "probability_excluded" not in chosen
    # thin data: the naive rate alone, whatever its AUC
    assert choose_methods(_probability_metrics(brier, auc), thin=True)["probability_method"] == "naive_rate"


def test_published_probability_ranks_on_generated_data(weeks78) -> None:  # type: ignore[no-untyped-def]
    _, result = weeks78
    m = result.model.metrics
    published = m["probability_method"]
    assert published not in m.get("probability_excluded", {})
    assert m["roc_auc"][published] >= 0.55


def test_cutoff_frames_are_computed_once(company, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The holdout model's and the final model's origins overlap: one BG/NBD fit per cutoff."""
    import salesbi.prediction.predict as predict
    from salesbi.prediction.features import prepare
    from salesbi.segmentation.history import lines_from_fact

    fact = company[0]
    prepared = prepare(lines_from_fact(fact))
    fits: list[int] = []
    real = predict.fit_btyd
    monkeypatch.setattr(predict, "fit_btyd", lambda x, start=None: fits.append(len(x)) or real(x, start))
    e = prepared.end - pd.Timedelta(days=89)
    cache = predict.CutoffFrames(prepared, 90)
    eval_cutoffs = predict.origins(e - pd.Timedelta(days=90), prepared.start, 90)
    final_cutoffs = predict.origins(e, prepared.start, 90)
    first = predict.training_frame(prepared, eval_cutoffs, 90, cache)
    second = predict.training_frame(prepared, final_cutoffs, 90, cache)
    assert len(fits) == len(set(eval_cutoffs) | set(final_cutoffs)) < len(eval_cutoffs) + len(final_cutoffs)
    # the same rows as computing each cutoff from scratch (BG/NBD columns to the optimiser's tolerance)
    alone = predict.training_frame(prepared, final_cutoffs[-2:], 90)
    shared = second[second["origin"].isin(final_cutoffs[-2:])]
    pd.testing.assert_frame_equal(
        shared.drop(columns=list(predict.BTYD_FEATURES)), alone.drop(columns=list(predict.BTYD_FEATURES))
    )
    np.testing.assert_allclose(shared["btyd_sales"], alone["btyd_sales"], rtol=0.02, atol=1.0)
    assert len(first) > 0


def test_final_model_fits_only_the_published_boosters(company, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """BG/NBD sales with a LightGBM probability: one final booster, the same predictions as four."""
    import salesbi.prediction.predict as predict

    fact, customers, employees, _ = company
    real_choose, real_fit = predict.choose_methods, predict.fit_boosters

    def choose(metrics, thin):  # type: ignore[no-untyped-def]
        return {**real_choose(metrics, thin), "sales_method": "bgnbd", "probability_method": "lightgbm"}

    monkeypatch.setattr(predict, "choose_methods", choose)
    args = {"employees": employees, "horizon_days": 273, "boost_rounds": ROUNDS, "created_at": CREATED}
    start = pd.Timestamp("2024-12-31") - pd.Timedelta(weeks=78)
    short = fact[fact["order_date"] >= start]
    lean = predict.predict_customer_sales(short, customers, **args)
    assert set(lean.model.boosters) == {"order"}
    assert set(lean.model.files()) == {"model.json", "order.txt"}
    monkeypatch.setattr(
        predict,
        "fit_boosters",
        lambda train, rs, rounds, threads=1, names=(), workers=1: real_fit(train, rs, rounds, threads),
    )
    full = predict.predict_customer_sales(short, customers, **args)
    assert set(full.model.boosters) == {"sales", "order", "q10", "q90"}
    pd.testing.assert_frame_equal(
        lean.customer_predictions.drop(columns="model_version"),
        full.customer_predictions.drop(columns="model_version"),
    )
    assert predict.published_boosters("lightgbm", "bgnbd") == ("sales", "q10", "q90")
    assert predict.published_boosters("naive_average", "naive_rate") == ()
