"""Dimension tables of the star schema: date, geography, office, employee, product line, product, customer."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from salesbi.reports.fact import geography_key
from salesbi.reports.summaries import employee_names
from salesbi.reports.tables import (
    DIM_CUSTOMER,
    DIM_DATE,
    DIM_EMPLOYEE,
    DIM_GEOGRAPHY,
    DIM_OFFICE,
    DIM_PRODUCT,
    DIM_PRODUCT_LINE,
)
from salesbi.types import conform

MONTH_NAMES: tuple[str, ...] = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
DAY_NAMES: tuple[str, ...] = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def build_dim_date(first: date, last: date, fiscal_year_start_month: int = 1) -> pd.DataFrame:
    """Return ``rpt.dim_date``: every day of the whole calendar years from ``first`` to ``last``.

    The fiscal year starting in month S is named by the calendar year in which it ends
    (S = 4: April 2004 .. March 2005 is FY2005); with S = 1 it equals the calendar year.
    """
    days = pd.date_range(date(first.year, 1, 1), date(last.year, 12, 31), freq="D")
    year = np.asarray(days.year)
    month = np.asarray(days.month)
    iso = days.isocalendar()
    dow = np.asarray(days.day_of_week) + 1
    s = fiscal_year_start_month
    fiscal_month = (month - s) % 12 + 1
    fiscal_year = year + ((month >= s) & (s > 1)).astype("int64")
    month_names = np.array(MONTH_NAMES)[month - 1]
    month_short = np.array([m[:3] for m in MONTH_NAMES])[month - 1]
    quarter = (month - 1) // 3 + 1
    year_text = year.astype(str)
    f = pd.DataFrame(
        {
            "date": days,
            "date_key": year * 10000 + month * 100 + np.asarray(days.day),
            "year": year,
            "quarter": quarter,
            "quarter_label": np.char.add("Q", quarter.astype(str)),
            "year_quarter": np.char.add(np.char.add(year_text, " Q"), quarter.astype(str)),
            "month": month,
            "month_name": month_names,
            "month_short": month_short,
            "month_start": days.to_period("M").to_timestamp(),
            "year_month": [f"{y:04d}-{m:02d}" for y, m in zip(year, month, strict=True)],
            "year_month_label": np.char.add(np.char.add(month_short.astype(str), " "), year_text),
            "year_month_key": year * 100 + month,
            "day_of_month": np.asarray(days.day),
            "day_of_year": np.asarray(days.day_of_year),
            "iso_year": iso["year"].to_numpy(),
            "iso_week": iso["week"].to_numpy(),
            "day_of_week": dow,
            "day_name": np.array(DAY_NAMES)[dow - 1],
            "day_short": np.array([d[:3] for d in DAY_NAMES])[dow - 1],
            "is_weekend": dow >= 6,
            "fiscal_year": fiscal_year,
            "fiscal_quarter": (fiscal_month - 1) // 3 + 1,
            "fiscal_month": fiscal_month,
            "fiscal_year_label": np.char.add("FY", fiscal_year.astype(str)),
        }
    )
    return conform(f, DIM_DATE)


def extend_dim_date(dim_date: pd.DataFrame, through: date, fiscal_year_start_month: int = 1) -> pd.DataFrame:
    """Return ``dim_date`` covering at least the whole calendar years up to ``through``.

    The forecast runs past the last order: without its dates in the calendar, a forecast
    month has no ``dim_date`` row to relate to and Power BI shows it under "(Blank)".
    """
    if dim_date.empty:
        return build_dim_date(through, through, fiscal_year_start_month)
    first = pd.Timestamp(dim_date["date"].min()).date()
    last = pd.Timestamp(dim_date["date"].max()).date()
    if through <= last:
        return dim_date
    return build_dim_date(first, through, fiscal_year_start_month)


def build_dim_geography(customers: pd.DataFrame) -> pd.DataFrame:
    """Return ``rpt.dim_geography``: one row per customer country and city."""
    c = customers[["country", "city", "state"]].copy()
    c["geography_key"] = geography_key(c["country"], c["city"])
    counts = c.groupby("geography_key").size().rename("customers")
    states = (
        c.dropna(subset=["state"])
        .groupby(["geography_key", "state"])
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["geography_key", "n", "state"], ascending=[True, False, True], kind="stable")
        .drop_duplicates("geography_key")
        .set_index("geography_key")["state"]
    )
    f = c.drop_duplicates("geography_key")[["geography_key", "country", "city"]].copy()
    f["country"] = f["country"].fillna("")
    f["city"] = f["city"].fillna("")
    f["state"] = f["geography_key"].map(states)
    f["customers"] = f["geography_key"].map(counts)
    f = f.sort_values("geography_key", kind="stable").reset_index(drop=True)
    return conform(f, DIM_GEOGRAPHY)


def build_dim_office(offices: pd.DataFrame, employees: pd.DataFrame) -> pd.DataFrame:
    """Return ``rpt.dim_office`` with a display name and the number of employees."""
    f = offices.copy()
    f["office_name"] = f["city"].fillna("") + ", " + f["country"].fillna("")
    f["employees"] = f["office_id"].map(employees.groupby("office_id").size()).fillna(0)
    return conform(f.sort_values("office_id", kind="stable").reset_index(drop=True), DIM_OFFICE)


def build_dim_employee(
    employees: pd.DataFrame, offices: pd.DataFrame, customers: pd.DataFrame, orders: pd.DataFrame
) -> pd.DataFrame:
    """Return ``rpt.dim_employee`` with names, office and manager, and whether each is a sales rep."""
    names = employee_names(employees)
    office_names = offices.set_index("office_id")
    f = employees.copy()
    f["employee_name"] = f["employee_id"].map(names)
    f["office_name"] = (
        f["office_id"].map(office_names["city"]) + ", " + f["office_id"].map(office_names["country"])
    )
    f["manager_name"] = f["manager_id"].map(names)
    reps = set(customers["sales_rep_id"].dropna()) | set(orders["employee_id"].dropna())
    f["is_sales_rep"] = f["employee_id"].isin(reps)
    return conform(f.sort_values("employee_id", kind="stable").reset_index(drop=True), DIM_EMPLOYEE)


def build_dim_product_line(product_lines: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Return ``rpt.dim_product_line`` with the number of products in each line."""
    f = product_lines.rename(columns={"name": "product_line_name"}).copy()
    f["products"] = f["product_line_id"].map(products.groupby("product_line_id").size()).fillna(0)
    return conform(f.sort_values("product_line_id", kind="stable").reset_index(drop=True), DIM_PRODUCT_LINE)


def build_dim_product(products: pd.DataFrame, product_lines: pd.DataFrame) -> pd.DataFrame:
    """Return ``rpt.dim_product`` with the line name, list margin and whether cost is known."""
    f = products.copy()
    f["product_line_name"] = f["product_line_id"].map(product_lines.set_index("product_line_id")["name"])
    price = f["list_price"].astype("float64")
    cost = f["unit_cost"].astype("float64")
    f["list_margin"] = ((price - cost) / price.where(price != 0)).round(4)
    f["has_cost"] = cost.notna()
    return conform(f.sort_values("product_id", kind="stable").reset_index(drop=True), DIM_PRODUCT)


def build_dim_customer(customers: pd.DataFrame, employees: pd.DataFrame) -> pd.DataFrame:
    """Return ``rpt.dim_customer`` with geography key, sales rep name and the rep's office."""
    f = customers.copy()
    f["geography_key"] = geography_key(f["country"], f["city"])
    f["sales_rep_name"] = f["sales_rep_id"].map(employee_names(employees))
    f["office_id"] = f["sales_rep_id"].map(employees.set_index("employee_id")["office_id"])
    return conform(f.sort_values("customer_id", kind="stable").reset_index(drop=True), DIM_CUSTOMER)
