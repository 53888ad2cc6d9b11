"""classicmodels: 326 orders over ~2.5 years forecast monthly, 3 months ahead."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from salesbi.forecasting import forecast_sales
from salesbi.forecasting.tables import FORECAST_ACCURACY, SALES_FORECAST
from salesbi.reading import reader
from salesbi.reports.fact import build_fact_order_lines

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def test_classicmodels_monthly_three_months(classicmodels_dir: Path) -> None:
    core = reader.core_frames(reader.read_source(classicmodels_dir, "classicmodels"))
    fact = build_fact_order_lines(core)
    assert fact["order_id"].nunique() == 326
    result = forecast_sales(fact, core["customers"], core["product_lines"], core["offices"], run_id="cm")
    assert (result.frequency, result.horizon) == ("M", 3)
    sf, acc = result.sales_forecast, result.forecast_accuracy
    assert list(sf.columns) == SALES_FORECAST.column_names
    assert list(acc.columns) == FORECAST_ACCURACY.column_names
    # orders run 2003-01-06 .. 2005-05-31: 29 full months, then June-August 2005 forecast
    total = sf[sf["series_id"] == "total"]
    assert len(total) == 29 + 3
    assert list(total[total["is_future"]]["date"].dt.strftime("%Y-%m")) == ["2005-06", "2005-07", "2005-08"]
    # 7 product lines, 5 countries + Other, 7 offices, and the total
    assert sf["series_id"].nunique() == 1 + 7 + 6 + 7
    # history total = net sales of non-cancelled lines per month (independent pandas sum)
    months = fact["order_date"].dt.to_period("M").dt.to_timestamp()
    expected = fact.groupby(months)["net_sales"].sum()
    hist = total[~total["is_future"]].set_index("date")["actual"]
    pd.testing.assert_series_equal(
        hist.round(2), expected.reindex(hist.index).round(2), check_names=False, check_index_type=False
    )
    assert acc.groupby("series_id")["is_champion"].sum().eq(1).all()
    # every published forecast lies inside its own intervals (a biased model's residual quantiles
    # could put both bounds on one side; they are widened to include the point)
    shown = sf[sf["forecast"].notna()]
    assert len(shown) > 0
    for tag in ("80", "95"):
        assert (shown[f"lower_{tag}"] <= shown["forecast"]).all()
        assert (shown["forecast"] <= shown[f"upper_{tag}"]).all()
    assert (shown["lower_95"] <= shown["lower_80"]).all() and (shown["upper_80"] <= shown["upper_95"]).all()
