"""Order histories in one shape, and the behaviour features computed from them at an as-of date.

Both the batch path (every customer, from ``rpt.fact_order_lines``) and the
single-customer path (one customer's history sent to an API) go through the
same two functions, :func:`lines_from_fact` / :func:`lines_from_history` and
:func:`behaviour_features`, so they cannot disagree.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from salesbi.errors import SalesBIError

LINE_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "order_id",
    "order_date",
    "net_sales",
    "is_cancelled",
    "product_line_id",
    "employee_id",
)

BEHAVIOUR_COLUMNS: tuple[str, ...] = (
    "first_order_date",
    "last_order_date",
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "avg_order_value",
    "product_lines",
    "cancellation_rate",
)

SINGLE_CUSTOMER = "customer"


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    out["customer_id"] = frame["customer_id"].astype("string")
    out["order_id"] = frame["order_id"].astype("string")
    out["order_date"] = pd.to_datetime(frame["order_date"]).astype("datetime64[s]")
    out["net_sales"] = pd.to_numeric(frame["net_sales"]).astype("float64").fillna(0.0)
    out["is_cancelled"] = frame["is_cancelled"].astype("boolean").fillna(False).astype(bool)
    out["product_line_id"] = frame["product_line_id"].astype("string")
    out["employee_id"] = frame["employee_id"].astype("string")
    return out.reset_index(drop=True)


def lines_from_fact(fact: pd.DataFrame) -> pd.DataFrame:
    """Return the order lines of ``rpt.fact_order_lines`` in the history shape (``LINE_COLUMNS``)."""
    missing = [c for c in LINE_COLUMNS if c not in fact.columns]
    if missing:
        raise SalesBIError(
            f"fact_order_lines lacks the columns {missing}",
            hint="build it with salesbi.reports.fact.build_fact_order_lines(core)",
        )
    return _normalise(fact[list(LINE_COLUMNS)])


def lines_from_history(history: pd.DataFrame, customer_id: str = SINGLE_CUSTOMER) -> pd.DataFrame:
    """Return one customer's history (``order_date`` and ``net_sales`` or ``amount``) in the history shape.

    Optional columns: ``order_id`` (without it every row is one order), ``product_line_id``,
    ``is_cancelled`` (default False) and ``employee_id``. Rows are order lines or whole orders.
    """
    frame = history.copy()
    if "net_sales" not in frame.columns and "amount" in frame.columns:
        frame = frame.rename(columns={"amount": "net_sales"})
    missing = [c for c in ("order_date", "net_sales") if c not in frame.columns]
    if missing:
        raise SalesBIError(
            f"the order history lacks the columns {missing}",
            column=missing[0],
            hint="send one row per order or order line with order_date and net_sales (or amount)",
        )
    if frame["order_date"].isna().any():
        row = int(np.flatnonzero(frame["order_date"].isna().to_numpy())[0])
        raise SalesBIError("an order in the history has no order_date", line=row + 1, column="order_date")
    frame = frame.reset_index(drop=True)
    frame["customer_id"] = customer_id
    if "order_id" not in frame.columns:
        frame["order_id"] = [f"row{i}" for i in range(len(frame))]
    for column, default in (("is_cancelled", False), ("product_line_id", pd.NA), ("employee_id", pd.NA)):
        if column not in frame.columns:
            frame[column] = default
    return _normalise(frame[list(LINE_COLUMNS)])


def default_as_of(lines: pd.DataFrame) -> date:
    """Return the day after the last order in ``lines`` (the default as-of date)."""
    if lines.empty:
        raise SalesBIError("there are no orders", hint="load orders before segmenting or predicting")
    last = pd.Timestamp(lines["order_date"].max()).date()
    return last + timedelta(days=1)


def orders_from_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """Return one row per order: customer_id, order_id, order_date, net_sales (sum), is_cancelled."""
    grouped = lines.groupby(["customer_id", "order_id"], sort=False, observed=True)
    orders = grouped.agg(
        order_date=("order_date", "min"),
        net_sales=("net_sales", "sum"),
        is_cancelled=("is_cancelled", "max"),
    ).reset_index()
    return orders


def behaviour_features(lines: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Return one row per customer with an order before ``as_of``, indexed by customer_id (sorted).

    Columns ``BEHAVIOUR_COLUMNS``: recency is measured from the last non-cancelled order (the last
    order of any status when all were cancelled); frequency and monetary count non-cancelled orders
    only; tenure from the first order of any status; product-line breadth over non-cancelled lines.
    """
    cutoff = pd.Timestamp(as_of)
    before = lines[lines["order_date"] < cutoff]
    orders = orders_from_lines(before)
    placed = orders[~orders["is_cancelled"]]
    by_all = orders.groupby("customer_id", observed=True)
    out = pd.DataFrame(
        {
            "first_order_date": by_all["order_date"].min(),
            "last_any": by_all["order_date"].max(),
            "orders_total": by_all["order_id"].count(),
        }
    ).sort_index()
    by_placed = placed.groupby("customer_id", observed=True)
    out["last_order_date"] = by_placed["order_date"].max()
    out["last_order_date"] = out["last_order_date"].fillna(out["last_any"])
    out["frequency"] = by_placed["order_id"].count().reindex(out.index).fillna(0).astype("int64")
    out["monetary"] = by_placed["net_sales"].sum().reindex(out.index).fillna(0.0).round(2)
    lines_placed = before[~before["is_cancelled"]]
    breadth = lines_placed.groupby("customer_id", observed=True)["product_line_id"].nunique()
    out["product_lines"] = breadth.reindex(out.index).fillna(0).astype("int64")
    out["recency_days"] = (cutoff - out["last_order_date"]).dt.days.astype("int64")
    out["tenure_days"] = (cutoff - out["first_order_date"]).dt.days.astype("int64")
    freq = out["frequency"].to_numpy(dtype="float64")
    out["avg_order_value"] = np.round(
        np.divide(out["monetary"].to_numpy(), freq, out=np.zeros(len(out)), where=freq > 0), 2
    )
    out["cancellation_rate"] = 1.0 - out["frequency"] / out["orders_total"]
    out.index = out.index.astype("string")
    out.index.name = "customer_id"
    return out[list(BEHAVIOUR_COLUMNS)]
