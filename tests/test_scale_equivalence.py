"""The faster paths of issue 18 give the same outputs as the code they replaced.

Each test keeps the replaced implementation as a reference and compares on a generated company.
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from salesbi.forecasting.series import OTHER, build_panel, build_series, country_code
from salesbi.prediction.model import (
    _driver_text,
    _tree_thresholds,
    decision_classes,
    shap_contributions,
    top_drivers,
)
from tests.conftest import need


def _old_series_frame(
    fact: pd.DataFrame,
    customers: pd.DataFrame,
    product_lines: pd.DataFrame,
    offices: pd.DataFrame,
    top_countries: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-row implementation of ``_series_frame`` before issue 18 (the reference)."""
    f = fact[["order_date", "net_sales", "customer_id", "product_line_id", "office_id"]].copy()
    f["net_sales"] = f["net_sales"].astype("float64").fillna(0.0)
    cust = customers[["customer_id", "country"]].drop_duplicates("customer_id")
    f = f.merge(cust, on="customer_id", how="left")
    f["country"] = f["country"].astype("string").fillna("Unknown")
    by_country = f.groupby("country")["net_sales"].sum().sort_values(ascending=False, kind="stable")
    top = list(by_country.index[: max(0, top_countries)])
    f["country_group"] = f["country"].where(f["country"].isin(top), OTHER)
    pl_names = dict(
        zip(
            product_lines["product_line_id"].astype("string"),
            product_lines["name"].astype("string"),
            strict=True,
        )
    )
    off = offices[["office_id", "city", "country"]].astype("string")
    office_city = dict(zip(off["office_id"], off["city"], strict=True))
    office_country = dict(zip(off["office_id"], off["country"], strict=True))
    share = by_country / by_country.sum() if by_country.sum() > 0 else by_country
    home = country_code(share.index[0]) if len(share) and float(share.iloc[0]) >= 0.5 else None
    parts = [f.assign(series_id="total", series_level="total", series_name="All sales", code=home)]
    pl = f[f["product_line_id"].notna()]
    parts.append(
        pl.assign(
            series_id="product_line:" + pl["product_line_id"].astype(str),
            series_level="product_line",
            series_name=pl["product_line_id"].map(lambda x: pl_names.get(x) or str(x)),
            code=home,
        )
    )
    cg = f["country_group"].astype(str)
    parts.append(
        f.assign(
            series_id="country:" + cg,
            series_level="country",
            series_name=cg,
            code=cg.map(lambda c: None if c == OTHER else country_code(c)),
        )
    )
    of = f[f["office_id"].notna()]
    parts.append(
        of.assign(
            series_id="office:" + of["office_id"].astype(str),
            series_level="office",
            series_name=of["office_id"].map(lambda x: office_city.get(x) or str(x)),
            code=of["office_id"].map(lambda x: country_code(office_country.get(x))),
        )
    )
    long = pd.concat(parts, ignore_index=True)
    meta = (
        long.groupby("series_id", sort=False)
        .agg(
            series_level=("series_level", "first"),
            series_name=("series_name", "first"),
            country_code=("code", "first"),
        )
        .reset_index()
    )
    level_order = {"total": 0, "product_line": 1, "country": 2, "office": 3}
    meta["_o"] = meta["series_level"].map(level_order)
    meta = meta.sort_values(["_o", "series_id"], kind="stable").drop(columns="_o").reset_index(drop=True)
    meta["series_name"] = meta["series_name"].astype(str)
    meta["country_code"] = meta["country_code"].astype(object).where(meta["country_code"].notna(), None)
    return long[["series_id", "order_date", "net_sales"]], meta


@pytest.fixture(scope="module")
def company_core(sample_company: Path) -> dict[str, pd.DataFrame]:
    """Return the core frames and the order-line fact of the session's generated company."""
    from salesbi.reading.reader import core_frames, read_source
    from salesbi.reports.fact import build_fact_order_lines

    core = core_frames(read_source(sample_company, "canonical"))
    return {**core, "fact": build_fact_order_lines(core)}


@pytest.mark.parametrize(("frequency", "top", "week"), [("W", 5, 0), ("M", 2, 6), ("D", 0, 0)])
def test_build_series_equals_the_per_row_implementation(
    company_core: dict[str, pd.DataFrame], frequency: str, top: int, week: int
) -> None:
    c = company_core
    new = build_series(c["fact"], c["customers"], c["product_lines"], c["offices"], frequency, top, week)
    long, meta = _old_series_frame(c["fact"], c["customers"], c["product_lines"], c["offices"], top)
    old = build_panel(long, meta, frequency, week_start=week)
    pd.testing.assert_frame_equal(new.meta, old.meta)
    assert new.dates.equals(old.dates)
    np.testing.assert_array_equal(new.values, old.values)  # bit for bit, not approximately
    # a real check, not two copies of one mistake: product lines and countries sum to the total,
    # offices to the lines that have one (the generator leaves some customers without a sales rep)
    assert new.n_series > 4 and new.meta["country_code"].notna().any()
    for level in ("product_line", "country"):
        rows = (new.meta["series_level"] == level).to_numpy()
        np.testing.assert_allclose(new.values[rows].sum(axis=0), new.values[0])
    offices = (new.meta["series_level"] == "office").to_numpy()
    assert (new.values[offices].sum(axis=0) <= new.values[0] + 1e-6).all()


def _all_rows_drivers(booster: lgb.Booster, x: pd.DataFrame) -> list[str]:
    """The reference: ``pred_contrib`` of every row, ranked (the implementation before issue 18)."""
    contrib = np.asarray(booster.predict(x, pred_contrib=True, num_threads=1))[:, :-1]
    return _driver_text(contrib, np.asarray(x.columns), 3)


