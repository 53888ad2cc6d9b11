"""Customer features at a cutoff date, computed strictly from orders before the cutoff, and targets after it.

A cutoff ``c`` sees only orders dated before ``c`` (``order_date < c``); the target is what the
customer bought in ``[c, c + horizon)``. :func:`features_at` is used for every rolling origin
and for the final prediction; the single-customer path uses :func:`customer_features_at`, the
same values without frames (tests/test_prediction_fast.py checks them against the batch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from salesbi.segmentation.history import (
    CustomerLines,
    OrderHistory,
    by_customer,
    customer_orders,
    group_sums,
    history_from_lines,
    sorted_by_date,
)

FEATURES: tuple[str, ...] = (
    "recency_days",
    "tenure_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "product_lines",
    "cancellation_rate",
    "sales_last_window",
    "orders_last_window",
    "sales_prev_window",
    "orders_prev_window",
    "sales_last_365",
    "orders_last_365",
    "avg_window_sales",
    "orders_per_window",
    "mean_gap_days",
    "overdue_ratio",
)


@dataclass
class Prepared:
    """Orders (one row per order, by customer, date and order id) and the first purchase date of
    each (customer, product line), as :class:`~salesbi.segmentation.history.OrderHistory` holds them."""

    orders: pd.DataFrame
    first_line_use: pd.DataFrame

    @property
    def start(self) -> pd.Timestamp:
        """Return the first order date."""
        return pd.Timestamp(self.orders["order_date"].min())

    @property
    def end(self) -> pd.Timestamp:
        """Return the last order date."""
        return pd.Timestamp(self.orders["order_date"].max())


def prepare(source: pd.DataFrame | OrderHistory) -> Prepared:
    """Return the :class:`Prepared` orders of an :class:`OrderHistory` or of history-shaped lines
    (see segmentation.history): no row is dropped (filter before, e.g. ``OrderHistory.before``)."""
    history = source if isinstance(source, OrderHistory) else history_from_lines(source)
    orders = sorted_by_date(history.orders).reset_index(drop=True)
    return Prepared(orders=orders, first_line_use=history.first_uses)


def features_at(prepared: Prepared, cutoff: date | pd.Timestamp, horizon_days: int) -> pd.DataFrame:
    """Return FEATURES for every customer with an order before ``cutoff``, indexed by customer_id (sorted).

    Only orders dated before ``cutoff`` are read. Recency counts from the last non-cancelled
    order (the last order when all were cancelled); windows are ``horizon_days`` long.
    """
    c = pd.Timestamp(cutoff)
    h = pd.Timedelta(days=horizon_days)
    o = prepared.orders[prepared.orders["order_date"] < c]
    placed = ~o["is_cancelled"].to_numpy()
    dates = o["order_date"]
    sales = np.where(placed, o["net_sales"].to_numpy(), 0.0)
    last_w = placed & (dates >= c - h).to_numpy()
    prev_w = placed & (dates >= c - 2 * h).to_numpy() & (dates < c - h).to_numpy()
    last_y = placed & (dates >= c - pd.Timedelta(days=365)).to_numpy()
    work = pd.DataFrame(
        {
            "customer_id": o["customer_id"].array,
            "order_date": dates.to_numpy(),
            "placed_date": dates.where(placed).to_numpy(),
            "any": 1,
            "placed": placed.astype("int64"),
            "sales": sales,
            "sales_last_window": np.where(last_w, sales, 0.0),
            "orders_last_window": last_w.astype("int64"),
            "sales_prev_window": np.where(prev_w, sales, 0.0),
            "orders_prev_window": prev_w.astype("int64"),
            "sales_last_365": np.where(last_y, sales, 0.0),
            "orders_last_365": last_y.astype("int64"),
        }
    )
    g = work.groupby("customer_id", sort=True, observed=True)
    out = g.agg(
        first=("order_date", "min"),
        last_any=("order_date", "max"),
        last_placed=("placed_date", "max"),
        n_any=("any", "sum"),
        frequency=("placed", "sum"),
        monetary=("sales", "sum"),
        sales_last_window=("sales_last_window", "sum"),
        orders_last_window=("orders_last_window", "sum"),
        sales_prev_window=("sales_prev_window", "sum"),
        orders_prev_window=("orders_prev_window", "sum"),
        sales_last_365=("sales_last_365", "sum"),
        orders_last_365=("orders_last_365", "sum"),
    )
    out = by_customer(out)
    fl = prepared.first_line_use
    breadth = by_customer(fl[(fl["order_date"] < c).to_numpy()].groupby("customer_id", observed=True).size())
    out["product_lines"] = breadth.reindex(out.index).fillna(0).to_numpy(dtype="float64")
    last = out["last_placed"].fillna(out["last_any"])
    out["recency_days"] = (c - last).dt.days.to_numpy(dtype="float64")
    out["tenure_days"] = (c - out["first"]).dt.days.to_numpy(dtype="float64")
    freq = out["frequency"].to_numpy(dtype="float64")
    monetary = out["monetary"].to_numpy(dtype="float64")
    tenure = out["tenure_days"].to_numpy()
    recency = out["recency_days"].to_numpy()
    windows = np.maximum(tenure, horizon_days) / horizon_days
    out["avg_order_value"] = np.divide(monetary, freq, out=np.zeros(len(out)), where=freq > 0)
    out["cancellation_rate"] = 1.0 - freq / out["n_any"].to_numpy(dtype="float64")
    out["avg_window_sales"] = monetary / windows
    out["orders_per_window"] = freq / windows
    gap = np.divide(tenure - recency, freq - 1, out=np.full(len(out), np.nan), where=freq >= 2)
    out["mean_gap_days"] = gap
    out["overdue_ratio"] = np.divide(recency, gap, out=np.full(len(out), np.nan), where=gap > 0)
    out = out[list(FEATURES)].astype("float64")
    out.index = pd.Index(out.index.astype("string"), name="customer_id")
    return out


def customer_features_at(
    lines: CustomerLines, cutoff: date | pd.Timestamp, horizon_days: int
) -> dict[str, float] | None:
    """Return one customer's FEATURES at ``cutoff`` from their lines (None when no order is before it).

    The single-customer fast path: equals ``features_at(prepare(lines before cutoff), cutoff,
    horizon_days)`` for the customer, value for value, without building frames.
    """
    c = pd.Timestamp(cutoff).to_datetime64()
    before = lines.order_date < c
    orders = customer_orders(lines, before)
    n = len(orders)
    if not n:
        return None
    # prepare() sorts the orders by (customer_id, order_date, order_id), stably
    dates_list = orders.order_date.tolist()
    order = sorted(range(n), key=lambda i: (dates_list[i], orders.order_id[i]))
    dates = orders.order_date[order]
    placed = ~orders.is_cancelled[order]
    sales = np.where(placed, orders.net_sales[order], 0.0)
    h = np.timedelta64(horizon_days, "D")
    last_w = placed & (dates >= c - h)
    prev_w = placed & (dates >= c - 2 * h) & (dates < c - h)
    last_y = placed & (dates >= c - np.timedelta64(365, "D"))
    one = np.zeros(n, dtype=np.intp)

    def total(values: np.ndarray) -> float:
        return float(group_sums(values, one, 1)[0])

    frequency = float(placed.sum())
    monetary = total(sales)
    last = dates[placed].max() if placed.any() else dates.max()
    day = np.timedelta64(1, "D")
    recency = float((c - last) // day)
    tenure = float((c - dates.min()) // day)
    breadth = {
        p
        for i, p in enumerate(lines.product_line_id)
        if before[i] and not lines.is_cancelled[i] and p is not None
    }
    windows = max(tenure, float(horizon_days)) / horizon_days
    gap = (tenure - recency) / (frequency - 1) if frequency >= 2 else math.nan
    values = {
        "recency_days": recency,
        "tenure_days": tenure,
        "frequency": frequency,
        "monetary": monetary,
        "avg_order_value": monetary / frequency if frequency > 0 else 0.0,
        "product_lines": float(len(breadth)),
        "cancellation_rate": 1.0 - frequency / float(n),
        "sales_last_window": total(np.where(last_w, sales, 0.0)),
        "orders_last_window": float(last_w.sum()),
        "sales_prev_window": total(np.where(prev_w, sales, 0.0)),
        "orders_prev_window": float(prev_w.sum()),
        "sales_last_365": total(np.where(last_y, sales, 0.0)),
        "orders_last_365": float(last_y.sum()),
        "avg_window_sales": monetary / windows,
        "orders_per_window": frequency / windows,
        "mean_gap_days": gap,
        "overdue_ratio": recency / gap if gap > 0 else math.nan,
    }
    return {name: values[name] for name in FEATURES}


def targets_at(
    prepared: Prepared, cutoff: date | pd.Timestamp, horizon_days: int, index: pd.Index
) -> pd.DataFrame:
    """Return ``target_sales`` and ``target_ordered`` (any placed order) in ``[cutoff, cutoff + h)``."""
    c = pd.Timestamp(cutoff)
    o = prepared.orders
    inside = o[
        (o["order_date"] >= c) & (o["order_date"] < c + pd.Timedelta(days=horizon_days)) & ~o["is_cancelled"]
    ]
    g = inside.groupby("customer_id", observed=True)
    sales = by_customer(g["net_sales"].sum()).reindex(index).fillna(0.0)
    count = by_customer(g.size()).reindex(index).fillna(0)
    return pd.DataFrame(
        {
            "target_sales": sales.to_numpy(dtype="float64"),
            "target_ordered": (count > 0).to_numpy(dtype="int64"),
        },
        index=index,
    )
