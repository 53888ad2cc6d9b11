"""RFM scores, segments, clusters and actions: hand-made data with the answer worked out by hand."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesbi.errors import SalesBIError
from salesbi.rpt import rpt_table
from salesbi.segmentation import segment_customers, segment_from_history, segment_from_rfm
from salesbi.segmentation.rfm import apply_edges, fit_edges, fit_rfm_edges, segment_name
from salesbi.segmentation.tables import CUSTOMER_SEGMENTS, SEGMENT_NAMES, SEGMENT_SUMMARY

AS_OF = date(2024, 1, 1)

# customer → (recency days, frequency, monetary); orders 30 days apart ending `recency` days before AS_OF
HAND = {
    "C1": (5, 6, 6000.0),
    "C2": (10, 5, 5000.0),
    "C3": (20, 4, 900.0),
    "C4": (40, 1, 800.0),
    "C5": (60, 1, 700.0),
    "C6": (90, 2, 600.0),
    "C7": (120, 3, 500.0),
    "C8": (200, 5, 4000.0),
    "C9": (300, 1, 100.0),
    "C10": (400, 1, 50.0),
}

# Worked out by hand (see the edges in test_hand_edges):
# recency 10 distinct values → pairs score 1..5, reversed; monetary likewise;
# frequency: one-time buyers (C4, C5, C9, C10) score 1; the repeat buyers' values 2, 3, 4, 5×2, 6
# give edges 3, 4, 5, 6, so 2 → 1 raised to 2, 3 → 2, 4 → 3, 5 → 4, 6 → 5.
EXPECTED = {
    "C1": ((5, 5, 5), "Champions"),
    "C2": ((5, 4, 5), "Champions"),
    "C3": ((4, 3, 4), "Potential Loyalist"),
    "C4": ((4, 1, 3), "Promising"),
    "C5": ((3, 1, 3), "Lost"),  # bought once, 60 days ago, not back: not "About to Sleep"
    "C6": ((3, 2, 2), "About to Sleep"),
    "C7": ((2, 2, 2), "Hibernating"),
    "C8": ((2, 4, 4), "Can't Lose Them"),
    "C9": ((1, 1, 1), "Lost"),
    "C10": ((1, 1, 1), "Lost"),
}


def hand_fact() -> pd.DataFrame:
    rows = []
    for cid, (recency, frequency, monetary) in HAND.items():
        for i in range(frequency):
            day = AS_OF - timedelta(days=recency + 30 * i)
            rows.append((f"{cid}-{i}", cid, day, monetary / frequency, False, f"L{i % 3}"))
    # one cancelled order for C7, after its last placed order: counts for cancellation, not R/F/M
    rows.append(("C7-x", "C7", AS_OF - timedelta(days=50), 999.0, True, "L9"))
    frame = pd.DataFrame(
        rows, columns=["order_id", "customer_id", "order_date", "revenue", "is_cancelled", "product_line_id"]
    )
    frame["order_date"] = pd.to_datetime(frame["order_date"]).astype("datetime64[s]")
    frame["net_sales"] = np.where(frame["is_cancelled"], 0.0, frame["revenue"])
    frame["employee_id"] = pd.NA
    frame["line_number"] = 1
    return frame


def hand_customers() -> pd.DataFrame:
    ids = list(HAND)
    return pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "customer_name": pd.array([f"Name {c}" for c in ids], dtype="string"),
            "country": pd.array(["France"] * len(ids), dtype="string"),
            "sales_rep_id": pd.array(["E1" if c != "C9" else None for c in ids], dtype="string"),
        }
    )


def hand_employees() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "employee_id": pd.array(["E1"], dtype="string"),
            "first_name": pd.array(["Leslie"], dtype="string"),
            "last_name": pd.array(["Jennings"], dtype="string"),
        }
    )


@pytest.fixture(scope="module")
def hand_result():  # type: ignore[no-untyped-def]
    return segment_customers(hand_fact(), hand_customers(), hand_employees(), as_of=AS_OF)


def test_hand_edges() -> None:
    recency = [v[0] for v in HAND.values()]
    frequency = [v[1] for v in HAND.values()]
    monetary = [v[2] for v in HAND.values()]
    assert fit_edges(np.array(recency)) == (20.0, 60.0, 120.0, 300.0)
    assert fit_edges(np.array(frequency)) == (2.0, 3.0, 4.0, 5.0)
    assert fit_edges(np.array(monetary)) == (500.0, 700.0, 900.0, 5000.0)
    # the F edges of the RFM model are fitted on repeat buyers only
    edges = fit_rfm_edges(np.array(recency), np.array(frequency), np.array(monetary))
    assert edges.frequency == (3.0, 4.0, 5.0, 6.0)


def test_hand_rfm_values_scores_and_segments(hand_result) -> None:  # type: ignore[no-untyped-def]
    cs = hand_result.customer_segments.set_index("customer_id")
    for cid, (recency, frequency, monetary) in HAND.items():
        row = cs.loc[cid]
        assert (row["recency_days"], row["frequency"], row["monetary"]) == (recency, frequency, monetary)
        assert (row["r_score"], row["f_score"], row["m_score"]) == EXPECTED[cid][0], cid
        assert row["segment"] == EXPECTED[cid][1], cid
        assert row["rfm_score"] == "".join(str(s) for s in EXPECTED[cid][0])
    # C7: 3 placed orders + 1 cancelled
    assert cs.loc["C7", "cancellation_rate"] == pytest.approx(0.25)
    assert cs.loc["C1", "product_lines"] == 3 and cs.loc["C4", "product_lines"] == 1
    assert cs.loc["C1", "tenure_days"] == 5 + 30 * 5
    assert cs.loc["C2", "avg_order_value"] == pytest.approx(1000.0)


def test_hand_actions_name_the_rep(hand_result) -> None:  # type: ignore[no-untyped-def]
    cs = hand_result.customer_segments.set_index("customer_id")
    # C8: high value (m 4) and high risk (r 2) → retention call by the rep, priority 1
    assert cs.loc["C8", "value_tier"] == "high" and cs.loc["C8", "risk"] == "high"
    assert cs.loc["C8", "action"] == "Retention call"
    assert (
        cs.loc["C8", "action_detail"]
        == "Retention call by Leslie Jennings: spent $4,000 over 5 orders, 200 days quiet"
    )
    assert cs.loc["C8", "action_priority"] == 1
    assert cs.loc["C1", "action"] == "Loyalty invitation" and cs.loc["C1", "risk"] == "low"
    assert cs.loc["C9", "sales_rep_name"] is pd.NA
    assert "(no sales rep assigned)" in cs.loc["C9", "action_detail"]
    assert cs.loc["C10", "action_priority"] == 5


def test_hand_summary(hand_result) -> None:  # type: ignore[no-untyped-def]
    summary = hand_result.segment_summary.set_index("segment")
    assert list(summary.index) == list(SEGMENT_NAMES)
    total = sum(v[2] for v in HAND.values())
    assert summary.loc["Champions", "customers"] == 2  # C1, C2
    assert summary.loc["Champions", "net_sales"] == pytest.approx(11000.0)
    assert summary.loc["Champions", "sales_share"] == pytest.approx(11000.0 / total)
    assert summary.loc["Lost", "avg_recency_days"] == pytest.approx((60 + 300 + 400) / 3)  # C5, C9, C10
    assert summary.loc["New", "customers"] == 0 and pd.isna(summary.loc["New", "avg_monetary"])
    assert summary["customers"].sum() == 10


def test_frames_have_exactly_the_table_columns(hand_result) -> None:  # type: ignore[no-untyped-def]
    assert list(hand_result.customer_segments.columns) == CUSTOMER_SEGMENTS.column_names
    assert list(hand_result.segment_summary.columns) == SEGMENT_SUMMARY.column_names
    assert rpt_table("customer_segments") is CUSTOMER_SEGMENTS
    assert hand_result.customer_segments["customer_id"].is_unique


def test_ten_customers_are_too_few_to_cluster(hand_result) -> None:  # type: ignore[no-untyped-def]
    runs = {r.model_name: r for r in hand_result.model_runs}
    assert runs["customer_clusters"].status == "too_thin"
    assert hand_result.customer_segments["cluster_id"].isna().all()
    assert runs["rfm_segments"].status == "ok"
    assert runs["rfm_segments"].metrics["segment_sizes"]["Champions"] == 2


def test_default_as_of_is_day_after_last_order() -> None:
    result = segment_customers(hand_fact(), hand_customers(), hand_employees())
    last = AS_OF - timedelta(days=5)
    assert result.model.as_of == last + timedelta(days=1)
    assert result.customer_segments.set_index("customer_id").loc["C1", "recency_days"] == 1


def test_no_orders_is_a_clear_error() -> None:
    with pytest.raises(SalesBIError, match="no orders"):
        segment_customers(hand_fact().iloc[0:0], hand_customers(), hand_employees())


# ---------------------------------------------------------------- ties


def test_ties_keep_all_scores_on_a_small_skewed_sample() -> None:
    values = np.array([1, 1, 1, 1, 1, 1, 2, 3, 4, 5])
    assert apply_edges(values, fit_edges(values)).tolist() == [1, 1, 1, 1, 1, 1, 2, 3, 4, 5]


def test_few_distinct_values_spread_over_the_scale() -> None:
    for values, scores in (
        ([3, 3, 3], [3, 3, 3]),
        ([1, 2, 2], [1, 5, 5]),
        ([1, 2, 3], [1, 3, 5]),
        ([4, 3, 2, 1], [5, 4, 2, 1]),
    ):
        arr = np.array(values)
        assert apply_edges(arr, fit_edges(arr)).tolist() == scores


def test_seven_distinct_values_by_hand() -> None:
    # targets 1.4, 2.8, 4.2, 5.6 customers → boundaries after 1, 3, 4, 6 values
    arr = np.arange(1, 8)
    assert apply_edges(arr, fit_edges(arr)).tolist() == [1, 2, 2, 3, 4, 4, 5]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=60))
def test_scores_are_monotone_ties_together_and_complete(values: list[int]) -> None:
    arr = np.array(values, dtype="float64")
    scores = apply_edges(arr, fit_edges(arr))
    order = np.argsort(arr, kind="stable")
    assert (np.diff(scores[order]) >= 0).all()
    for v in np.unique(arr):
        assert len(set(scores[arr == v].tolist())) == 1
    if len(np.unique(arr)) >= 5:
        assert set(scores.tolist()) == {1, 2, 3, 4, 5}
    assert scores.min() >= 1 and scores.max() <= 5


def test_score_map_rules() -> None:
    assert segment_name(5, 1, 1) == "New"
    assert segment_name(5, 2, 5) == "Potential Loyalist"
    assert segment_name(3, 4, 2) == "Loyal"
    assert segment_name(3, 3, 1) == "Need Attention"
    assert segment_name(2, 2, 5) == "Hibernating"
    assert segment_name(1, 4, 3) == "At Risk"
    assert segment_name(1, 4, 4) == "Can't Lose Them"
    assert segment_name(5, 4, 3) == "Loyal"


def test_single_customer_from_rfm_and_history_matches_batch(hand_result) -> None:  # type: ignore[no-untyped-def]
    model = hand_result.model
    batch = hand_result.customer_segments.set_index("customer_id")
    fact = hand_fact()
    for cid in HAND:
        history = fact[fact["customer_id"] == cid][
            ["order_id", "order_date", "net_sales", "is_cancelled", "product_line_id"]
        ]
        rep = batch.loc[cid, "sales_rep_name"]
        single = segment_from_history(history, model, sales_rep_name=None if pd.isna(rep) else rep)
        for column in (
            "recency_days",
            "frequency",
            "monetary",
            "r_score",
            "f_score",
            "m_score",
            "segment",
            "risk",
            "value_tier",
            "action",
            "action_detail",
            "action_priority",
            "cancellation_rate",
        ):
            assert single[column] == batch.loc[cid, column], (cid, column)
        r, f, m = HAND[cid]
        assert segment_from_rfm(r, f, m, model)["segment"] == EXPECTED[cid][1]
