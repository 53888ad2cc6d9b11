"""Month-by-month tables: ``sales_monthly``, the ``customer_growth`` ledger, order value bins."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd

from salesbi.reports.context import ReportContext
from salesbi.reports.measures import growth, month_index, month_start_of_index, safe_ratio
from salesbi.reports.tables import CUSTOMER_GROWTH, ORDER_VALUE_DISTRIBUTION, SALES_MONTHLY
from salesbi.types import conform


def month_range(ctx: ReportContext) -> np.ndarray:
    """Return the month indices (see :func:`month_index`) from the first to the last order month."""
    if not len(ctx.orders):
        return np.array([], dtype="int64")
    m = month_index(ctx.orders["order_date"])
    return np.arange(int(m.min()), int(m.max()) + 1, dtype="int64")


def _month_labels(months: np.ndarray) -> tuple[pd.DatetimeIndex, list[str]]:
    """Return (first day, 'yyyy-mm' label) of each month index."""
    starts = month_start_of_index(months)
    return starts, [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in months]


def _is_complete(months: np.ndarray, as_of: date) -> np.ndarray:
    """Return whether each month ended on or before the as-of date."""
    next_starts = month_start_of_index(months + 1)
    return np.asarray(next_starts <= pd.Timestamp(as_of))


def active_pairs(orders: pd.DataFrame) -> pd.DataFrame:
    """Return distinct (customer_id, month) pairs of ``orders`` with a non-cancelled order, sorted.

    ``orders``: rows of :attr:`ReportContext.orders` (all of them, or those of some customers:
    a customer's contributions to the monthly tables depend on its own pairs only).
    """
    o = orders[~orders["is_cancelled"]]
    pairs = pd.DataFrame(
        {"customer_id": o["customer_id"].to_numpy(), "month": month_index(o["order_date"]).to_numpy()}
    )
    pairs = (
        pairs.drop_duplicates().sort_values(["customer_id", "month"], kind="stable").reset_index(drop=True)
    )
    return pairs


def month_sums(orders: pd.DataFrame, months: np.ndarray) -> pd.DataFrame:
    """Return per month of ``months`` (rows in that order) the month's own sums over ``orders``.

    Columns: orders_placed, orders_cancelled, units, net_sales, gross_profit (null when any
    sold line's cost is unknown). Each month's figures read only that month's orders, so
    ``orders`` may be restricted to the months wanted (the same rows give the same sums).
    """
    m = month_index(orders["order_date"]).to_numpy()
    cancelled = orders["is_cancelled"].to_numpy()
    placed = pd.Series(m).value_counts()
    n_cancelled = pd.Series(m[cancelled]).value_counts()
    sold = orders[~cancelled]
    sm = m[~cancelled]
    per = pd.DataFrame(
        {
            "month": sm,
            "units": sold["units"].to_numpy(),
            "net_sales": sold["net_sales"].to_numpy(),
            "profit": sold["net_profit"].to_numpy(dtype="float64", na_value=np.nan),
        }
    )
    per["unknown"] = np.isnan(per["profit"].to_numpy()).astype("int64")
    agg = per.groupby("month").agg(
        units=("units", "sum"),
        net_sales=("net_sales", "sum"),
        profit=("profit", "sum"),
        unknown=("unknown", "sum"),
    )
    f = pd.DataFrame({"_m": months})
    f["orders_placed"] = f["_m"].map(placed).fillna(0).astype("int64")
    f["orders_cancelled"] = f["_m"].map(n_cancelled).fillna(0).astype("int64")
    f["units"] = f["_m"].map(agg["units"]).fillna(0)
    f["net_sales"] = f["_m"].map(agg["net_sales"]).fillna(0.0).round(2)
    profit = f["_m"].map(agg["profit"]).fillna(0.0).round(2)
    unknown = f["_m"].map(agg["unknown"]).fillna(0)
    f["gross_profit"] = profit.where(unknown == 0)
    return f.drop(columns="_m")


#: the per-customer counts of :func:`customer_counts`, one column each
CUSTOMER_COUNTS: tuple[str, ...] = ("new", "retained", "regained", "churned")


def customer_counts(pairs: pd.DataFrame, months: np.ndarray, churn_months: int) -> pd.DataFrame:
    """Return per month of ``months`` the customers new, retained, regained and churned (int64 columns).

    ``pairs``: :func:`active_pairs`. Each customer adds to the counts from its own pairs only,
    so the counts of a set of customers is the sum of theirs (``salesbi.incremental_reports``
    subtracts a changed customer's old counts and adds its new ones). Definitions:
    :func:`build_customer_growth`; every active (customer, month) is exactly one of new,
    retained or regained.
    """
    n = churn_months
    cust = pairs["customer_id"].to_numpy()
    mon = pairs["month"].to_numpy()
    same_prev = np.zeros(len(pairs), dtype=bool)
    same_prev[1:] = cust[1:] == cust[:-1]
    gap = np.full(len(pairs), -1, dtype="int64")
    gap[1:] = mon[1:] - mon[:-1]
    gap[~same_prev] = -1
    is_new = ~same_prev
    is_retained = same_prev & (gap <= n)
    is_regained = same_prev & (gap > n)
    same_next = np.zeros(len(pairs), dtype=bool)
    same_next[:-1] = same_prev[1:]
    next_gap = np.full(len(pairs), np.iinfo("int64").max, dtype="int64")
    next_gap[:-1] = np.where(same_next[:-1], mon[1:] - mon[:-1], np.iinfo("int64").max)
    churn_month = mon[next_gap > n] + n

    def count(values: np.ndarray) -> pd.Series:
        return pd.Series(values).value_counts()

    m = pd.Series(months)
    return pd.DataFrame(
        {
            "new": m.map(count(mon[is_new])).fillna(0).astype("int64").to_numpy(),
            "retained": m.map(count(mon[is_retained])).fillna(0).astype("int64").to_numpy(),
            "regained": m.map(count(mon[is_regained])).fillna(0).astype("int64").to_numpy(),
            "churned": m.map(count(churn_month)).fillna(0).astype("int64").to_numpy(),
        }
    )


def finish_sales_monthly(months: np.ndarray, parts: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Return ``rpt.sales_monthly`` from its month-by-month parts (one row per month of ``months``).

    ``parts``: the :func:`month_sums` columns plus ``active_customers`` and ``new_customers``.
    Everything reading other months (growth, year to date) and the as-of date is computed here,
    on the whole table.
    """
    f = pd.DataFrame({"_m": months})
    f["month"], f["year_month"] = _month_labels(months)
    f["year"] = months // 12
    f["month_number"] = months % 12 + 1
    f["orders_placed"] = parts["orders_placed"].to_numpy()
    f["orders_cancelled"] = parts["orders_cancelled"].to_numpy()
    f["orders"] = f["orders_placed"] - f["orders_cancelled"]
    f["units"] = parts["units"].to_numpy()
    f["net_sales"] = parts["net_sales"].to_numpy()
    f["gross_profit"] = parts["gross_profit"].to_numpy(dtype="float64", na_value=np.nan)
    f["margin"] = safe_ratio(f["gross_profit"], f["net_sales"])
    f["avg_order_value"] = safe_ratio(f["net_sales"], f["orders"]).round(2)
    f["active_customers"] = parts["active_customers"].to_numpy(dtype="int64")
    f["new_customers"] = parts["new_customers"].to_numpy(dtype="int64")
    f["existing_customers"] = f["active_customers"] - f["new_customers"]
    by_month = pd.Series(f["net_sales"].to_numpy(), index=months)
    f["mom_growth"] = growth(f["net_sales"], f["_m"].map(by_month.rename(lambda k: k + 1)))
    f["yoy_growth"] = growth(f["net_sales"], f["_m"].map(by_month.rename(lambda k: k + 12)))
    f["sales_ytd"] = f.groupby("year")["net_sales"].cumsum().round(2)
    f["is_complete"] = _is_complete(months, as_of)
    return conform(f, SALES_MONTHLY)


def build_sales_monthly(ctx: ReportContext) -> pd.DataFrame:
    """Return ``rpt.sales_monthly``: one row per month from the first to the last order month."""
    months = month_range(ctx)
    parts = month_sums(ctx.orders, months)
    counts = customer_counts(active_pairs(ctx.orders), months, ctx.params.churn_months)
    parts["active_customers"] = counts["new"] + counts["retained"] + counts["regained"]
    parts["new_customers"] = counts["new"]
    return finish_sales_monthly(months, parts, ctx.as_of)


def finish_customer_growth(
    months: np.ndarray, counts: pd.DataFrame, churn_months: int, as_of: date
) -> pd.DataFrame:
    """Return ``rpt.customer_growth`` from the :func:`customer_counts` of every customer.

    The running ``customers_in_window``, the ratio and the as-of date are computed here, on the
    whole table.
    """
    f = pd.DataFrame({"_m": months})
    f["month"], f["year_month"] = _month_labels(months)
    for c in CUSTOMER_COUNTS:
        f[c] = counts[c].to_numpy(dtype="int64")
    f["active"] = f["new"] + f["retained"] + f["regained"]
    f["customers_in_window"] = (f["new"] + f["regained"] - f["churned"]).cumsum()
    f["quick_ratio"] = safe_ratio(f["new"] + f["regained"], f["churned"])
    f["churn_months"] = churn_months
    f["is_complete"] = _is_complete(months, as_of)
    return conform(f, CUSTOMER_GROWTH)


def build_customer_growth(ctx: ReportContext) -> pd.DataFrame:
    """Return ``rpt.customer_growth``: the monthly ledger of new, retained, regained, churned customers.

    With N = churn_months and activity = a non-cancelled order: *new* = first order ever this
    month; *retained* = ordered this month and in at least one of the N months before;
    *regained* = ordered this month, ordered before, but in none of the N months before;
    *churned* = last order (as of this month's end) was exactly N months ago, i.e. the N-th
    month in a row without an order ends now.  ``customers_in_window`` counts customers with an
    order in this month or the N − 1 before; it obeys in_window(m) = in_window(m − 1) + new +
    regained − churned.
    """
    n = ctx.params.churn_months
    months = month_range(ctx)
    counts = customer_counts(active_pairs(ctx.orders), months, n)
    return finish_customer_growth(months, counts, n, ctx.as_of)


def nice_step(span: float, bins: int = 10) -> float:
    """Return a round bin width (1, 2, 2.5 or 5 × 10^k) giving about ``bins`` bins over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / bins
    power = 10 ** math.floor(math.log10(raw))
    for mult in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= mult * power + 1e-9:
            return mult * power
    return 10.0 * power


def _fmt(value: float) -> str:
    """Return a bin edge as text with thousands separators."""
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def bin_edges(lo: float, hi: float, top: float, bins: int = 10) -> tuple[float, float, int, bool]:
    """Return (start, step, count, top_open) of the order value bins.

    ``lo``: min(0, smallest value); ``hi``: the 99th percentile; ``top``: the largest value.
    ``count`` closed bins of width ``step`` from ``start``; ``top_open``: one more, open bin
    holds the values at or above the last edge.
    """
    step = nice_step(hi - lo, bins)
    start = math.floor(lo / step) * step
    count = max(1, math.ceil((hi - start) / step + 1e-9))
    if start + count * step <= hi:
        count += 1
    last_edge = (start + step * np.arange(count + 1))[-1]
    return start, step, count, bool(top >= last_edge)


def bin_index(values: np.ndarray, start: float, step: float, last: int) -> np.ndarray:
    """Return each value's 0-based bin: floor((value − start) / step) clipped to 0..``last``."""
    return np.clip(np.floor((values - start) / step).astype("int64"), 0, last)


def distribution_frame(
    orders: np.ndarray, sales: np.ndarray, start: float, step: float, count: int, top_open: bool, total: float
) -> pd.DataFrame:
    """Return ``rpt.order_value_distribution`` from the orders and sales per bin (zeros included).

    ``total``: the sum of all the orders' values (the denominator of the sales shares).
    """
    n_bins = count + (1 if top_open else 0)
    edges = start + step * np.arange(count + 1)
    n = int(orders.sum())
    lower = [float(edges[i]) for i in range(n_bins)]
    upper: list[float | None] = [float(edges[i + 1]) for i in range(count)] + ([None] if top_open else [])
    labels = [
        f"{_fmt(lower[i])} – {_fmt(u)}" if u is not None else f"{_fmt(lower[i])} and more"
        for i, u in enumerate(upper)
    ]
    f = pd.DataFrame(
        {
            "bin_number": np.arange(1, n_bins + 1),
            "bin_label": labels,
            "lower_bound": lower,
            "upper_bound": pd.array(upper, dtype="Float64").astype("float64"),
            "orders": orders,
            "order_share": orders / n,
            "cumulative_order_share": np.cumsum(orders) / n,
            "net_sales": np.round(sales, 2),
            "sales_share": sales / total if total else np.zeros(n_bins),
        }
    )
    return conform(f, ORDER_VALUE_DISTRIBUTION)


def build_order_value_distribution(ctx: ReportContext, bins: int = 10) -> pd.DataFrame:
    """Return ``rpt.order_value_distribution``: non-cancelled orders by value in round-edged bins.

    The width is a round number giving about ``bins`` bins up to the 99th percentile; orders at
    or above the last edge fall in one open-ended top bin.
    """
    values = ctx.orders.loc[~ctx.orders["is_cancelled"], "net_sales"].to_numpy(dtype="float64")
    if not len(values):
        return conform(pd.DataFrame(columns=ORDER_VALUE_DISTRIBUTION.column_names), ORDER_VALUE_DISTRIBUTION)
    lo = min(0.0, float(values.min()))
    hi = float(np.quantile(values, 0.99))
    start, step, count, top_open = bin_edges(lo, hi, float(values.max()), bins)
    idx = bin_index(values, start, step, count if top_open else count - 1)
    n_bins = count + (1 if top_open else 0)
    orders = np.bincount(idx, minlength=n_bins)
    sales = np.bincount(idx, weights=values, minlength=n_bins)
    return distribution_frame(orders, sales, start, step, count, top_open, float(values.sum()))
