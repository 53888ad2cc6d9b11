"""Report tables on hand-made histories: growth ledger, MoM/YoY, tiers, ABC, ranks, ties, null profit."""

from __future__ import annotations

import json
import math
from datetime import date

import pandas as pd
import pytest

from salesbi.errors import ConfigurationError
from salesbi.forecasting.tables import FORECAST_ACCURACY, SALES_FORECAST
from salesbi.reports.build import ReportParams, build_reports
from salesbi.reports.insights import build_insights, forecast_findings
from salesbi.reports.tables import TABLES_BY_NAME
from salesbi.types import conform, pandas_dtype
from tests.reports_helpers import make_core


def one(order_id: str, customer: str, day: str, amount: float, status: str = "shipped", product: str = "P1"):  # type: ignore[no-untyped-def]
    """Return a one-line order worth ``amount`` (quantity 1)."""
    return (order_id, customer, day, status, [(product, 1, amount, 0.0)])


LEDGER_ORDERS = [
    one("1", "C1", "2023-01-10", 100),
    one("2", "C2", "2023-01-15", 100),
    one("3", "C4", "2023-02-01", 50, status="cancelled"),
    one("4", "C1", "2023-02-10", 100),
    one("5", "C3", "2023-03-05", 100),
    one("6", "C3", "2023-03-20", 100),
    one("7", "C2", "2023-04-15", 100),
    one("8", "C1", "2023-05-10", 100),
    one("9", "C3", "2023-06-01", 100, status="cancelled"),
]


def test_every_table_matches_its_definition() -> None:
    out = build_reports(make_core(LEDGER_ORDERS))
    assert set(out) == set(TABLES_BY_NAME) - {"insights"}
    for name, frame in out.items():
        table = TABLES_BY_NAME[name]
        assert list(frame.columns) == table.column_names, name
        for c in table.columns:
            assert str(frame[c.name].dtype) == str(pd.Series(dtype=pandas_dtype(c)).dtype), (name, c.name)
        assert not frame.duplicated(list(table.key)).any(), name


def test_growth_ledger_month_by_month() -> None:
    g = build_reports(make_core(LEDGER_ORDERS), ReportParams(churn_months=2))["customer_growth"]
    assert g["year_month"].tolist() == ["2023-01", "2023-02", "2023-03", "2023-04", "2023-05", "2023-06"]
    # hand count: C1 active Jan, Feb, May; C2 Jan, Apr; C3 Mar (twice); C4 and C3-June are cancelled only
    assert g["new"].tolist() == [2, 0, 1, 0, 0, 0]
    assert g["retained"].tolist() == [0, 1, 0, 0, 0, 0]
    assert g["regained"].tolist() == [0, 0, 0, 1, 1, 0]
    assert g["churned"].tolist() == [0, 0, 1, 1, 1, 1]  # C2 (Mar), C1 (Apr), C3 (May), C2 (Jun)
    assert g["active"].tolist() == [2, 1, 1, 1, 1, 0]
    assert g["customers_in_window"].tolist() == [2, 2, 2, 2, 2, 1]
    qr = g["quick_ratio"].tolist()
    assert math.isnan(qr[0]) and math.isnan(qr[1])
    assert qr[2:] == [1.0, 1.0, 1.0, 0.0]


def test_growth_ledger_with_longer_churn_window() -> None:
    g = build_reports(make_core(LEDGER_ORDERS), ReportParams(churn_months=3))["customer_growth"]
    # N = 3: Jan→Apr (C2) and Feb→May (C1) are gaps of 3, so both are retained, not regained
    assert g["retained"].tolist() == [0, 1, 0, 1, 1, 0]
    assert g["regained"].tolist() == [0, 0, 0, 0, 0, 0]
    assert g["churned"].tolist() == [0, 0, 0, 0, 0, 1]  # only C3 (last order March) by June


