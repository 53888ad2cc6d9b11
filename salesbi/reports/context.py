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


class Codes:
    """Integer codes of one text column of the fact, assigned block by block (one per distinct value).

    A Python string per distinct value only (products, product lines), none per line.
    """

    def __init__(self, rows: int) -> None:
        self.codes = np.full(rows, -1, dtype=np.int32)
        self._code: dict[str, int] = {}
        self._values: list[str] = []
        self._dtype: object = "string"

    def add(self, start: int, values: pd.Series) -> None:
        """Code ``values`` (a block's column) into lines ``start:start + len(values)`` (null: -1)."""
        self._dtype = values.dtype
        local, uniques = pd.factorize(values, use_na_sentinel=True)
        known = np.empty(len(uniques) + 1, dtype=np.int32)
        known[-1] = -1  # local -1 (null) → -1
        for i, value in enumerate(uniques.tolist()):
            code = self._code.get(value)
            if code is None:
                code = self._code[value] = len(self._values)
                self._values.append(value)
            known[i] = code
        self.codes[start : start + len(values)] = known[local]

    def sorted(self, name: str) -> tuple[np.ndarray, pd.Index]:
        """Return (per line the code of its value in sorted order, -1 for null; the sorted values).

        As ``pd.factorize(column, sort=True)`` of the whole column gives them.
        """
        values = pd.array(self._values, dtype=self._dtype)  # type: ignore[call-overload]
        rank, keys = pd.factorize(values, sort=True)
        remap = np.append(rank.astype(np.int32), np.int32(-1))  # -1 (null) stays -1
        return remap[self.codes], pd.Index(keys, name=name)


@dataclass(frozen=True)
class FactLines:
    """What the report builders read per line of the fact, kept compactly instead of the fact frame.

    ``rows`` lines in the fact's order. Per line: ``sold`` (not cancelled), ``order_of_line`` (the
    order's row in :attr:`ReportContext.orders`), ``product`` and ``product_line`` (codes of
    product_id and product_line_id in sorted order, -1 for null; the values in ``product_ids``
    and ``product_line_ids``), and as float64 ``quantity``, ``net_sales``, ``discount_amount``
    (null: 0) and ``cost`` (null: NaN). ``date_bounds``: the first and last order and shipped
    date over the lines (None when there is none). About 45 bytes a line, against ~210 for the
    fact frame.
    """

    rows: int
    sold: np.ndarray
    order_of_line: np.ndarray
    product: np.ndarray
    product_ids: pd.Index
    product_line: np.ndarray
    product_line_ids: pd.Index
    quantity: np.ndarray
    net_sales: np.ndarray
    discount_amount: np.ndarray
    cost: np.ndarray
    date_bounds: dict[str, tuple[pd.Timestamp, pd.Timestamp] | None]


