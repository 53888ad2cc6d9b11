"""Customer, location, product and employee summaries (the four management questions)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from salesbi.reports.context import ReportContext
from salesbi.reports.measures import cumulative_shares, growth, rank_desc, safe_ratio, tier_by_share
from salesbi.reports.tables import (
    ABC_CLASSES,
    CUSTOMER_SUMMARY,
    EMPLOYEE_PERFORMANCE,
    LOCATION_SUMMARY,
    LOYALTY_TIERS,
    PRODUCT_LINE_SUMMARY,
    PRODUCT_SUMMARY,
)
from salesbi.types import conform


def _sold_orders(ctx: ReportContext) -> pd.DataFrame:
    """Return the non-cancelled orders with last/prior 12-month sales columns."""
    o = ctx.orders[~ctx.orders["is_cancelled"]].copy()
    o["sales_last_12m"] = np.where(o["in_last_12m"], o["net_sales"], 0.0)
    o["sales_prior_12m"] = np.where(o["in_prior_12m"], o["net_sales"], 0.0)
    o["profit_unknown"] = o["net_profit"].isna().astype("int64")
    return o


def aggregate_orders(orders: pd.DataFrame, key: str) -> pd.DataFrame:
    """Return per-``key`` orders, customers, units, net sales, profit (null if any unknown), 12m sales.

    ``orders`` are non-cancelled orders as returned by ``_sold_orders``; rows with a null key drop.
    """
    g = orders.groupby(key, sort=True, observed=True, dropna=True)
    out = g.agg(
        orders=("order_id", "size"),
        customers=("customer_id", "nunique"),
        units=("units", "sum"),
        net_sales=("net_sales", "sum"),
        gross_profit=("net_profit", "sum"),
        profit_unknown=("profit_unknown", "sum"),
        sales_last_12m=("sales_last_12m", "sum"),
        sales_prior_12m=("sales_prior_12m", "sum"),
    )
    out["gross_profit"] = out["gross_profit"].where(out["profit_unknown"] == 0)
    out = out.drop(columns="profit_unknown")
    for col in ("net_sales", "gross_profit", "sales_last_12m", "sales_prior_12m"):
        out[col] = out[col].round(2)
    return out


def _finish_growth(frame: pd.DataFrame, ctx: ReportContext) -> None:
    """Fill ``yoy_growth`` (and null the prior sales when the data do not reach back that far)."""
    if ctx.covers_prior_12m:
        frame["yoy_growth"] = growth(frame["sales_last_12m"], frame["sales_prior_12m"])
    else:
        frame["sales_prior_12m"] = np.nan
        frame["yoy_growth"] = np.nan


def _fill_zero(frame: pd.DataFrame, columns: list[str]) -> None:
    """Replace nulls by 0 in ``columns`` (entities without sales)."""
    for c in columns:
        frame[c] = frame[c].fillna(0)


def employee_names(employees: pd.DataFrame) -> pd.Series:
    """Return 'First Last' per employee_id."""
    names = (employees["first_name"].fillna("") + " " + employees["last_name"].fillna("")).str.strip()
    return pd.Series(names.to_numpy(), index=employees["employee_id"].to_numpy(), dtype="string")


def build_customer_summary(ctx: ReportContext) -> pd.DataFrame:
    """Return ``rpt.customer_summary``: every customer, ranked by net sales, with its loyalty tier."""
    p = ctx.params
    customers = ctx.core["customers"]
    sold = _sold_orders(ctx)
    agg = aggregate_orders(sold, "customer_id")
    dates = sold.groupby("customer_id", observed=True)["order_date"].agg(["min", "max"])
    cancelled = ctx.orders[ctx.orders["is_cancelled"]].groupby("customer_id", observed=True).size()

    f = customers[["customer_id", "customer_name", "country", "city", "sales_rep_id"]].copy()
    f["geography_key"] = f["country"].fillna("") + "|" + f["city"].fillna("")
    f["sales_rep_name"] = f["sales_rep_id"].map(employee_names(ctx.core["employees"]))
    f = f.join(agg, on="customer_id").join(dates, on="customer_id")
    f["cancelled_orders"] = f["customer_id"].map(cancelled)
    _fill_zero(f, ["orders", "cancelled_orders", "units", "net_sales", "sales_last_12m", "sales_prior_12m"])
    f.loc[f["orders"] == 0, "gross_profit"] = np.nan
    f["margin"] = safe_ratio(f["gross_profit"], f["net_sales"])
    f["avg_order_value"] = safe_ratio(f["net_sales"], f["orders"]).round(2)
    f["first_order_date"] = f["min"]
    f["last_order_date"] = f["max"]
    as_of = pd.Timestamp(ctx.as_of)
    f["tenure_days"] = (as_of - f["first_order_date"]).dt.days.astype("Int64")
    f["recency_days"] = (as_of - f["last_order_date"]).dt.days.astype("Int64")
    f["sales_rank"] = rank_desc(f, "net_sales", "customer_id")
    f["sales_share"], f["cumulative_share"], before = cumulative_shares(f, "net_sales", "sales_rank")
    f["loyalty_tier"] = tier_by_share(
        before,
        f["net_sales"],
        (p.platinum_share, p.gold_share, p.silver_share),
        LOYALTY_TIERS[:4],
        LOYALTY_TIERS[4],
    )
    f["is_top_n"] = (f["sales_rank"] <= p.top_n) & (f["net_sales"] > 0)
    f["is_lapsed"] = (f["recency_days"] >= p.lapsed_days).fillna(False)
    _finish_growth(f, ctx)
    f["as_of_date"] = as_of
    f = f.sort_values("sales_rank", kind="stable").reset_index(drop=True)
    return conform(f, CUSTOMER_SUMMARY)


def _level_frame(agg: pd.DataFrame, level: str, ctx: ReportContext) -> pd.DataFrame:
    """Return ``agg`` with shares, ranks and growth for one location level."""
    f = agg.reset_index().rename(columns={agg.index.name: "location_key"})
    f["level"] = level
    f["margin"] = safe_ratio(f["gross_profit"], f["net_sales"])
    f["sales_rank"] = rank_desc(f, "net_sales", "location_key")
    f["sales_share"], _, _ = cumulative_shares(f, "net_sales", "sales_rank")
    _finish_growth(f, ctx)
    return f


def build_location_summary(ctx: ReportContext) -> pd.DataFrame:
    """Return ``rpt.location_summary``: customer countries, states/regions, cities and sales offices.

    The state level (key ``<country>|<state>``) has rows only where customers have a state.
    """
    sold = _sold_orders(ctx)
    customers = ctx.core["customers"]
    geo = customers[["country", "city"]].copy()
    geo["geography_key"] = geo["country"].fillna("") + "|" + geo["city"].fillna("")
    geo = geo.drop_duplicates("geography_key").set_index("geography_key")
    sold["country"] = sold["geography_key"].map(geo["country"])

    countries = _level_frame(aggregate_orders(sold, "country"), "country", ctx)
    countries["country"] = countries["location_key"]
    countries["location_name"] = countries["location_key"]

    # state/region level: only customers with a state (key "<country>|<state>")
    with_state_rows = customers[customers["state"].notna()].drop_duplicates("customer_id")
    state_key = (with_state_rows["country"].fillna("") + "|" + with_state_rows["state"]).set_axis(
        with_state_rows["customer_id"].to_numpy()
    )
    with_state = sold.assign(state_key=sold["customer_id"].map(state_key))
    with_state = with_state[with_state["state_key"].notna()]
    states = _level_frame(aggregate_orders(with_state, "state_key"), "state", ctx)
    parts = states["location_key"].str.split("|", n=1, expand=True) if len(states) else None
    states["country"] = parts[0] if parts is not None else pd.Series(dtype="string")
    state_name = parts[1] if parts is not None else pd.Series(dtype="string")
    states["location_name"] = state_name.fillna("") + ", " + states["country"].fillna("")

    cities = _level_frame(aggregate_orders(sold, "geography_key"), "city", ctx)
    cities["country"] = cities["location_key"].map(geo["country"])
    cities["city"] = cities["location_key"].map(geo["city"])
    cities["location_name"] = cities["city"].fillna("") + ", " + cities["country"].fillna("")

    offices_core = ctx.core["offices"].set_index("office_id")
    offices = _level_frame(aggregate_orders(sold, "office_id"), "office", ctx)
    offices["office_id"] = offices["location_key"]
    offices["country"] = offices["location_key"].map(offices_core["country"])
    offices["city"] = offices["location_key"].map(offices_core["city"])
    offices["location_name"] = (
        offices["city"].fillna(offices["location_key"]) + ", " + offices["country"].fillna("")
    )

    f = pd.concat([countries, states, cities, offices], ignore_index=True)
    level_order = f["level"].map({"country": 0, "state": 1, "city": 2, "office": 3})
    f = f.assign(_lvl=level_order).sort_values(["_lvl", "sales_rank"], kind="stable").reset_index(drop=True)
    return conform(f, LOCATION_SUMMARY)


def _abc(f: pd.DataFrame, ctx: ReportContext, key: str) -> pd.DataFrame:
    """Add sales_rank, sales_share, cumulative_share and abc_class to ``f`` (one row per ``key``)."""
    p = ctx.params
    f["sales_rank"] = rank_desc(f, "net_sales", key)
    f["sales_share"], f["cumulative_share"], before = cumulative_shares(f, "net_sales", "sales_rank")
    f["abc_class"] = tier_by_share(
        before, f["net_sales"], (p.abc_a_share, p.abc_b_share), ABC_CLASSES, ABC_CLASSES[-1]
    )
    return f


def _product_lines(ctx: ReportContext, key: str) -> pd.DataFrame:
    """Return per-``key`` aggregates of the non-cancelled fact lines (product_id or product_line_id).

    One row per key with sold lines (index: the keys, sorted): orders, customers (distinct),
    units, net_sales, cost (null when any line's cost is unknown), discount_amount,
    sales_last_12m, sales_prior_12m (the line's order date in the context's windows),
    gross_profit. Combined from the partial sums the fact's blocks added
    (:class:`~salesbi.reports.partials.ProductPartials`): no per-line array.
    """
    partials = ctx.lines.partials
    if key == "product_id":
        by_key = partials.product
    elif key == "product_line_id":
        by_key = partials.product_line
    else:
        raise KeyError(f"the report lines have no partials of {key}")
    return by_key.table(
        pd.Timestamp(ctx.last_12m_start), pd.Timestamp(ctx.prior_12m_start), pd.Timestamp(ctx.as_of)
    )


def products_per_line(ctx: ReportContext) -> pd.Series:
    """Return per product_line_id the number of distinct products on its sold lines (lines with sales)."""
    return ctx.lines.partials.products_per_line()


def build_product_summary(ctx: ReportContext) -> pd.DataFrame:
    """Return ``rpt.product_summary``: every product with units, sales, profit, margin, ABC class."""
    products = ctx.core["products"]
    line_names = ctx.core["product_lines"].set_index("product_line_id")["name"]
    f = products[["product_id", "product_name", "product_line_id"]].copy()
    f["product_line_name"] = f["product_line_id"].map(line_names)
    f = f.join(_product_lines(ctx, "product_id"), on="product_id")
    _fill_zero(
        f,
        ["orders", "customers", "units", "net_sales", "discount_amount", "sales_last_12m", "sales_prior_12m"],
    )
    no_cost = products["unit_cost"].isna().to_numpy()
    f.loc[no_cost, ["cost", "gross_profit"]] = np.nan
    f.loc[~no_cost & (f["orders"] == 0).to_numpy(), ["cost", "gross_profit"]] = 0.0
    f["margin"] = safe_ratio(f["gross_profit"], f["net_sales"])
    f = _abc(f, ctx, "product_id")
    known = f["gross_profit"].notna()
    f["profit_rank"] = pd.Series(pd.NA, index=f.index, dtype="Int64")
    if known.any():
        f.loc[known, "profit_rank"] = rank_desc(f[known], "gross_profit", "product_id")
    _finish_growth(f, ctx)
    f = f.sort_values("sales_rank", kind="stable").reset_index(drop=True)
    return conform(f, PRODUCT_SUMMARY)


def build_product_line_summary(ctx: ReportContext) -> pd.DataFrame:
    """Return ``rpt.product_line_summary``: product lines with sales, profit, margin and ABC class."""
    lines = ctx.core["product_lines"]
    f = lines[["product_line_id", "name"]].rename(columns={"name": "product_line_name"}).copy()
    agg = _product_lines(ctx, "product_line_id")
    f = f.join(agg, on="product_line_id")
    f["products"] = f["product_line_id"].map(products_per_line(ctx))
    _fill_zero(
        f, ["products", "orders", "customers", "units", "net_sales", "sales_last_12m", "sales_prior_12m"]
    )
    line_has_uncosted = (
        ctx.core["products"].groupby("product_line_id")["unit_cost"].apply(lambda s: bool(s.isna().any()))
    )
    f.loc[
        (f["orders"] == 0) & ~f["product_line_id"].map(line_has_uncosted).fillna(False).astype(bool),
        [
            "cost",
            "gross_profit",
        ],
    ] = 0.0
    f["margin"] = safe_ratio(f["gross_profit"], f["net_sales"])
    f = _abc(f, ctx, "product_line_id")
    _finish_growth(f, ctx)
    f = f.sort_values("sales_rank", kind="stable").reset_index(drop=True)
    return conform(f, PRODUCT_LINE_SUMMARY)


def build_employee_performance(ctx: ReportContext) -> pd.DataFrame:
    """Return ``rpt.employee_performance``: every employee who manages customers or is credited orders."""
    p = ctx.params
    employees = ctx.core["employees"]
    offices = ctx.core["offices"].set_index("office_id")
    managed = ctx.core["customers"].groupby("sales_rep_id", observed=True).size()
    credited = set(ctx.orders["employee_id"].dropna().tolist())
    sold = _sold_orders(ctx)
    agg = aggregate_orders(sold, "employee_id")

    f = employees[["employee_id", "job_title", "office_id"]].copy()
    f["employee_name"] = f["employee_id"].map(employee_names(employees))
    f["office_name"] = f["office_id"].map(offices["city"]) + ", " + f["office_id"].map(offices["country"])
    f["customers_managed"] = f["employee_id"].map(managed)
    f = f.join(agg, on="employee_id")
    f["customers_served"] = f["customers"]
    _fill_zero(
        f,
        [
            "customers_managed",
            "customers_served",
            "orders",
            "units",
            "net_sales",
            "sales_last_12m",
            "sales_prior_12m",
        ],
    )
    keep = (f["customers_managed"] > 0) | f["employee_id"].isin(credited)
    f = f[keep.to_numpy(dtype=bool)].reset_index(drop=True)
    f.loc[f["orders"] == 0, "gross_profit"] = np.nan
    f["margin"] = safe_ratio(f["gross_profit"], f["net_sales"])
    f["avg_order_value"] = safe_ratio(f["net_sales"], f["orders"]).round(2)
    f["rank_overall"] = rank_desc(f, "net_sales", "employee_id")
    f["rank_in_office"] = rank_desc(
        f.assign(_o=f["office_id"].fillna("")), "net_sales", "employee_id", by="_o"
    )
    f["sales_share"], _, _ = cumulative_shares(f, "net_sales", "rank_overall")
    with_sales = int((f["net_sales"] > 0).sum())
    gold = math.ceil(p.reward_gold_share * with_sales)
    silver = math.ceil(p.reward_silver_share * with_sales)
    rank = f["rank_overall"].astype("int64")
    tier = np.where(rank <= gold, "Gold", np.where(rank <= silver, "Silver", "Bronze"))
    f["reward_tier"] = np.where(f["net_sales"] > 0, tier, "None")
    _finish_growth(f, ctx)
    f = f.sort_values("rank_overall", kind="stable").reset_index(drop=True)
    return conform(f, EMPLOYEE_PERFORMANCE)