def test_sales_monthly_mom_yoy_and_ytd() -> None:
    orders = [
        one("1", "C1", "2023-01-05", 100),
        one("2", "C1", "2023-02-05", 200),
        one("3", "C2", "2023-02-06", 999, status="cancelled"),
        one("4", "C2", "2024-01-05", 150),
        one("5", "C1", "2024-02-05", 100),
    ]
    m = build_reports(make_core(orders))["sales_monthly"].set_index("year_month")
    assert len(m) == 14
    assert m.loc["2023-02", "net_sales"] == 200.0
    assert m.loc["2023-02", "orders_placed"] == 2 and m.loc["2023-02", "orders_cancelled"] == 1
    assert m.loc["2023-02", "mom_growth"] == pytest.approx(1.0)
    assert m.loc["2023-03", "mom_growth"] == pytest.approx(-1.0)
    assert pd.isna(m.loc["2023-04", "mom_growth"])  # zero base → null, never inf
    assert pd.isna(m.loc["2023-02", "yoy_growth"])
    assert m.loc["2024-01", "yoy_growth"] == pytest.approx(0.5)
    assert m.loc["2024-02", "yoy_growth"] == pytest.approx(-0.5)
    assert m.loc["2024-02", "sales_ytd"] == 250.0
    assert m.loc["2024-01", "new_customers"] == 1 and m.loc["2024-01", "existing_customers"] == 0
    assert m.loc["2024-02", "active_customers"] == 1
    assert bool(m.loc["2024-01", "is_complete"]) and not bool(m.loc["2024-02", "is_complete"])
    assert m.loc["2023-02", "gross_profit"] == pytest.approx(200 - 6)


TIER_ORDERS = [
    one("1", "C1", "2023-01-10", 500),
    one("2", "C2", "2023-01-11", 300),
    one("3", "C4", "2023-01-12", 100, product="P2"),
    one("4", "C3", "2023-01-13", 100, product="P2"),
]


def test_loyalty_tiers_ranks_and_ties() -> None:
    cs = build_reports(make_core(TIER_ORDERS))["customer_summary"].set_index("customer_id")
    # C3 and C4 tie at 100: the lower id ranks first
    assert cs["sales_rank"].to_dict() == {"C1": 1, "C2": 2, "C3": 3, "C4": 4, "C5": 5}
    # share before: C1 0 → Platinum, C2 0.5 → Gold, C3 0.8 → Silver, C4 0.9 → Silver, C5 no sales
    assert cs["loyalty_tier"].to_dict() == {
        "C1": "Platinum",
        "C2": "Gold",
        "C3": "Silver",
        "C4": "Silver",
        "C5": "None",
    }
    assert cs.loc["C2", "cumulative_share"] == pytest.approx(0.8)
    assert cs.loc["C1", "gross_profit"] == pytest.approx(494.0)
    assert cs.loc["C1", "margin"] == pytest.approx(494 / 500)
    assert cs.loc["C5", "orders"] == 0 and pd.isna(cs.loc["C5", "avg_order_value"])
    assert cs.loc["C1", "recency_days"] == 4  # as_of defaults to the day after the last order (2023-01-14)


def test_abc_classes_and_product_lines() -> None:
    orders = [
        one("1", "C1", "2023-01-10", 850),
        one("2", "C2", "2023-01-11", 100, product="P2"),
        one("3", "C3", "2023-01-12", 50, product="P3"),
    ]
    out = build_reports(make_core(orders))
    ps = out["product_summary"].set_index("product_id")
    # before-shares 0, 0.85, 0.95 → A, B, C
    assert ps["abc_class"].to_dict() == {"P1": "A", "P2": "B", "P3": "C"}
    assert pd.isna(ps.loc["P3", "gross_profit"]) and pd.isna(ps.loc["P3", "margin"])
    assert ps.loc["P2", "gross_profit"] == pytest.approx(97.0)
    assert ps.loc["P1", "profit_rank"] == 1 and pd.isna(ps.loc["P3", "profit_rank"])
    pl = out["product_line_summary"].set_index("product_line_id")
    assert pl.loc["L2", "net_sales"] == 150.0
    assert pd.isna(pl.loc["L2", "gross_profit"])  # one of its products has no cost: unknown, not partial
    assert pl.loc["L1", "margin"] == pytest.approx(844 / 850)


def test_unknown_cost_gives_null_profit_and_margin() -> None:
    out = build_reports(make_core(TIER_ORDERS, uncosted=True))
    for name in ("customer_summary", "location_summary", "employee_performance", "sales_monthly"):
        assert out[name]["gross_profit"].isna().all(), name
        assert out[name]["margin"].isna().all(), name