class LinesCollector:
    """Collects :class:`FactLines` and the per-order frame from the fact's blocks of whole orders."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.done = 0
        self.orders: list[pd.DataFrame] = []
        self.sold = np.zeros(rows, dtype=bool)
        # int32 while it can hold the order count (4 bytes a line, held while the builders run)
        self.order_of_line = np.zeros(rows, dtype=np.int32 if rows < 2**31 else np.int64)
        self.product, self.product_line = Codes(rows), Codes(rows)
        self.numbers = {c: np.zeros(rows, dtype="float64") for c in _NUMBERS}
        self.bounds: dict[str, tuple[pd.Timestamp, pd.Timestamp] | None] = dict.fromkeys(_DATES)
        self.n_orders = 0

    def add(self, block: pd.DataFrame) -> None:
        """Take from ``block`` (the fact's next lines, whole orders) what the builders read."""
        start, stop = self.done, self.done + len(block)
        if stop > self.rows:
            raise ValueError(f"more lines than announced ({self.rows})")
        if not len(block):
            return
        if self.orders and self.orders[-1]["order_id"].iloc[-1] == block["order_id"].iloc[0]:
            raise ValueError("an order is split across two blocks")
        starts_order = order_starts(block["order_id"])
        self.orders.append(order_frame(block, starts_order))
        self.sold[start:stop] = ~block["is_cancelled"].to_numpy(dtype=bool, na_value=False)
        of_line: np.ndarray = self.order_of_line[start:stop]
        np.cumsum(starts_order, dtype=of_line.dtype, out=of_line)
        np.add(of_line, self.n_orders - 1, out=of_line)
        self.n_orders += int(starts_order.sum())
        self.product.add(start, block["product_id"])
        self.product_line.add(start, block["product_line_id"])
        for col, na in _NUMBERS.items():
            self.numbers[col][start:stop] = block[col].to_numpy(dtype="float64", na_value=na)
        for col in _DATES:
            s = block[col].dropna()
            if len(s):
                lo, hi, seen = s.min(), s.max(), self.bounds[col]
                self.bounds[col] = (lo, hi) if seen is None else (min(seen[0], lo), max(seen[1], hi))
        self.done = stop

    def finish(self) -> tuple[FactLines, pd.DataFrame]:
        """Return the fact's :class:`FactLines` and its per-order frame (:func:`order_frame`)."""
        if self.done != self.rows:
            raise ValueError(f"{self.done} lines collected, {self.rows} announced")
        product, product_ids = self.product.sorted("product_id")
        product_line, product_line_ids = self.product_line.sorted("product_line_id")
        lines = FactLines(
            rows=self.rows,
            sold=self.sold,
            order_of_line=self.order_of_line,
            product=product,
            product_ids=product_ids,
            product_line=product_line,
            product_line_ids=product_line_ids,
            quantity=self.numbers["quantity"],
            net_sales=self.numbers["net_sales"],
            discount_amount=self.numbers["discount_amount"],
            cost=self.numbers["cost"],
            date_bounds=self.bounds,
        )
        if len(self.orders) == 1:
            orders = self.orders[0]
        elif self.orders:
            orders = pd.concat(self.orders, ignore_index=True)
        else:
            orders = order_frame(pd.DataFrame({"order_id": pd.Series(dtype="string")}))
        self.orders = []
        return lines, orders


#: the fact's numbers the builders read per line, as float64, with the value standing for null
_NUMBERS: dict[str, float] = {"quantity": 0.0, "net_sales": 0.0, "discount_amount": 0.0, "cost": np.nan}
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

    The fact's lines are not held: ``lines`` (:class:`FactLines`) keeps per line only what the
    builders read, as integer codes, numbers and flags. The lines that count as sold are those
    where ``sold`` is True (not cancelled): no copy of them is made (memory: at 10M lines a copy
    of the sold lines was 1.1 GB). Per line, ``order_of_line`` is the row of ``orders`` holding
    it; per order, ``customer_of_order`` is one integer code per customer_id (-1: no customer),
    for distinct counts without hashing text.
    """

    core: dict[str, pd.DataFrame]
    lines: FactLines
    customer_of_order: np.ndarray
    orders: pd.DataFrame
    params: ReportParams
    as_of: date
    last_12m_start: date
    prior_12m_start: date
    covers_prior_12m: bool
    first_order_date: date | None
    last_order_date: date | None

    @property
    def sold(self) -> np.ndarray:
        """Return per line whether it counts as sold (not cancelled): ``lines.sold``."""
        return self.lines.sold

    @property
    def order_of_line(self) -> np.ndarray:
        """Return per line the row of ``orders`` holding it: ``lines.order_of_line``."""
        return self.lines.order_of_line


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
    # no customer: -1, not counted (like the text column's null)
    customer_of_order = pd.factorize(orders["customer_id"], use_na_sentinel=True)[0].astype(np.int64)
    return ReportContext(
        core=core,
        lines=lines,
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
