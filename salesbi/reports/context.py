"""The prepared inputs every report builder shares: the fact, its orders, the as-of date and windows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from salesbi.errors import SalesBIError
from salesbi.reports.measures import add_months
from salesbi.reports.params import ReportParams
from salesbi.reports.partials import ProductPartials


@dataclass(frozen=True)
class FactLines:
    """What the report builders read of the fact's lines: nothing per line.

    ``rows``: the fact's length; ``date_bounds``: the first and last order and shipped date over
    the lines (None when there is none); ``partials``: the per-key sums of the sold lines that
    the product and product line builders read (:class:`~salesbi.reports.partials.ProductPartials`,
    growing with products, (key, customer) pairs and days, not with lines). What the other
    builders read is per order (:attr:`ReportContext.orders`).
    """

    rows: int
    date_bounds: dict[str, tuple[pd.Timestamp, pd.Timestamp] | None]
    partials: ProductPartials


class LinesCollector:
    """Collects :class:`FactLines` and the per-order frame from the fact's blocks of whole orders.

    Each block is read once and can be dropped as soon as :meth:`add` returns: nothing per line
    is kept. ``rows``: the fact's length when known before the blocks (checked), else None.
    """

    def __init__(self, rows: int | None) -> None:
        self.rows = rows
        self.done = 0
        self.orders: list[pd.DataFrame] = []
        self.partials = ProductPartials()
        self.bounds: dict[str, tuple[pd.Timestamp, pd.Timestamp] | None] = dict.fromkeys(_DATES)

    def add(self, block: pd.DataFrame) -> None:
        """Take from ``block`` (the fact's next lines, whole orders) what the builders read."""
        stop = self.done + len(block)
        if self.rows is not None and stop > self.rows:
            raise ValueError(f"more lines than announced ({self.rows})")
        if not len(block):
            return
        if self.orders and self.orders[-1]["order_id"].iloc[-1] == block["order_id"].iloc[0]:
            raise ValueError("an order is split across two blocks")
        starts_order = order_starts(block["order_id"])
        orders = order_frame(block, starts_order)
        self.orders.append(orders)
        order_no = np.cumsum(starts_order, dtype=np.int64)
        order_no -= 1
        self.partials.add(block, order_no, orders)
        for col in _DATES:
            s = block[col].dropna()
            if len(s):
                lo, hi, seen = s.min(), s.max(), self.bounds[col]
                self.bounds[col] = (lo, hi) if seen is None else (min(seen[0], lo), max(seen[1], hi))
        self.done = stop

    def finish(self) -> tuple[FactLines, pd.DataFrame]:
        """Return the fact's :class:`FactLines` and its per-order frame (:func:`order_frame`)."""
        if self.rows is not None and self.done != self.rows:
            raise ValueError(f"{self.done} lines collected, {self.rows} announced")
        lines = FactLines(rows=self.done, date_bounds=self.bounds, partials=self.partials)
        if len(self.orders) == 1:
            orders = self.orders[0]
        elif self.orders:
            orders = pd.concat(self.orders, ignore_index=True)
        else:
            orders = order_frame(pd.DataFrame({"order_id": pd.Series(dtype="string")}))
        self.orders = []
        return lines, orders


#: the fact's dates whose first and last value bound the calendar
_DATES = ("order_date", "shipped_date")


def collect_lines(blocks: Iterable[pd.DataFrame], rows: int) -> tuple[FactLines, pd.DataFrame]:
    """Return the :class:`FactLines` and per-order frame of a fact given as ``blocks`` of whole orders.

    ``rows``: the fact's length. Every block is dropped once read.
    """
    collector = LinesCollector(rows)
    for block in blocks:
        collector.add(block)
    return collector.finish()


@dataclass(frozen=True)
class ReportContext:
    """Frames and dates computed once per build.

    ``orders`` has one row per order (from the fact): order_id, customer_id, employee_id,
    office_id, geography_key, order_date, is_cancelled, units, net_sales, net_profit (null when
    any line's cost is unknown), in_last_12m, in_prior_12m.

    The fact's lines are not held, nor anything per line: ``lines`` (:class:`FactLines`) keeps
    their count, date bounds and the per-key partial sums of the sold lines (not cancelled) that
    the product builders read (``summaries._product_lines``).
    """

    core: dict[str, pd.DataFrame]
    lines: FactLines
    orders: pd.DataFrame
    params: ReportParams
    as_of: date
    last_12m_start: date
    prior_12m_start: date
    covers_prior_12m: bool
    first_order_date: date | None
    last_order_date: date | None


def default_as_of(lines: FactLines) -> date:
    """Return the day after the last order date of the fact's ``lines``."""
    bounds = lines.date_bounds["order_date"]
    if not lines.rows or bounds is None:
        raise SalesBIError(
            "there are no order lines to report on",
            hint="load orders and order items first, or pass an explicit as_of date",
        )
    last = pd.Timestamp(bounds[1]).date()
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
    """Return the :class:`ReportContext` of the fact frame ``fact`` built from ``core`` with ``params``."""
    lines, orders = collect_lines([fact], len(fact))
    return context_of(core, lines, orders, params)


def context_of(
    core: dict[str, pd.DataFrame], lines: FactLines, orders: pd.DataFrame, params: ReportParams
) -> ReportContext:
    """Return the :class:`ReportContext` of the fact's ``lines`` and per-order frame ``orders``."""
    as_of = params.as_of or default_as_of(lines)
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
    return ReportContext(
        core=core,
        lines=lines,
        orders=orders,
        params=params,
        as_of=as_of,
        last_12m_start=last_start,
        prior_12m_start=prior_start,
        covers_prior_12m=first is not None and first <= prior_start,
        first_order_date=first,
        last_order_date=last,
    )
