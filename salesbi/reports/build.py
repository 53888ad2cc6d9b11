"""Build every report table (star schema and analytic tables) from the canonical ``core`` frames."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pandas as pd

from salesbi.reports import dims, monthly, summaries
from salesbi.reports.context import ReportContext, build_context
from salesbi.reports.fact import FACT_ORDER_LINES, build_fact_order_lines
from salesbi.reports.params import ReportParams
from salesbi.types import conform

__all__ = ["ReportParams", "build_reports"]


def _calendar_bounds(fact: pd.DataFrame, as_of: date) -> tuple[date, date]:
    """Return the first and last day that the calendar must cover (order, ship and as-of dates)."""
    dates = [pd.Timestamp(as_of) - pd.Timedelta(days=1)]
    for col in ("order_date", "shipped_date"):
        s = fact[col].dropna()
        if len(s):
            dates += [s.min(), s.max()]
    return min(dates).date(), max(dates).date()


#: builds ``sales_monthly``, ``customer_growth`` and ``order_value_distribution`` from the context
MonthlyBuilder = Callable[[ReportContext], dict[str, pd.DataFrame]]


def full_monthly_tables(ctx: ReportContext) -> dict[str, pd.DataFrame]:
    """Return ``sales_monthly``, ``customer_growth`` and ``order_value_distribution`` built in full."""
    return {
        "sales_monthly": monthly.build_sales_monthly(ctx),
        "customer_growth": monthly.build_customer_growth(ctx),
        "order_value_distribution": monthly.build_order_value_distribution(ctx),
    }


def build_reports(
    core: dict[str, pd.DataFrame],
    params: ReportParams | None = None,
    monthly_tables: MonthlyBuilder = full_monthly_tables,
) -> dict[str, pd.DataFrame]:
    """Return every report table except ``insights``, keyed by its ``rpt`` name.

    Each frame has exactly its definition's columns (``salesbi.reports.tables``) and dtypes.
    ``insights`` is built afterwards by :func:`salesbi.reports.insights.build_insights`, which
    also reads the segmentation, prediction and forecast tables. ``monthly_tables`` builds the
    three monthly tables (a daily run splices them: :mod:`salesbi.incremental_reports`).
    """
    params = params or ReportParams()
    fact = conform(build_fact_order_lines(core), FACT_ORDER_LINES)
    ctx = build_context(core, fact, params)
    first, last = _calendar_bounds(fact, ctx.as_of)
    return {
        "dim_date": dims.build_dim_date(first, last, params.fiscal_year_start_month),
        "dim_geography": dims.build_dim_geography(core["customers"]),
        "dim_office": dims.build_dim_office(core["offices"], core["employees"]),
        "dim_employee": dims.build_dim_employee(
            core["employees"], core["offices"], core["customers"], ctx.orders
        ),
        "dim_product_line": dims.build_dim_product_line(core["product_lines"], core["products"]),
        "dim_product": dims.build_dim_product(core["products"], core["product_lines"]),
        "dim_customer": dims.build_dim_customer(core["customers"], core["employees"]),
        "fact_order_lines": fact,
        "customer_summary": summaries.build_customer_summary(ctx),
        "location_summary": summaries.build_location_summary(ctx),
        "product_summary": summaries.build_product_summary(ctx),
        "product_line_summary": summaries.build_product_line_summary(ctx),
        "employee_performance": summaries.build_employee_performance(ctx),
        **monthly_tables(ctx),
    }