def test_locations_employees_and_growth() -> None:
    orders = [
        one("1", "C1", "2022-03-01", 100),
        one("2", "C3", "2022-03-02", 300),
        one("3", "C1", "2023-03-01", 250),
        one("4", "C3", "2023-03-02", 300),
        one("5", "C4", "2023-03-03", 100, status="cancelled"),
    ]
    out = build_reports(make_core(orders), ReportParams(as_of=date(2024, 3, 1)))
    loc = out["location_summary"].set_index(["level", "location_key"])
    assert loc.loc[("country", "France"), "net_sales"] == 600.0
    assert loc.loc[("country", "France"), "sales_rank"] == 1
    assert loc.loc[("country", "USA"), "yoy_growth"] == pytest.approx(1.5)
    assert loc.loc[("country", "France"), "yoy_growth"] == pytest.approx(0.0)
    assert loc.loc[("city", "USA|New York"), "customers"] == 1
    assert loc.loc[("office", "O2"), "orders"] == 2
    assert loc.loc[("country", "USA"), "sales_share"] == pytest.approx(350 / 950)
    ep = out["employee_performance"].set_index("employee_id")
    assert sorted(ep.index) == ["E1", "E2"]  # E0 has no customers and no orders
    assert ep.loc["E2", "rank_overall"] == 1 and ep.loc["E1", "rank_in_office"] == 1
    assert ep.loc["E2", "customers_managed"] == 3 and ep.loc["E2", "customers_served"] == 1
    # two reps with sales: Gold = first ceil(0.2×2) = 1, Silver up to ceil(0.5×2) = 1, so E1 is Bronze
    assert ep["reward_tier"].to_dict() == {"E2": "Gold", "E1": "Bronze"}


def test_invalid_parameters_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="churn_months"):
        ReportParams(churn_months=0)
    with pytest.raises(ConfigurationError, match="fiscal_year_start_month"):
        ReportParams(fiscal_year_start_month=13)


def test_fiscal_calendar() -> None:
    dd = build_reports(make_core(TIER_ORDERS), ReportParams(fiscal_year_start_month=4))["dim_date"]
    dd = dd.set_index("date")
    assert len(dd) == 365 and dd.index.min() == pd.Timestamp("2023-01-01")
    march, april = dd.loc[pd.Timestamp("2023-03-31")], dd.loc[pd.Timestamp("2023-04-01")]
    assert (march["fiscal_year"], march["fiscal_month"], march["fiscal_quarter"]) == (2023, 12, 4)
    assert (april["fiscal_year"], april["fiscal_month"], april["fiscal_quarter"]) == (2024, 1, 1)
    assert april["iso_week"] == 13 and april["day_of_week"] == 6 and bool(april["is_weekend"])
    assert april["year_month_label"] == "Apr 2023" and april["year_month_key"] == 202304


def forecast_frames(
    actuals: dict[str, float],
    future: dict[str, tuple[float, float, float]],
    accuracy: list[tuple[str, str, float, bool]],
) -> dict[str, pd.DataFrame]:
    """Return rpt.sales_forecast / rpt.forecast_accuracy: a monthly total series plus a France series.

    ``actuals`` maps 'YYYY-MM' to net sales (the last two months also carry a backtest forecast);
    ``future`` maps 'YYYY-MM' to (forecast, lower_80, upper_80); ``accuracy`` rows are
    (series_id, model, wape, is_champion).
    """
    hist_months = sorted(actuals)
    rows = [
        {
            "date": f"{m}-01",
            "actual": actuals[m],
            "forecast": actuals[m] * 0.9 if m in hist_months[-2:] else None,
            "is_future": False,
            "is_backtest": m in hist_months[-2:],
        }
        for m in hist_months
    ] + [
        {
            "date": f"{m}-01",
            "actual": None,
            "forecast": f,
            "lower_80": lo,
            "upper_80": hi,
            "lower_95": lo * 0.9,
            "upper_95": hi * 1.1,
            "is_future": True,
            "is_backtest": False,
        }
        for m, (f, lo, hi) in sorted(future.items())
    ]
    total = pd.DataFrame(rows).assign(
        series_id="total", series_level="total", series_name="All sales", model="lightgbm"
    )
    # a country series with bigger numbers: must not leak into the company-wide finding
    france = total.assign(
        series_id="country:France",
        series_level="country",
        series_name="France",
        actual=total["actual"] * 10,
        forecast=total["forecast"] * 10,
    )
    sf = pd.concat([france, total], ignore_index=True).assign(frequency="M", run_id="r1")
    sf["month_start"] = sf["date"]
    acc = pd.DataFrame(
        [
            {
                "series_id": sid,
                "model": model,
                "series_level": "total" if sid == "total" else "country",
                "series_name": "All sales" if sid == "total" else "France",
                "frequency": "M",
                "horizon": 3,
                "wape": wape,
                "coverage_80": 0.8,
                "is_champion": champ,
                "status": "ok",
                "run_id": "r1",
            }
            for sid, model, wape, champ in accuracy
        ]
    )
    return {
        "sales_forecast": conform(sf, SALES_FORECAST),
        "forecast_accuracy": conform(acc, FORECAST_ACCURACY),
    }