def test_shap_per_tree_class_equals_lightgbm_on_awkward_features() -> None:
    """NaN, zeros, repeated values and a feature no split uses: the per-class sums match pred_contrib."""
    rng = np.random.default_rng(3)
    n = 3000
    x = pd.DataFrame(
        {
            "amount": np.round(rng.gamma(2.0, 50.0, n), 2),
            "days": rng.integers(0, 400, n).astype("float64"),
            "orders": rng.poisson(3, n).astype("float64"),  # many zeros and repeats
            "gappy": np.where(rng.random(n) < 0.2, np.nan, rng.normal(0, 1, n)),
            "constant": np.ones(n),
        }
    )
    y = x["amount"] * 0.5 - x["days"] * 0.2 + x["orders"] * 10 + np.nan_to_num(x["gappy"]) * 30
    params = {"objective": "regression", "num_leaves": 15, "verbose": -1, "num_threads": 1, "seed": 1}
    booster = lgb.train(params, lgb.Dataset(x, label=y + rng.normal(0, 5, n)), num_boost_round=60)
    reference = np.asarray(booster.predict(x, pred_contrib=True, num_threads=1))[:, :-1]
    contrib, magnitude = shap_contributions(booster, x)
    assert magnitude is not None  # the per-class path ran
    np.testing.assert_allclose(contrib, reference, rtol=1e-9, atol=1e-9)
    assert (contrib[:, 4] == 0).all()  # the constant feature is never split on
    assert top_drivers(booster, x) == _all_rows_drivers(booster, x)
    # runs of trees explained side by side in threads: the same sums (to rounding) and text
    for workers in (2, 3):
        split, split_magnitude = shap_contributions(booster, x, workers=workers)
        np.testing.assert_allclose(split, reference, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(split_magnitude, magnitude, rtol=1e-12)
        assert top_drivers(booster, x, workers=workers) == _all_rows_drivers(booster, x)
    # the classes of one tree really group rows: fewer classes than rows, same output inside a class
    thresholds = _tree_thresholds(booster)
    assert thresholds is not None
    classes = decision_classes(x.to_numpy(dtype="float64"), thresholds[0])
    assert len(np.unique(classes)) < n
    leaves = np.asarray(booster.predict(x, pred_leaf=True))[:, 0]
    for c in np.unique(classes)[:50]:
        assert len(np.unique(leaves[classes == c])) == 1


def test_ties_are_ranked_as_lightgbm_ranks_them() -> None:
    """Rows with tied contributions are re-ranked from pred_contrib: the same text, ties included."""
    rng = np.random.default_rng(8)
    n = 600
    a = rng.integers(0, 5, n).astype("float64")
    x = pd.DataFrame({"a": a, "b": a.copy(), "c": rng.normal(0, 1, n)})  # a and b: equal contributions
    booster = lgb.train(
        {"objective": "regression", "num_leaves": 7, "verbose": -1, "num_threads": 1, "seed": 2},
        lgb.Dataset(x, label=a * 3 + x["c"]),
        num_boost_round=30,
    )
    assert top_drivers(booster, x) == _all_rows_drivers(booster, x)
    assert top_drivers(booster, x, workers=2) == _all_rows_drivers(booster, x)


def test_customer_predictions_top_drivers_unchanged(company_core: dict[str, pd.DataFrame]) -> None:
    """rpt.customer_predictions of a generated company: every customer's drivers as before."""
    from salesbi.prediction import predict_customer_sales
    from salesbi.prediction.features import features_at, prepare
    from salesbi.prediction.model import btyd_columns
    from salesbi.segmentation.history import lines_from_fact

    c = company_core
    # 30 rounds at the learning rate 0.1 (as 60 did at 0.05): LightGBM wins the sales holdout here
    result = predict_customer_sales(c["fact"], c["customers"], employees=c["employees"], boost_rounds=30)
    model = result.model
    need(model.sales_method == "lightgbm", "the generated company's model did not choose LightGBM")
    t = pd.Timestamp(model.as_of)
    features = features_at(prepare(lines_from_fact(c["fact"])), t, model.horizon_days)
    features = features.assign(**btyd_columns(features, model))
    expected = pd.Series(
        _all_rows_drivers(model.boosters["sales"], features[model.features]), index=features.index
    )
    published = result.customer_predictions.set_index("customer_id")["top_drivers"]
    assert len(published) == len(expected) > 100
    pd.testing.assert_series_equal(
        published.astype(str), expected.reindex(published.index).astype(str), check_names=False
    )


@pytest.mark.integration
def test_bulk_core_read_equals_the_sqlalchemy_read(sample_company: Path, tmp_path: Path) -> None:
    """Core read through the driver's cursor gives, after conform, exactly the SQLAlchemy frames."""
    from salesbi import contract
    from salesbi.ingest import load_step, prepare_warehouse, read_step, validate_step
    from salesbi.types import conform
    from salesbi.warehouse.engine import create_engine
    from salesbi.warehouse.load import read_table, read_table_bulk, read_table_fast

    engine = create_engine(f"sqlite:///{tmp_path}/warehouse.db")
    md = prepare_warehouse(engine)
    data = read_step(sample_company, "canonical")
    load_step(engine, md, data, validate_step(data, run_id="t"), run_id="t")
    with engine.connect() as conn:
        for spec in contract.TABLES:
            table = md.tables[f"core.{spec.name}"]
            old = conform(read_table(conn, table), spec)
            new = conform(read_table_bulk(conn, table), spec)
            pd.testing.assert_frame_equal(new, old)
            pd.testing.assert_frame_equal(conform(read_table_fast(conn, table), spec), old)
            assert len(old) > 0, spec.name
    engine.dispose()
