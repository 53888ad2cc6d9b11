"""classicmodels end to end: segments, clusters and predictions run, and thin data are called thin."""

from __future__ import annotations

from pathlib import Path

import pytest

from salesbi.prediction import predict_customer_sales
from salesbi.prediction.tables import CUSTOMER_PREDICTIONS
from salesbi.reading import reader
from salesbi.reports.fact import build_fact_order_lines
from salesbi.segmentation import segment_customers
from salesbi.segmentation.tables import CUSTOMER_SEGMENTS

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def core(classicmodels_dir: Path):  # type: ignore[no-untyped-def]
    return reader.core_frames(reader.read_source(classicmodels_dir, "classicmodels"))


def test_classicmodels_segments(core) -> None:  # type: ignore[no-untyped-def]
    fact = build_fact_order_lines(core)
    result = segment_customers(fact, core["customers"], core["employees"])
    frame = result.customer_segments
    assert list(frame.columns) == CUSTOMER_SEGMENTS.column_names
    # 98 of the 122 customers ever ordered (SELECT COUNT(DISTINCT customerNumber) FROM orders)
    assert len(frame) == 98
    assert str(result.model.as_of) == "2005-06-01"  # last order 2005-05-31
    assert frame["sales_rep_name"].notna().sum() == 98  # every ordering customer has a rep
    assert result.segment_summary["customers"].sum() == 98
    runs = {r.model_name: r for r in result.model_runs}
    assert runs["customer_clusters"].status == "ok"
    assert runs["customer_clusters"].metrics["chosen_k"] <= 98 // 15
    assert all(n in d for n, d in zip(frame["sales_rep_name"], frame["action_detail"], strict=True))


def test_classicmodels_predictions_say_too_thin(core) -> None:  # type: ignore[no-untyped-def]
    fact = build_fact_order_lines(core)
    result = predict_customer_sales(fact, core["customers"], employees=core["employees"], boost_rounds=20)
    frame = result.customer_predictions
    assert list(frame.columns) == CUSTOMER_PREDICTIONS.column_names
    assert len(frame) == 98
    for run in result.model_runs:
        assert run.status == "too_thin"
        assert "only 98 customers to evaluate on (need 200)" in run.notes
    assert frame["method"].isin(["naive_last_window", "naive_average"]).all()
    assert frame["note"].str.startswith("Too thin for a reliable model").all()
    assert result.model.boosters == {}
