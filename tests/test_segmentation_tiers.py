"""Segments mean something: observed future spend falls tier by tier on the generator's planted personas."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from salesbi.reports.fact import build_fact_order_lines
from salesbi.segmentation import segment_customers
from salesbi.segmentation.rfm import SEGMENT_TIERS


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    from salesbi.generate import generate_company
    from salesbi.reading.reader import core_frames, read_source

    folder: Path = tmp_path_factory.mktemp("tiers")
    generate_company(folder, order_lines=30_000, seed=7)
    core = core_frames(read_source(folder, "canonical"))
    return build_fact_order_lines(core), core


@pytest.mark.parametrize("as_of", ["2025-01-01", "2025-07-01"])
def test_future_spend_is_monotone_across_segment_tiers(company, as_of: str) -> None:  # type: ignore[no-untyped-def]
    fact, core = company
    day = pd.Timestamp(as_of)
    result = segment_customers(
        fact[fact["order_date"] < day], core["customers"], core["employees"], as_of=day.date()
    )
    seg = result.customer_segments.set_index("customer_id")
    # what each customer actually bought in the next 180 days (never seen by the segmentation)
    later = fact[(fact["order_date"] >= day) & (fact["order_date"] < day + pd.Timedelta(days=180))]
    spend = later[~later["is_cancelled"]].groupby("customer_id")["net_sales"].sum()
    seg["future"] = spend.reindex(seg.index).fillna(0.0).to_numpy()
    seg["tier"] = seg["segment"].map(SEGMENT_TIERS)
    by_tier = seg.groupby("tier")["future"].mean()
    assert list(by_tier.index) == [1, 2, 3, 4]
    assert by_tier.is_monotonic_decreasing, by_tier.to_dict()
    assert by_tier[1] > 3 * by_tier[2] and by_tier[3] > 2 * by_tier[4]  # clear steps, not noise
    # one-time buyers are exactly the F = 1 customers, and only tier 4 holds them
    one_time = seg["frequency"] <= 1
    assert (seg.loc[one_time, "f_score"] == 1).all() and (seg.loc[~one_time, "f_score"] >= 2).all()
    assert set(seg.loc[one_time, "tier"]) == {4} and (seg.loc[~one_time, "tier"] < 4).all()
    # the old one-time buyers are one segment (Lost), not split by purchase date into look-alikes
    old_once = one_time & (seg["r_score"] <= 3)
    assert set(seg.loc[old_once, "segment"]) == {"Lost"}
