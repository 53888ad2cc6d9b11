"""Capped, stratified training samples and their statement in the model cards (issue 18).

Under its cap a fit reads every row (the results are the uncapped ones: checked against a fit
with the cap far above, and the BG/NBD sample against the rule it had before the helper was
shared); above it, a seeded sample keeps each stratum's share. Each model's card and its
``audit.model_runs`` params say the cap, how many rows there were and whether it was applied.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from salesbi.forecasting.features import MIN_HISTORY
from salesbi.forecasting.lgbm import MAX_TRAIN_ROWS as FORECAST_CAP
from salesbi.forecasting.lgbm import SAMPLINGS, LightGBMConfig, candidate_rows, training_rows
from salesbi.prediction import predict_customer_sales
from salesbi.prediction.btyd import FIT_CAP, stratified_sample
from salesbi.prediction.predict import MAX_TRAIN_ROWS, _cap
from salesbi.prediction.synthetic import synthetic_fact
from salesbi.sampling import REPEAT_STRATA, cap_record, stratified_rows
from salesbi.segmentation import segment_customers
from salesbi.segmentation.clusters import CLUSTER_FEATURES, assign, fit_clusters
from salesbi.segmentation.clusters import FIT_CAP as CLUSTER_CAP


def _old_btyd_sample(x: np.ndarray, cap: int, seed: int = 0) -> np.ndarray:
    """The BG/NBD sample as btyd.stratified_sample drew it before salesbi.sampling (for the equality)."""
    if len(x) <= cap:
        return np.arange(len(x))
    strata = np.digitize(x, [1, 2, 4, 8, 16])
    rng = np.random.default_rng(seed)
    keep = []
    for s in np.unique(strata):
        rows = np.flatnonzero(strata == s)
        keep.append(
            rng.choice(rows, size=min(max(1, round(len(rows) * cap / len(x))), len(rows)), replace=False)
        )
    return np.sort(np.concatenate(keep))


def test_a_stratified_sample_keeps_every_row_under_the_cap_and_each_share_above_it() -> None:
    rng = np.random.default_rng(1)
    strata = rng.choice(6, size=10_000, p=[0.5, 0.2, 0.15, 0.1, 0.04, 0.01])
    assert np.array_equal(stratified_rows(strata, 10_000), np.arange(10_000))
    rows = stratified_rows(strata, 1_000, seed=3)
    assert abs(len(rows) - 1_000) <= 6 and np.all(np.diff(rows) > 0)
    for s in range(6):  # each stratum's share, to one row of rounding
        assert abs((strata[rows] == s).sum() - (strata == s).sum() / 10) <= 1
    assert np.array_equal(rows, stratified_rows(strata, 1_000, seed=3))
    assert not np.array_equal(rows, stratified_rows(strata, 1_000, seed=4))
    # the BG/NBD sample is the one it was before the helper was shared
    x = rng.poisson(2.0, size=30_000).astype("float64")
    for cap in (20_000, 5_000, 40_000):
        assert np.array_equal(stratified_sample(x, cap), _old_btyd_sample(x, cap))
    assert REPEAT_STRATA == (1, 2, 4, 8, 16)


def test_a_cap_record_says_whether_it_cut() -> None:
    under = cap_record("kmeans", "customers", 100, 80, 80, "stratified")
    over = cap_record("kmeans", "customers", 100, 250, 101, "stratified")
    assert under["applied"] is False and under["sampling"] == "all rows (under the cap)"
    assert over == {
        "fit": "kmeans",
        "unit": "customers",
        "cap": 100,
        "available": 250,
        "used": 101,
        "applied": True,
        "sampling": "stratified",
    }


def _features(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frequency = rng.geometric(0.35, size=n).astype("int64")
    monetary = frequency * rng.lognormal(6, 0.8, size=n)
    return pd.DataFrame(
        {
            "recency_days": rng.integers(1, 700, size=n),
            "frequency": frequency,
            "monetary": monetary,
            "tenure_days": rng.integers(1, 900, size=n),
            "avg_order_value": monetary / frequency,
            "product_lines": rng.integers(1, 7, size=n),
            "cancellation_rate": rng.random(size=n) * 0.2,
        },
        index=pd.Index([f"C{i:05d}" for i in range(n)], name="customer_id"),
    )


def test_clusters_under_the_cap_are_the_uncapped_ones_and_a_capped_fit_says_so() -> None:
    features = _features(1_200, seed=2)
    assert CLUSTER_CAP == 50_000 and set(CLUSTER_FEATURES) <= set(features.columns)
    whole = fit_clusters(features, random_state=0)
    at_cap = fit_clusters(features, random_state=0, cap=len(features))
    assert whole is not None and at_cap is not None
    assert whole.as_dict() == at_cap.as_dict() and whole.fit_customers == 1_200
    capped = fit_clusters(features, random_state=0, cap=400)
    assert capped is not None and abs(capped.fit_customers - 400) <= 6
    assert capped.mean == whole.mean and capped.scale == whole.scale  # scaling from every customer
    labels = assign(features, capped)  # every customer is assigned
    assert len(labels) == 1_200 and sum(capped.sizes) == 1_200 and capped.k >= 4


def test_prediction_rows_over_the_cap_keep_each_origin_and_buyer_share() -> None:
    small = pd.DataFrame({"origin": [1, 2], "target_ordered": [0.0, 1.0]})
    assert _cap(small, 0) is small
    n = MAX_TRAIN_ROWS + 100_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "origin": rng.choice(np.array(["2024-01-01", "2024-02-15", "2024-04-01"]), size=n),
            "target_ordered": (rng.random(n) < 0.2).astype("float64"),
        }
    )
    kept = _cap(frame, 7)
    assert abs(len(kept) - MAX_TRAIN_ROWS) <= 6
    share = frame.groupby(["origin", "target_ordered"]).size() / n
    kept_share = kept.groupby(["origin", "target_ordered"]).size() / len(kept)
    np.testing.assert_allclose(kept_share.to_numpy(), share.to_numpy(), atol=1e-5)


def test_forecast_candidates_are_the_rows_an_uncapped_fit_reads() -> None:
    for n, cutoff, horizon, freq in ((5, 60, 8, "W"), (3, 400, 28, "D"), (4, 30, 3, "M")):
        rows, _, _ = training_rows(n, cutoff, horizon, freq, max_rows=10**9, seed=0)
        assert candidate_rows(n, cutoff, horizon, freq) == len(rows)
    rows, _, _ = training_rows(22, 1_000, 28, "D", max_rows=FORECAST_CAP, seed=0)
    assert candidate_rows(22, 1_000, 28, "D") > FORECAST_CAP >= len(rows)


@pytest.fixture(scope="module")
def company() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return synthetic_fact(400, seed=3)


def test_segmentation_and_prediction_cards_state_their_caps(company) -> None:  # type: ignore[no-untyped-def]
    fact, customers, employees, _ = company
    seg = segment_customers(fact, customers, employees, as_of=date(2024, 1, 1))
    model = next(iter(seg.models.values()))
    caps = model.card()["training_caps"]
    n = len(seg.customer_segments)
    assert caps == [cap_record("kmeans", "customers", CLUSTER_CAP, n, n, "under the cap: not used")]
    run = next(r for r in seg.model_runs if r.model_name == "customer_clusters")
    assert run.params["training_caps"] == caps
    pred = predict_customer_sales(fact, customers, employees=employees, as_of=date(2024, 1, 1))
    stored = next(iter(pred.models.values()))
    caps = {c["fit"]: c for c in stored.card()["params"]["training_caps"]}
    assert caps["bgnbd_gamma_gamma"]["cap"] == FIT_CAP and caps["bgnbd_gamma_gamma"]["applied"] is False
    assert caps["bgnbd_gamma_gamma"]["used"] == caps["bgnbd_gamma_gamma"]["available"] > 100
    lgbm = caps.get("lightgbm_holdout")
    assert lgbm is None or (
        lgbm["cap"] == MAX_TRAIN_ROWS and not lgbm["applied"] and lgbm["used"] == lgbm["available"]
    )
    for run in pred.model_runs:
        assert run.params["training_caps"] == list(caps.values())


def test_the_forecast_card_and_run_state_the_lightgbm_cap() -> None:
    from salesbi.forecasting import forecast_sales
    from salesbi.forecasting.lgbm import LightGBMConfig
    from salesbi.forecasting.synthetic import orders_fact

    fact, customers, product_lines, offices = orders_fact(500, 20.0, seed=5)
    config = LightGBMConfig(num_boost_round=20, max_train_rows=300)  # a cap the weekly panel exceeds
    result = forecast_sales(
        fact, customers, product_lines, offices, run_id="r1", frequency="W", horizon=4, lgbm_config=config
    )
    run = next(
        r for r in result.model_runs if r.model_name.endswith("lightgbm") or "lightgbm" in r.model_name
    )
    (cap,) = run.params["training_caps"]
    assert cap["fit"] == "lightgbm_final" and cap["cap"] == 300 and cap["applied"] is True
    assert cap["available"] > 300 >= cap["used"] == run.params["train_rows_final"] > 0
    assert 0 < cap["distinct"] <= cap["used"]  # the uniform sample draws with replacement
    card = next(iter(result.models.values())).card()
    assert card["training_caps"] == [cap]


def _candidates(n: int, cutoff: int, horizon: int, freq: str) -> pd.DataFrame:
    """Every (series, origin, step) an uncapped fit reads, built here from the definition."""
    first = MIN_HISTORY[freq] - 1
    return pd.DataFrame(
        [(r, o, h) for r in range(n) for h in range(1, horizon + 1) for o in range(first, cutoff - h + 1)],
        columns=["row", "origin", "step"],
    )


@pytest.mark.parametrize("sampling", ["stratified", "recent"])
def test_a_capped_forecast_sample_keeps_each_series_and_step_its_share(sampling: str) -> None:
    n, cutoff, horizon, freq, cap = 6, 500, 28, "D", 9_000
    every = _candidates(n, cutoff, horizon, freq)
    total = len(every)
    assert total == candidate_rows(n, cutoff, horizon, freq) > cap
    rows, origins, steps = training_rows(n, cutoff, horizon, freq, cap, seed=4, sampling=sampling)
    got = pd.DataFrame({"row": rows, "origin": origins, "step": steps})
    assert not got.duplicated().any()  # without replacement
    assert len(got.merge(every, how="inner")) == len(got)  # only candidate rows
    # per (series, step): round(its candidates × cap / total) rows, counted from the candidates
    want = every.groupby(["row", "step"]).size().map(lambda c: round(c * cap / total))
    counts = got.groupby(["row", "step"]).size()
    pd.testing.assert_series_equal(counts, want, check_names=False)
    assert abs(len(got) - cap) <= n * horizon / 2
    again = training_rows(n, cutoff, horizon, freq, cap, seed=4, sampling=sampling)
    assert all(np.array_equal(a, b) for a, b in zip((rows, origins, steps), again, strict=True))
    other = training_rows(n, cutoff, horizon, freq, cap, seed=5, sampling=sampling)
    if sampling == "stratified":  # seeded: another seed, another sample of the same shares
        assert not np.array_equal(origins, other[1])
        # origins spread over the whole history, not only the recent ones
        assert origins.min() < MIN_HISTORY[freq] + 50 and origins.max() > cutoff - horizon - 50
    else:  # the latest origins of each (series, step), whatever the seed
        assert np.array_equal(origins, other[1])
        for (_, h), part in got.groupby(["row", "step"]):
            assert sorted(part["origin"]) == list(range(cutoff - h - len(part) + 1, cutoff - h + 1))


@pytest.mark.parametrize("sampling", ["uniform", "stratified", "recent"])
def test_under_the_cap_every_sampling_reads_every_row(sampling: str) -> None:
    every = training_rows(4, 120, 7, "D", max_rows=10**9, seed=0, sampling="uniform")
    for cap in (len(every[0]), 10**9):
        same = training_rows(4, 120, 7, "D", max_rows=cap, seed=3, sampling=sampling)
        assert all(np.array_equal(a, b) for a, b in zip(every, same, strict=True))
    with pytest.raises(ValueError, match="unknown sampling"):
        training_rows(4, 120, 7, "D", max_rows=10, seed=0, sampling="random")


def test_under_the_cap_the_forecast_is_the_same_whatever_the_sampling() -> None:
    from salesbi.forecasting.engine import run_engine
    from salesbi.forecasting.synthetic import daily_panel

    panel = daily_panel(3, 200, seed=2, noise=0.3)
    outs = [
        run_engine(panel, 7, 2, lgbm_config=LightGBMConfig(num_boost_round=40, sampling=how))
        for how in ("uniform", "stratified")
    ]
    assert outs[0].lgbm_candidates <= FORECAST_CAP and outs[0].lgbm_rows == outs[0].lgbm_candidates
    for m in outs[0].future:
        np.testing.assert_array_equal(outs[0].future[m], outs[1].future[m])
        np.testing.assert_array_equal(outs[0].backtest[m], outs[1].backtest[m])
    assert outs[0].champion == outs[1].champion
    # the same two ways above the cap draw other rows: other LightGBM forecasts (the check can fail)
    capped = [
        run_engine(
            panel, 7, 2, lgbm_config=LightGBMConfig(num_boost_round=40, max_train_rows=1_000, sampling=how)
        )
        for how in ("uniform", "stratified")
    ]
    assert capped[0].lgbm_candidates > 1_000 >= max(c.lgbm_rows for c in capped) > 900
    assert not np.array_equal(capped[0].future["lightgbm"], capped[1].future["lightgbm"])


def test_the_forecast_card_states_a_stratified_cap() -> None:
    from salesbi.forecasting import forecast_sales
    from salesbi.forecasting.synthetic import orders_fact

    fact, customers, product_lines, offices = orders_fact(500, 20.0, seed=5)
    config = LightGBMConfig(num_boost_round=20, max_train_rows=300, sampling="stratified")
    result = forecast_sales(
        fact, customers, product_lines, offices, run_id="r1", frequency="W", horizon=4, lgbm_config=config
    )
    run = next(r for r in result.model_runs if r.model_name == "forecast_lightgbm")
    (cap,) = run.params["training_caps"]
    assert cap["applied"] is True and cap["sampling"] == SAMPLINGS["stratified"]
    assert "stratified by series and step" in cap["sampling"]
    assert 250 <= cap["used"] <= 350 and cap["used"] == run.params["train_rows_final"]
    assert next(iter(result.models.values())).card()["training_caps"] == [cap]


@pytest.mark.parametrize(("cap", "sampling"), [(300, "uniform"), (300, "stratified"), (10**6, "uniform")])
def test_the_forecast_cap_states_the_draws_and_the_distinct_rows(cap: int, sampling: str) -> None:
    """The uniform sample draws with replacement: ``used`` counts the draws, ``distinct`` the rows."""
    from salesbi.forecasting.features import FeatureContext
    from salesbi.forecasting.lgbm import LightGBMConfig, fit_lightgbm, training_caps

    n, periods, horizon = 3, 60, 4
    rng = np.random.default_rng(7)
    ctx = FeatureContext(
        frequency="W",
        values=rng.gamma(2.0, 50.0, size=(n, periods)),
        calendar=pd.date_range("2023-01-02", periods=periods + horizon, freq="W-MON"),
        holidays=np.full((n, periods + horizon), np.nan),
        series_code=np.arange(n),
        level_code=np.zeros(n, dtype=int),
    )
    config = LightGBMConfig(
        num_boost_round=5, max_train_rows=cap, sampling=sampling, early_stopping_rounds=None, random_state=3
    )
    model = fit_lightgbm(ctx, periods - 1, horizon, config)
    rows, origins, steps = training_rows(n, periods - 1, horizon, "W", cap, seed=3, sampling=sampling)
    drawn = pd.DataFrame({"row": rows, "origin": origins, "step": steps})
    assert model.n_train == len(drawn) and model.n_distinct == len(drawn.drop_duplicates())
    available = candidate_rows(n, periods - 1, horizon, "W")
    (record,) = training_caps(cap, available, model.n_train, sampling, model.n_distinct)
    assert record["used"] == len(drawn) and record["distinct"] == len(drawn.drop_duplicates())
    if cap < available and sampling == "uniform":  # with replacement: repeats in 300 draws of ~600
        assert record["applied"] and record["distinct"] < record["used"]
        assert "with replacement" in record["sampling"]
    else:  # without replacement, or every row under the cap
        assert record["distinct"] == record["used"]
