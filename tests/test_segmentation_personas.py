"""Segments and clusters recover known customer personas (synthetic data here; the company generator too).

Thresholds, measured on ``synthetic_fact(1500, seed=s)`` for s = 1, 2, 3:
adjusted Rand index of RFM segments vs personas 0.362 / 0.367 / 0.370, of clusters 0.591 /
0.602 / 0.618. Eleven RFM segments cut across seven personas by design (a loyal customer may be
a Champion or merely Loyal), so their ARI is modest; we require 0.30 — far above the ≈ 0 of a
random labelling — and back it with explicit persona → segment mapping checks. Clusters must
reach 0.50. The shares in the mapping checks are at least 10 points below what was measured.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from salesbi import generate
from salesbi.prediction.synthetic import synthetic_fact
from salesbi.reports.fact import build_fact_order_lines
from salesbi.segmentation import SegmentationResult, segment_customers

GONE = {"Lost", "Hibernating", "At Risk", "Can't Lose Them"}
ACTIVE_GOOD = {"Champions", "Loyal"}
FRESH = {"New", "Promising", "Potential Loyalist"}


def share(merged: pd.DataFrame, persona: str, segments: set[str]) -> float:
    part = merged[merged["persona"] == persona]
    return float(part["segment"].isin(segments).mean())


@pytest.fixture(scope="module", params=[1, 2, 3])
def synthetic(request: pytest.FixtureRequest) -> tuple[SegmentationResult, pd.DataFrame]:
    fact, customers, employees, truth = synthetic_fact(1500, seed=request.param)
    result = segment_customers(fact, customers, employees)
    return result, result.customer_segments.merge(truth, on="customer_id", validate="one_to_one")


def test_synthetic_ari_over_threshold(synthetic) -> None:  # type: ignore[no-untyped-def]
    result, merged = synthetic
    assert adjusted_rand_score(merged["persona"], merged["segment"]) > 0.30
    assert adjusted_rand_score(merged["persona"], merged["cluster_id"]) > 0.50
    runs = {r.model_name: r for r in result.model_runs}
    assert runs["customer_clusters"].status == "ok"
    assert 4 <= runs["customer_clusters"].metrics["chosen_k"] <= 8
    assert sum(runs["customer_clusters"].metrics["sizes"]) == len(merged)


def test_synthetic_persona_mapping(synthetic) -> None:  # type: ignore[no-untyped-def]
    _, merged = synthetic
    assert share(merged, "churned", GONE) >= 0.9  # measured 1.00
    assert share(merged, "loyal", ACTIVE_GOOD) >= 0.85  # measured 0.99
    assert share(merged, "vip", {"Champions"}) >= 0.75  # measured 0.89
    assert share(merged, "new", FRESH) >= 0.75  # measured 0.87
    assert share(merged, "churned", ACTIVE_GOOD | FRESH) == 0.0


def test_synthetic_clusters_put_vips_in_the_top_value_cluster(synthetic) -> None:  # type: ignore[no-untyped-def]
    _, merged = synthetic
    vip = merged[merged["persona"] == "vip"]
    assert (vip["cluster_id"] == 0).mean() >= 0.9
    churned = merged[merged["persona"] == "churned"]
    home = churned["cluster_name"].mode().iloc[0]
    assert home.startswith(("lapsed", "drifting")), home
    new = merged[merged["persona"] == "new"]
    assert new["cluster_name"].mode().iloc[0].startswith("recent newcomers")


# ------------------------------------------------------------ the company generator


def _core_from_csv(folder: Path) -> dict[str, pd.DataFrame]:
    from salesbi.reading.reader import core_frames, read_source

    return core_frames(read_source(folder, "canonical"))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[SegmentationResult, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("personas")
    generate.generate_company(folder, order_lines=20_000, seed=7)
    core = _core_from_csv(folder)
    fact = build_fact_order_lines(core)
    result = segment_customers(fact, core["customers"], core["employees"])
    truth = pd.read_csv(folder / "ground_truth" / "customers.csv", dtype={"customer_id": "string"})
    merged = result.customer_segments.merge(truth[["customer_id", "persona"]], on="customer_id")
    return result, merged


@pytest.mark.slow
def test_generated_company_personas_recovered(generated) -> None:  # type: ignore[no-untyped-def]
    _, merged = generated
    assert adjusted_rand_score(merged["persona"], merged["segment"]) > 0.20
    assert adjusted_rand_score(merged["persona"], merged["cluster_id"]) > 0.25
    assert share(merged, "churned", GONE) >= 0.7
    assert share(merged, "loyal", ACTIVE_GOOD | {"Potential Loyalist"}) >= 0.6
    assert share(merged, "new", FRESH | {"About to Sleep"}) >= 0.6
