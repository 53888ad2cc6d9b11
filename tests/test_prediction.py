"""Customer sales prediction: beats naive baselines, no leakage, honest thin-data fallback, batch = single."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salesbi.errors import ConfigurationError
from salesbi.modelstore import versions
from salesbi.prediction import load_latest, predict_customer_sales, predict_from_history, save
from salesbi.prediction.features import features_at, prepare, targets_at
from salesbi.prediction.model import StoredModel
from salesbi.prediction.synthetic import synthetic_fact
from salesbi.prediction.tables import CUSTOMER_PREDICTIONS
from salesbi.segmentation.history import lines_from_fact

CREATED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
ROUNDS = 40


@pytest.fixture(scope="module")
def company() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return synthetic_fact(1000, seed=3)


@pytest.fixture(scope="module")
def result(company):  # type: ignore[no-untyped-def]
    fact, customers, employees, _ = company
    return predict_customer_sales(
        fact, customers, employees=employees, boost_rounds=ROUNDS, created_at=CREATED
    )


def test_frame_matches_the_table(result) -> None:  # type: ignore[no-untyped-def]
    frame = result.customer_predictions
    assert list(frame.columns) == CUSTOMER_PREDICTIONS.column_names
    assert frame["customer_id"].is_unique
    assert (frame["method"] == "lightgbm").all()
    assert (frame["predicted_sales_low"] <= frame["predicted_sales"]).all()
    assert (frame["predicted_sales"] <= frame["predicted_sales_high"]).all()
    assert frame["order_probability"].between(0, 1).all()
    assert frame["top_drivers"].str.count(r"\(([+-])\)").eq(3).all()
    assert frame["sales_rep_name"].notna().all()
    assert (frame["window_end"] - frame["as_of_date"]).dt.days.eq(89).all()


def test_beats_both_naive_baselines(result, company) -> None:  # type: ignore[no-untyped-def]
    runs = {r.model_name: r for r in result.model_runs}
    sales = runs["customer_sales"]
    assert sales.status == "ok"
    mae = sales.metrics["mae"]
    assert mae["lightgbm"] < mae["naive_last_window"]
    assert mae["lightgbm"] < mae["naive_average"]
    order = runs["customer_order_probability"]
    assert order.metrics["roc_auc"]["lightgbm"] > order.metrics["roc_auc"]["naive_rate"]
    assert order.metrics["brier"]["lightgbm"] < order.metrics["brier"]["naive_rate"]
    cal = order.metrics["calibration"]
    assert sum(b["customers"] for b in cal) == order.metrics["eval_customers"]
    # cross-check the last-window baseline's MAE with plain pandas
    fact = company[0]
    as_of = pd.Timestamp(fact["order_date"].max()) + pd.Timedelta(days=1)
    e = as_of - pd.Timedelta(days=90)
    placed = fact[~fact["is_cancelled"]]
    seen = fact[fact["order_date"] < e]["customer_id"].unique()
    actual = (
        placed[(placed["order_date"] >= e) & (placed["order_date"] < as_of)]
        .groupby("customer_id")["net_sales"]
        .sum()
    )
    last = placed[(placed["order_date"] >= e - pd.Timedelta(days=90)) & (placed["order_date"] < e)]
    last = last.groupby("customer_id")["net_sales"].sum()
    idx = pd.Index(seen)
    err = (actual.reindex(idx).fillna(0) - last.reindex(idx).fillna(0)).abs().mean()
    assert mae["naive_last_window"] == pytest.approx(err, abs=1e-3)
    assert order.metrics["eval_customers"] == len(idx)


def test_features_at_a_cutoff_ignore_everything_after_it(company) -> None:  # type: ignore[no-untyped-def]
    fact = company[0]
    lines = lines_from_fact(fact)
    cutoff = pd.Timestamp("2024-06-15")
    full = features_at(prepare(lines), cutoff, 90)
    truncated = features_at(prepare(lines[lines["order_date"] < cutoff]), cutoff, 90)
    pd.testing.assert_frame_equal(full, truncated)
    # and the targets do see the future: the window after the cutoff has sales
    assert targets_at(prepare(lines), cutoff, 90, full.index)["target_sales"].sum() > 0


def test_predictions_at_a_past_date_ignore_later_data(company) -> None:  # type: ignore[no-untyped-def]
    fact, customers, _, _ = company
    as_of = date(2024, 7, 1)
    a = predict_customer_sales(fact, customers, as_of=as_of, boost_rounds=ROUNDS, created_at=CREATED)
    cut = fact[fact["order_date"] < pd.Timestamp(as_of)]
    b = predict_customer_sales(cut, customers, as_of=as_of, boost_rounds=ROUNDS, created_at=CREATED)
    pd.testing.assert_frame_equal(a.customer_predictions, b.customer_predictions)
    assert a.model.version == b.model.version


def test_same_inputs_same_model_version(company, result) -> None:  # type: ignore[no-untyped-def]
    fact, customers, employees, _ = company
    again = predict_customer_sales(
        fact, customers, employees=employees, boost_rounds=ROUNDS, created_at=CREATED
    )
    assert again.model.version == result.model.version
    assert again.model.version.startswith("20250102T030405Z-")
    pd.testing.assert_frame_equal(again.customer_predictions, result.customer_predictions)


def test_single_customer_matches_batch(company, result) -> None:  # type: ignore[no-untyped-def]
    fact = company[0]
    batch = result.customer_predictions.set_index("customer_id")
    for cid in batch.index[:12]:
        history = fact[fact["customer_id"] == cid][
            ["order_id", "order_date", "net_sales", "is_cancelled", "product_line_id"]
        ]
        single = predict_from_history(history, result.model)
        for column in (
            "predicted_sales",
            "predicted_sales_low",
            "predicted_sales_high",
            "order_probability",
            "churn_risk",
            "top_drivers",
            "last_window_sales",
            "avg_window_sales",
            "method",
        ):
            assert single[column] == batch.loc[cid, column], (cid, column)
        assert single["as_of_date"] == batch.loc[cid, "as_of_date"].date()


def test_store_round_trip_prunes_and_predicts_the_same(tmp_path: Path, company, result) -> None:  # type: ignore[no-untyped-def]
    model = result.model
    folder = save(model, tmp_path)
    assert folder == tmp_path / "customer_sales" / model.version
    assert {p.name for p in folder.iterdir()} == {
        "card.json",
        "model.json",
        "sales.txt",
        "order.txt",
        "q10.txt",
        "q90.txt",
    }
    loaded = load_latest(tmp_path, "customer_sales")
    assert isinstance(loaded, StoredModel)
    assert loaded.version == model.version and loaded.metrics["mae"] == model.metrics["mae"]
    fact = company[0]
    cid = result.customer_predictions["customer_id"].iloc[0]
    history = fact[fact["customer_id"] == cid]
    assert predict_from_history(history, loaded) == predict_from_history(history, model)
    # seven more versions, one second apart: only the newest five stay, oldest pruned
    for i in range(7):
        copy = dataclasses.replace(model)
        copy.stamp(CREATED + timedelta(seconds=i + 1))
        save(copy, tmp_path, keep=5)
    kept = versions(tmp_path, "customer_sales")
    assert len(kept) == 5 and kept == sorted(kept)
    assert kept[-1].startswith("20250102T030412Z-")
    assert load_latest(tmp_path, "customer_sales").version == kept[-1]


def test_load_latest_without_models_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no stored model 'customer_sales'"):
        load_latest(tmp_path, "customer_sales")


def test_thin_data_fall_back_to_the_naive_baseline_and_say_so() -> None:
    fact, customers, employees, _ = synthetic_fact(60, seed=5)
    res = predict_customer_sales(
        fact, customers, employees=employees, boost_rounds=ROUNDS, created_at=CREATED
    )
    runs = {r.model_name: r for r in res.model_runs}
    assert runs["customer_sales"].status == "too_thin"
    assert runs["customer_order_probability"].status == "too_thin"
    assert "customers to evaluate on (need 200)" in runs["customer_sales"].notes
    frame = res.customer_predictions
    assert frame["note"].str.startswith("Too thin for a reliable model").all()
    assert frame["method"].isin(["naive_last_window", "naive_average"]).all()
    assert frame["predicted_sales_low"].isna().all() and frame["top_drivers"].isna().all()
    assert res.model.boosters == {}
    # the chosen baseline is the one with the lower holdout RMSE, and its value is recomputed here
    rmse = runs["customer_sales"].metrics["rmse"]
    assert "lightgbm" not in rmse  # no model fitted on thin data (BG/NBD is scored, not published)
    method = frame["method"].iloc[0]
    assert rmse[method] == min(rmse["naive_last_window"], rmse["naive_average"])
    column = "last_window_sales" if method == "naive_last_window" else "avg_window_sales"
    assert np.allclose(frame["predicted_sales"], frame[column])
    as_of = pd.Timestamp(fact["order_date"].max()) + pd.Timedelta(days=1)
    placed = fact[~fact["is_cancelled"] & (fact["order_date"] >= as_of - pd.Timedelta(days=90))]
    last = placed.groupby("customer_id")["net_sales"].sum()
    got = frame.set_index("customer_id")["last_window_sales"]
    assert np.allclose(got, last.reindex(got.index).fillna(0.0), atol=0.01)


def test_horizon_below_a_week_is_refused(company) -> None:  # type: ignore[no-untyped-def]
    fact, customers, _, _ = company
    with pytest.raises(ConfigurationError, match="horizon_days"):
        predict_customer_sales(fact, customers, horizon_days=3)


def test_workers_fit_the_same_boosters_and_predictions(company, result) -> None:  # type: ignore[no-untyped-def]
    """Boosters fitted side by side in threads (and the final rows built meanwhile) change nothing."""
    fact, customers, employees, _ = company
    two = predict_customer_sales(
        fact, customers, employees=employees, boost_rounds=ROUNDS, created_at=CREATED, workers=2
    )
    pd.testing.assert_frame_equal(two.customer_predictions, result.customer_predictions)
    assert two.model.version == result.model.version


def test_shared_binning_gives_the_trees_of_one_dataset_per_booster(company) -> None:  # type: ignore[no-untyped-def]
    """fit_boosters bins the rows once; each booster equals one trained on its own Dataset."""
    import lightgbm as lgb

    from salesbi.prediction.predict import (
        MODEL_FEATURES,
        CutoffFrames,
        fit_boosters,
        lgb_params,
    )

    fact, _, _, _ = company
    prepared = prepare(lines_from_fact(fact))
    cutoff = prepared.end - pd.Timedelta(days=120)
    train = CutoffFrames(prepared, 90).at(cutoff)
    x = train[list(MODEL_FEATURES)]
    shared = fit_boosters(train, 0, 15, workers=2)
    labels = {"order": "target_ordered"}
    objectives = {"sales": ("regression", {}), "order": ("binary", {}), "q10": ("quantile", {"alpha": 0.1})}
    objectives["q90"] = ("quantile", {"alpha": 0.9})
    for name, (objective, extra) in objectives.items():
        y = train[labels.get(name, "target_sales")].to_numpy(dtype="float64")
        alone = lgb.train(lgb_params(objective, 0, 1, **extra), lgb.Dataset(x, label=y), num_boost_round=15)
        np.testing.assert_array_equal(shared[name].predict(x), alone.predict(x))
    assert set(fit_boosters(train, 0, 5, names=("order",))) == {"order"}
