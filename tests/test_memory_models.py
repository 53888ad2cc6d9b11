"""Issue 18 memory: the model steps read the fact's lines without copying them.

The references are the code as it was before the change (kept below, verbatim but for its names):
the segmentation and prediction input (``lines_from_fact``) and the forecast's per-line frame
(a copy of five fact columns merged with the customers' country). The new code must give the
same frames, value for value and dtype for dtype, and share the fact's columns instead of
copying them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salesbi.forecasting.series import build_series, series_lines
from salesbi.reading.reader import core_frames, read_source
from salesbi.reports.fact import FACT_ORDER_LINES, build_fact_order_lines
from salesbi.segmentation.history import LINE_COLUMNS, lines_from_fact
from salesbi.types import conform
from tests.test_memory_fact import _edge_cases


def _old_normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """``salesbi.segmentation.history._normalise`` before the change."""
    out = pd.DataFrame(index=frame.index)
    out["customer_id"] = frame["customer_id"].astype("string")
    out["order_id"] = frame["order_id"].astype("string")
    out["order_date"] = pd.to_datetime(frame["order_date"]).astype("datetime64[s]")
    out["net_sales"] = pd.to_numeric(frame["net_sales"]).astype("float64").fillna(0.0)
    out["is_cancelled"] = frame["is_cancelled"].astype("boolean").fillna(False).astype(bool)
    out["product_line_id"] = frame["product_line_id"].astype("string")
    out["employee_id"] = frame["employee_id"].astype("string")
    return out.reset_index(drop=True)


def _old_series_lines(fact: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """The first lines of ``salesbi.forecasting.series._series_parts`` before the change."""
    f = fact[["order_date", "net_sales", "customer_id", "product_line_id", "office_id"]].copy()
    f["net_sales"] = f["net_sales"].astype("float64").fillna(0.0)
    cust = customers[["customer_id", "country"]].drop_duplicates("customer_id")
    f = f.merge(cust, on="customer_id", how="left")
    f["country"] = f["country"].astype("string").fillna("Unknown")
    return f


@pytest.fixture(scope="module")
def cores(sample_company: Path) -> dict[str, dict[str, pd.DataFrame]]:
    """Return the generated company's core frames and the same with edge cases."""
    core = core_frames(read_source(sample_company, "canonical"))
    edge = _edge_cases(core)
    edge["customers"].loc[2, "country"] = pd.NA  # a customer without country: "Unknown"
    return {"generator": core, "edge cases": edge}


def _fact(core: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return conform(build_fact_order_lines(core), FACT_ORDER_LINES)


def test_lines_from_fact_equal_the_old_ones_and_share_the_fact(
    cores: dict[str, dict[str, pd.DataFrame]],
) -> None:
    for core in cores.values():
        fact = _fact(core)
        lines = lines_from_fact(fact)
        pd.testing.assert_frame_equal(lines, _old_normalise(fact[list(LINE_COLUMNS)]), check_exact=True)
        for column in ("order_date", "net_sales"):
            assert np.shares_memory(lines[column].to_numpy(), fact[column].to_numpy())
    # a fact with nulls in net_sales and dates as text: converted as before (a copy, then)
    fact = _fact(cores["generator"]).head(500)
    odd = fact.assign(order_date=fact["order_date"].dt.strftime("%Y-%m-%d"))
    odd.loc[odd.index[::7], "net_sales"] = np.nan
    lines = lines_from_fact(odd)
    pd.testing.assert_frame_equal(lines, _old_normalise(odd[list(LINE_COLUMNS)]), check_exact=True)
    assert (lines["net_sales"].iloc[::7] == 0.0).all()
    lines.loc[0, "net_sales"] = -1.0  # copy-on-write: the fact is not changed through the lines
    assert fact.loc[0, "net_sales"] != -1.0


def test_the_forecast_lines_equal_the_old_ones_and_share_the_fact(
    cores: dict[str, dict[str, pd.DataFrame]],
) -> None:
    for name, core in cores.items():
        fact = _fact(core)
        new = series_lines(fact, core["customers"])
        pd.testing.assert_frame_equal(new, _old_series_lines(fact, core["customers"]), check_exact=True)
        for column in ("order_date", "net_sales"):
            assert np.shares_memory(new[column].to_numpy(), fact[column].to_numpy())
        if name == "edge cases":  # the cases are really there: unknown customer, customer without country
            assert (new["country"] == "Unknown").sum() > 1
    fact = _fact(cores["generator"]).head(500)
    fact.loc[fact.index[::9], "net_sales"] = np.nan
    fact.index = fact.index + 1000  # another index: the lines are numbered from 0, as the merge did
    customers = cores["generator"]["customers"]
    pd.testing.assert_frame_equal(
        series_lines(fact, customers), _old_series_lines(fact, customers), check_exact=True
    )


def test_the_forecast_panel_is_unchanged_by_sharing(cores: dict[str, dict[str, pd.DataFrame]]) -> None:
    """build_series on the fact equals build_series on a deep copy, and leaves the fact as it was."""
    core = cores["generator"]
    fact = _fact(core)
    before = fact.copy(deep=True)
    args = (core["customers"], core["product_lines"], core["offices"], "M")
    panel = build_series(fact, *args)
    again = build_series(before.copy(deep=True), *args)
    np.testing.assert_array_equal(panel.values, again.values)
    pd.testing.assert_frame_equal(panel.meta, again.meta)
    pd.testing.assert_frame_equal(fact, before)