def test_forecast_finding_next_month_vs_last_year_and_champion() -> None:
    actuals = {f"2023-{m:02d}": 100.0 + (m - 1) * 5 for m in range(1, 13)}  # Jan 2023 = 100
    frames = forecast_frames(
        actuals,
        {
            "2024-01": (120.0, 100.0, 140.0),
            "2024-02": (130.0, 105.0, 155.0),
            "2024-03": (150.0, 120.0, 180.0),
        },
        [
            ("total", "lightgbm", 0.12, True),
            ("total", "seasonal_naive", 0.20, False),
            ("total", "theta", 0.15, False),
            ("country:France", "theta", 0.30, True),
            ("country:France", "seasonal_naive", 0.50, False),
        ],
    )
    (f,) = forecast_findings(frames, ReportParams())
    assert f.insight_id == "forecast.sales" and f.topic == "forecast"
    assert f.finding == (
        "Net sales for January 2024 are forecast at 120 (80% interval 100 to 140), up 20.0% on January 2023 "
        "(100). Over the next 3 months, to March 2024, the forecast totals 400. The LightGBM model is used: "
        "backtest WAPE 12.0% vs 20.0% for seasonal naive."
    )
    assert (f.metric_name, f.metric_value, f.metric_format) == ("next_period_forecast", 120.0, "money")
    ins = build_insights(frames).set_index("insight_id")
    details = json.loads(ins.loc["forecast.sales", "details"])
    assert details["comparison"] == "same_period_last_year"
    assert details["comparison_date"] == "2023-01-01" and details["comparison_actual"] == 100.0
    assert details["growth"] == pytest.approx(0.2)
    assert details["horizon_periods"] == 3 and details["horizon_total"] == 400.0
    assert details["model"] == "lightgbm"
    assert details["wape"] == pytest.approx(0.12) and details["seasonal_naive_wape"] == pytest.approx(0.2)


def test_forecast_finding_falls_back_to_last_actual_month() -> None:
    actuals = {f"2023-{m:02d}": 100.0 + (m - 7) * 10 for m in range(7, 13)}  # Dec 2023 = 150
    frames = forecast_frames(
        actuals,
        {"2024-01": (120.0, 90.0, 150.0)},
        [("total", "seasonal_naive", 0.25, True), ("total", "lightgbm", 0.40, False)],
    )
    (f,) = forecast_findings(frames, ReportParams())
    assert f.finding == (
        "Net sales for January 2024 are forecast at 120 (80% interval 90 to 150), down 20.0% on the last "
        "actual month, December 2023 (150). The seasonal naive model is used: backtest WAPE 25.0%."
    )
    assert f.details["comparison"] == "last_actual" and f.details["horizon_periods"] == 1
    assert forecast_findings({"sales_forecast": frames["sales_forecast"].iloc[0:0]}, ReportParams()) == []


def test_fact_lookups_keep_merge_semantics() -> None:
    # lines sorted by order then line number as text; an unknown order drops its lines; an unknown
    # product or employee leaves its columns null; the order's employee wins over the customer's rep
    from salesbi.errors import SalesBIError
    from salesbi.reports.fact import build_fact_order_lines

    core = make_core(
        [
            ("10", "C1", "2024-01-05", "shipped", [("P2", 1, 5.0, 0.0), ("P1", 2, 10.0, 0.1)]),
            ("9", "C3", "2024-01-06", "shipped", [("P1", 1, 10.0, 0.0)]),
        ]
    )
    items = core["order_items"]
    core["order_items"] = pd.concat(
        [
            items.iloc[::-1],
            items.iloc[[0]].assign(order_id="404"),
            items.iloc[[0]].assign(order_id="9", line_number=2, product_id="P404"),
        ],
        ignore_index=True,
    ).pipe(lambda f: f.astype(items.dtypes.to_dict()))
    core["orders"].loc[core["orders"]["order_id"] == "9", "employee_id"] = "E404"
    fact = build_fact_order_lines(core)
    assert list(zip(fact["order_id"], fact["line_number"], strict=True)) == [
        ("10", 1),
        ("10", 2),
        ("9", 1),
        ("9", 2),
    ]
    assert fact["customer_id"].tolist() == ["C1", "C1", "C3", "C3"]
    assert fact["employee_id"].tolist() == ["E1", "E1", "E404", "E404"]
    assert fact["office_id"].isna().tolist() == [False, False, True, True]
    unknown_product = fact.iloc[3]
    assert pd.isna(unknown_product["product_line_id"]) and pd.isna(unknown_product["cost"])
    assert fact["revenue"].tolist()[:2] == [5.0, 18.0]

    core["products"] = pd.concat([core["products"], core["products"].iloc[[0]]], ignore_index=True)
    with pytest.raises(SalesBIError, match=r"products\.product_id has duplicate values"):
        build_fact_order_lines(core)
