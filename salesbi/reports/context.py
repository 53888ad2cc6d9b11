"""The prepared inputs every report builder shares: the fact, its orders, the as-of date and windows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from salesbi.errors import SalesBIError
from salesbi.reports.measures import add_months
from salesbi.reports.params import ReportParams


@dataclass(frozen=True)
class ReportContext:
    """Frames and dates computed once per build.

    ``orders`` has one row per order (from the fact): order_id, customer_id, employee_id,
    office_id, geography_key, order_date, is_cancelled, units, net_sales, net_profit (null when
    any line's cost is unknown), in_last_12m, in_prior_12m.

    The lines that count as sold are the fact's rows where ``sold`` is True (not cancelled): no
    copy of them is made (memory: at 10M lines a copy of the sold lines was 1.1 GB). Per line,
    ``order_of_line`` is the row of ``orders`` holding it; per order, ``customer_of_order`` is
    one integer code per customer_id (-1: no customer), for distinct counts without hashing text.
    """

    core: dict[str, pd.DataFrame]
    fact: pd.DataFrame
    sold: np.ndarray
    order_of_line: np.ndarray
    customer_of_order: np.ndarray
    orders: pd.DataFrame
    params: ReportParams
    as_of: date
    last_12m_start: date
    prior_12m_start: date
    covers_prior_12m: bool
    first_order_date: date | None
    last_order_date: date | None


def default_as_of(fact: pd.DataFrame) -> date:
    """Return the day after the last order date in ``fact``."""
    if not len(fact):
        raise SalesBIError(
            "there are no order lines to report on",
            hint="load orders and order items first, or pass an explicit as_of date",
        )
    last = pd.Timestamp(fact["order_date"].max()).date()
    return last + timedelta(days=1)


def order_frame(fact: pd.DataFrame, starts_order: np.ndarray | None = None) -> pd.DataFrame:
    """Return one row per order of ``fact`` (which is sorted by order_id, line_number).

    ``starts_order``: :func:`order_starts` of the fact when the caller has it already.
    """
    n = len(fact)
    if n == 0:
        return pd.DataFrame(
            {
                "order_id": pd.Series(dtype="string"),
                "customer_id": pd.Series(dtype="string"),
                "employee_id": pd.Series(dtype="string"),
                "office_id": pd.Series(dtype="string"),
                "geography_key": pd.Series(dtype="string"),
                "order_date": pd.Series(dtype="datetime64[s]"),
                "is_cancelled": pd.Series(dtype="bool"),
                "units": pd.Series(dtype="int64"),
                "net_sales": pd.Series(dtype="float64"),
                "net_profit": pd.Series(dtype="float64"),
            }
        )
    first = order_starts(fact["order_id"]) if starts_order is None else starts_order
    starts = np.flatnonzero(first)
    text = ("order_id", "customer_id", "employee_id", "office_id", "geography_key")
    head = {col: fact[col].iloc[starts] for col in (*text, "order_date", "is_cancelled")}
    qty = fact["quantity"].to_numpy(dtype="float64", na_value=0.0)
    sales = fact["net_sales"].to_numpy(dtype="float64", na_value=0.0)
    profit_raw = fact["net_profit"].to_numpy(dtype="float64", na_value=np.nan)
    unknown = np.add.reduceat(np.isnan(profit_raw).astype(np.int64), starts)
    profit = np.add.reduceat(np.nan_to_num(profit_raw, nan=0.0), starts)
    out = pd.DataFrame(
        {
            **{col: head[col].astype("string").reset_index(drop=True) for col in text},
            "order_date": head["order_date"].to_numpy(),
            "is_cancelled": head["is_cancelled"].to_numpy(dtype=bool, na_value=False),
            "units": np.add.reduceat(qty, starts).astype("int64"),
            "net_sales": np.add.reduceat(sales, starts).round(2),
            "net_profit": np.where(unknown > 0, np.nan, profit.round(2)),
        }
    )
    return out


def order_starts(order_ids: pd.Series) -> np.ndarray:
    """Return a boolean array: True where a line starts a new order (``order_ids`` sorted by order)."""
    n = len(order_ids)
    first = np.ones(n, dtype=bool)
    if n > 1:
        ids = pa.array(order_ids, from_pandas=True)
        changed = pc.not_equal(ids.slice(1), ids.slice(0, n - 1))
        first[1:] = pc.fill_null(changed, True).to_numpy(zero_copy_only=False)
    return first


def build_context(core: dict[str, pd.DataFrame], fact: pd.DataFrame, params: ReportParams) -> ReportContext:
    """Return the :class:`ReportContext` of ``fact`` built from ``core`` with ``params``."""
    as_of = params.as_of or default_as_of(fact)
    starts_order = order_starts(fact["order_id"])
    orders = order_frame(fact, starts_order)
    last_start = add_months(as_of, -12)
    prior_start = add_months(as_of, -24)
    dates = orders["order_date"]
    as_of_ts = pd.Timestamp(as_of)
    orders["in_last_12m"] = ((dates >= pd.Timestamp(last_start)) & (dates < as_of_ts)).to_numpy()
    orders["in_prior_12m"] = (
        (dates >= pd.Timestamp(prior_start)) & (dates < pd.Timestamp(last_start))
    ).to_numpy()
    first = pd.Timestamp(dates.min()).date() if len(orders) else None
    last = pd.Timestamp(dates.max()).date() if len(orders) else None
    sold = ~fact["is_cancelled"].to_numpy(dtype=bool, na_value=False)
    # int32 while it can hold the order count (4 bytes a line, held while the builders run)
    order_of_line: np.ndarray = np.cumsum(starts_order, dtype=np.int32 if len(fact) < 2**31 else np.int64)
    np.subtract(order_of_line, 1, out=order_of_line)
    del starts_order
    # no customer: -1, not counted (like the text column's null)
    customer_of_order = pd.factorize(orders["customer_id"], use_na_sentinel=True)[0].astype(np.int64)
    return ReportContext(
        core=core,
        fact=fact,
        sold=sold,
        order_of_line=order_of_line,
        customer_of_order=customer_of_order,
        orders=orders,
        params=params,
        as_of=as_of,
        last_12m_start=last_start,
        prior_12m_start=prior_start,
        covers_prior_12m=first is not None and first <= prior_start,
        first_order_date=first,
        last_order_date=last,
    )
