"""Order histories in one shape, and the behaviour features computed from them at an as-of date.

The batch path (every customer) reads an :class:`OrderHistory`: one row per order and one per
(customer, product line) first use, as the run's order-grain inputs hand them on
(``salesbi.order_grain``, or the warehouse in push-down mode: :func:`order_history`), or as
:func:`as_history` groups the lines of ``rpt.fact_order_lines`` (:func:`lines_from_fact`);
:func:`behaviour_features` computes the features from it. The single-customer path (one
customer's history sent to the API, which must answer in milliseconds) uses
:func:`customer_lines` and :func:`customer_behaviour`: the same values computed with NumPy
and plain Python over the customer's rows, bit for bit equal to the batch's (sums follow
pandas' groupby sum, see :func:`group_sums`); tests/test_segmentation_fast.py holds them to it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

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
    # memory: a column that has its dtype already (the fact's) is shared, not copied (copy-on-write)
    out = pd.DataFrame(index=frame.index)
    out["customer_id"] = frame["customer_id"].astype("string")
    out["order_id"] = frame["order_id"].astype("string")
    dates = frame["order_date"]
    out["order_date"] = (
        dates if dates.dtype == "datetime64[s]" else pd.to_datetime(dates).astype("datetime64[s]")
    )
    sales = frame["net_sales"]
    if sales.dtype != "float64":
        sales = pd.to_numeric(sales).astype("float64")
    out["net_sales"] = sales.fillna(0.0) if sales.hasnans else sales
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


#: the columns of :attr:`OrderHistory.orders` (``order_id`` optional: see there)
HISTORY_ORDER_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "order_date",
    "net_sales",
    "is_cancelled",
    "employee_id",
)
#: the columns of :attr:`OrderHistory.first_uses`
FIRST_USE_COLUMNS: tuple[str, ...] = ("customer_id", "product_line_id", "order_date")


@dataclass(frozen=True)
class OrderHistory:
    """Every customer's orders and first uses of a product line: what the batch features read.

    ``orders``: one row per order (:data:`HISTORY_ORDER_COLUMNS`): its customer, date, net sales
    (the sum of its lines), cancelled flag (any line cancelled) and credited employee, in the
    order of the order ids (code point) unless an ``order_id`` column says otherwise: the
    features break ties of date by that order. ``first_uses``: per customer and product line,
    the first date of a non-cancelled line. Ids are categoricals (integer codes; the customer
    ids of both frames share one dtype whose categories are sorted), dates ``datetime64[s]``,
    sales ``float64``, the flag ``bool``: the narrowest types that keep every value exact.
    :func:`behaviour_features`, ``salesbi.segmentation.segment.customer_reps`` and
    ``salesbi.prediction.features.prepare`` read it directly; no per-line row is rebuilt.
    """

    orders: pd.DataFrame
    first_uses: pd.DataFrame

    def __len__(self) -> int:
        return len(self.orders)

    @property
    def empty(self) -> bool:
        """Return whether there is no order."""
        return len(self.orders) == 0

    def before(self, cutoff: pd.Timestamp) -> OrderHistory:
        """Return the orders and first uses dated before ``cutoff``."""
        orders, uses = self.orders, self.first_uses
        return OrderHistory(
            orders[(orders["order_date"] < cutoff).to_numpy()],
            uses[(uses["order_date"] < cutoff).to_numpy()],
        )

    def memory_bytes(self) -> int:
        """Return the bytes both frames hold (``memory_usage(deep=True)``)."""
        return int(self.orders.memory_usage(deep=True).sum() + self.first_uses.memory_usage(deep=True).sum())


def _categorical(values: pd.Series, dtype: pd.CategoricalDtype | None = None) -> pd.Series:
    """Return ids as a categorical (``dtype``'s categories, else the sorted distinct values)."""
    if dtype is None:
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(values.dtype.categories.dtype)
        strings = values.astype("string")
        dtype = pd.CategoricalDtype(pd.Index(strings.dropna().unique(), dtype="string").sort_values())
        return strings.astype(dtype)
    return values.astype("string").astype(dtype)


def order_history(orders: pd.DataFrame, first_uses: pd.DataFrame) -> OrderHistory:
    """Return the :class:`OrderHistory` of order-grain aggregates (``salesbi.order_grain``, the warehouse).

    ``orders``: one row per order (customer_id, order_id, order_date, employee_id, is_cancelled,
    net_sales) by order_id; ``first_uses``: per customer and product line, the first order_date
    of a non-cancelled line. The order ids are dropped (the rows keep their order). Raises
    SalesBIError when a first use has no order of its customer on its date (the two inputs do
    not come from the same data).
    """
    customers = _categorical(
        pd.concat([orders["customer_id"].astype("string"), first_uses["customer_id"].astype("string")])
    )
    kept = pd.DataFrame(
        {
            "customer_id": _categorical(orders["customer_id"], customers.dtype).array,
            "order_date": _dates_of(orders["order_date"]),
            "net_sales": pd.to_numeric(orders["net_sales"]).astype("float64").fillna(0.0).to_numpy(),
            "is_cancelled": orders["is_cancelled"].astype("boolean").fillna(False).astype(bool).to_numpy(),
            "employee_id": _categorical(orders["employee_id"]).array,
        }
    )
    uses = pd.DataFrame(
        {
            "customer_id": _categorical(first_uses["customer_id"], customers.dtype).array,
            "product_line_id": _categorical(first_uses["product_line_id"]).array,
            "order_date": _dates_of(first_uses["order_date"]),
        }
    )
    filed = np.isin(_customer_days(uses), _customer_days(kept))
    if not filed.all():
        row = uses[~filed].iloc[0]
        raise SalesBIError(
            f"customer {row['customer_id']} first bought product line {row['product_line_id']} on "
            f"{row['order_date']} but has no order that day",
            hint="read the orders and the first uses from the same data (one transaction)",
        )
    return OrderHistory(kept, uses)


def _customer_days(frame: pd.DataFrame) -> np.ndarray:
    """Return one int64 per row naming its customer (code) and day (within ±1,435 years of 1970)."""
    days = frame["order_date"].to_numpy().astype("datetime64[D]").astype(np.int64) + 2**19
    return np.asarray(frame["customer_id"].cat.codes.to_numpy(dtype=np.int64) * 2**20 + days)


def _dates_of(dates: pd.Series) -> np.ndarray:
    values = dates if dates.dtype == "datetime64[s]" else pd.to_datetime(dates).astype("datetime64[s]")
    return np.asarray(values.to_numpy(), dtype="datetime64[s]")


def history_from_lines(lines: pd.DataFrame) -> OrderHistory:
    """Return the :class:`OrderHistory` of history-shaped ``lines`` (``LINE_COLUMNS``).

    Orders as :func:`orders_from_lines` groups them (in order of first appearance, which is not
    the order ids' order: they are kept as ``order_id`` for the features' ties); first uses from
    the non-cancelled lines with a product line (with or without an order id).
    """
    grouped = lines.groupby(["customer_id", "order_id"], sort=False, observed=True)
    per_order = grouped.agg(
        order_date=("order_date", "min"),
        net_sales=("net_sales", "sum"),
        is_cancelled=("is_cancelled", "max"),
        employee_id=("employee_id", "first"),
    ).reset_index()
    placed = lines[~lines["is_cancelled"] & lines["product_line_id"].notna()]
    uses = placed.groupby(["customer_id", "product_line_id"], observed=True)["order_date"].min().reset_index()
    customers = _categorical(pd.concat([per_order["customer_id"], uses["customer_id"]]).astype("string"))
    orders = pd.DataFrame(
        {
            "customer_id": _categorical(per_order["customer_id"], customers.dtype).array,
            "order_date": _dates_of(per_order["order_date"]),
            "net_sales": per_order["net_sales"].to_numpy(dtype="float64"),
            "is_cancelled": per_order["is_cancelled"].to_numpy(dtype=bool),
            "employee_id": _categorical(per_order["employee_id"]).array,
            "order_id": per_order["order_id"].astype("string").to_numpy(),
        }
    )
    first = pd.DataFrame(
        {
            "customer_id": _categorical(uses["customer_id"], customers.dtype).array,
            "product_line_id": _categorical(uses["product_line_id"]).array,
            "order_date": _dates_of(uses["order_date"]),
        }
    )
    return OrderHistory(orders, first)


def as_history(source: pd.DataFrame | OrderHistory) -> OrderHistory:
    """Return ``source`` as an :class:`OrderHistory`: itself, or the orders of a fact's lines."""
    return source if isinstance(source, OrderHistory) else history_from_lines(lines_from_fact(source))


def sorted_by_date(orders: pd.DataFrame, first: Sequence[str] = ("customer_id",)) -> pd.DataFrame:
    """Return ``orders`` sorted by ``first``, order_date and order id (stable: rows without an
    ``order_id`` column are in the order ids' order)."""
    keys = [*first, "order_date", *(["order_id"] if "order_id" in orders.columns else [])]
    return orders.sort_values(keys, kind="stable")


def by_customer(values: pd.Series | pd.DataFrame) -> Any:
    """Return a per-customer aggregate with its index as strings (categorical keys give categories)."""
    values.index = pd.Index(values.index.astype("string"), name="customer_id")
    return values


def _sales_column(history: pd.DataFrame) -> str:
    """Return the name of the sales column of a history after checking it is usable (else raise)."""
    sales = "amount" if "net_sales" not in history.columns and "amount" in history.columns else "net_sales"
    missing = [c for c, n in (("order_date", "order_date"), ("net_sales", sales)) if n not in history.columns]
    if missing:
        raise SalesBIError(
            f"the order history lacks the columns {missing}",
            column=missing[0],
            hint="send one row per order or order line with order_date and net_sales (or amount)",
        )
    absent = history["order_date"].isna().to_numpy()
    if absent.any():
        row = int(np.flatnonzero(absent)[0])
        raise SalesBIError("an order in the history has no order_date", line=row + 1, column="order_date")
    return sales


def lines_from_history(history: pd.DataFrame, customer_id: str = SINGLE_CUSTOMER) -> pd.DataFrame:
    """Return one customer's history (``order_date`` and ``net_sales`` or ``amount``) in the history shape.

    Optional columns: ``order_id`` (without it every row is one order), ``product_line_id``,
    ``is_cancelled`` (default False) and ``employee_id``. Rows are order lines or whole orders.
    """
    sales = _sales_column(history)
    frame = history.rename(columns={"amount": "net_sales"}) if sales == "amount" else history.copy()
    frame = frame.reset_index(drop=True)
    frame["customer_id"] = customer_id
    if "order_id" not in frame.columns:
        frame["order_id"] = [f"row{i}" for i in range(len(frame))]
    for column, default in (("is_cancelled", False), ("product_line_id", pd.NA), ("employee_id", pd.NA)):
        if column not in frame.columns:
            frame[column] = default
    return _normalise(frame[list(LINE_COLUMNS)])


# --- the single-customer fast path -------------------------------------------------------------
#
# One customer's history is a few dozen rows; pandas' per-call overhead on such frames is most
# of the cost of an API request. The functions below compute the same values as
# ``lines_from_history`` → ``behaviour_features`` (and, in salesbi.prediction.features,
# ``prepare`` → ``features_at``) with NumPy and plain Python over the customer's rows. Each
# column conversion takes a fast route only for plain inputs (dates, ISO date strings, floats,
# bools, strings) and otherwise uses the very pandas expression of ``_normalise``; sums follow
# pandas' groupby-sum (see :func:`group_sums`) so that the results are bit-for-bit the batch's.
# tests/test_segmentation_fast.py checks the equality on random customers.

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_FAST_DAYS = (np.datetime64("1700-01-01", "s"), np.datetime64("2200-01-01", "s"))


@dataclass(frozen=True)
class CustomerLines:
    """One customer's order lines as plain arrays, in the order given (normalised as ``_normalise`` does).

    ``order_id`` is None where the history's order_id is missing (such lines belong to no order).
    """

    order_date: np.ndarray  # datetime64[s]
    net_sales: np.ndarray  # float64, missing as 0.0
    is_cancelled: np.ndarray  # bool
    order_id: list[str | None]
    product_line_id: list[str | None]

    def __len__(self) -> int:
        return len(self.order_date)


def _plain_numpy(column: pd.Series) -> np.ndarray | None:
    return column.to_numpy() if isinstance(column.dtype, np.dtype) else None


def _objects(column: pd.Series) -> list[Any] | None:
    """Return the column's values as Python objects when it holds objects or strings, else None."""
    if isinstance(column.dtype, pd.StringDtype) or (
        isinstance(column.dtype, np.dtype) and column.dtype == object
    ):
        return list(column.to_numpy(dtype=object).tolist())
    return None


def _dates(column: pd.Series) -> np.ndarray:
    values = _plain_numpy(column)
    items = _objects(column)
    out: np.ndarray | None = None
    if values is not None and values.dtype.kind == "M":
        seconds = values.astype("datetime64[s]")
        if bool((seconds == values).all()):
            out = seconds
    elif items is not None and (
        all(type(v) is date for v in items) or all(type(v) is str and _ISO_DAY.fullmatch(v) for v in items)
    ):
        try:
            out = np.array(items, dtype="datetime64[D]").astype("datetime64[s]")
        except ValueError:
            out = None
    if out is not None and len(out) and (out.min() < _FAST_DAYS[0] or out.max() > _FAST_DAYS[1]):
        out = None
    if out is None:
        out = pd.to_datetime(column).astype("datetime64[s]").to_numpy()
    return np.asarray(out, dtype="datetime64[s]")


def _amounts(column: pd.Series) -> np.ndarray:
    values = _plain_numpy(column)
    out: np.ndarray | None = None
    if values is not None and values.dtype == np.float64:
        out = values.copy()
    elif values is not None and values.dtype == object:
        items = values.tolist()
        if all(type(v) is float or (type(v) is int and abs(v) < 2**53) for v in items):
            out = np.array(items, dtype="float64")
    if out is None:
        out = pd.to_numeric(column).astype("float64").to_numpy(copy=True)
    out[np.isnan(out)] = 0.0
    return out


def _flags(column: pd.Series) -> np.ndarray:
    values = _plain_numpy(column)
    if values is not None and values.dtype == np.bool_:
        return values
    if values is not None and values.dtype == object:
        items = values.tolist()
        if all(type(v) is bool for v in items):
            return np.array(items, dtype=bool)
    return column.astype("boolean").fillna(False).astype(bool).to_numpy()


def _ids(column: pd.Series) -> list[str | None]:
    items = _objects(column)
    if items is not None and all(
        type(v) is str or v is None or v is pd.NA or (type(v) is float and v != v) for v in items
    ):
        return [v if type(v) is str else None for v in items]
    return list(column.astype("string").to_numpy(dtype=object, na_value=None).tolist())


def customer_lines(history: pd.DataFrame) -> CustomerLines:
    """Return one customer's history as :class:`CustomerLines` (the input of ``lines_from_history``)."""
    sales = _sales_column(history)
    n = len(history)
    columns = history.columns
    return CustomerLines(
        order_date=_dates(history["order_date"]),
        net_sales=_amounts(history[sales]),
        is_cancelled=_flags(history["is_cancelled"])
        if "is_cancelled" in columns
        else np.zeros(n, dtype=bool),
        order_id=_ids(history["order_id"]) if "order_id" in columns else [f"row{i}" for i in range(n)],
        product_line_id=_ids(history["product_line_id"]) if "product_line_id" in columns else [None] * n,
    )


def _kahan(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Return per-group sums by pandas' Cython kernel: Kahan-compensated, NaN skipped, in row order."""
    sums = [0.0] * n_groups
    compensation = [0.0] * n_groups
    for value, g in zip(values.tolist(), groups.tolist(), strict=True):
        if value != value:
            continue
        y = value - compensation[g]
        t = sums[g] + y
        c = t - sums[g] - y
        compensation[g] = c if math.isfinite(c) else 0.0
        sums[g] = t
    return np.array(sums, dtype="float64")


def group_sums(
    values: np.ndarray, groups: np.ndarray, n_groups: int, *, monotonic: bool | None = None
) -> np.ndarray:
    """Return per-group float sums exactly as pandas' groupby ``sum`` computes them.

    ``groups`` are group numbers 0..n_groups-1 in row order (every group present). pandas adds
    each group's rows with ``np.add.reduceat`` when the group numbers never decrease and there
    is no NaN, and with its Kahan-compensated kernel otherwise; the results differ in the last
    bits, so the fast path makes the same choice. ``monotonic`` overrides the check when rows
    pandas drops (missing keys, numbered -1 there) are not among ``values``.
    """
    values = np.asarray(values, dtype="float64")
    if n_groups == 0:
        return np.zeros(0)
    if monotonic is None:
        monotonic = len(groups) < 2 or not bool((np.diff(groups) < 0).any())
    if not monotonic or bool(np.isnan(values).any()):
        return _kahan(values, groups, n_groups)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    return np.asarray(np.add.reduceat(values, starts), dtype="float64")


@dataclass(frozen=True)
class CustomerOrders:
    """One customer's orders (as ``orders_from_lines`` makes them), in order of first appearance."""

    order_id: list[str]
    order_date: np.ndarray  # datetime64[s], the order's first line date
    net_sales: np.ndarray  # float64, the sum of its lines
    is_cancelled: np.ndarray  # bool, any line cancelled

    def __len__(self) -> int:
        return len(self.order_id)


def customer_orders(lines: CustomerLines, keep: np.ndarray) -> CustomerOrders:
    """Return the orders of the lines where ``keep`` is true (lines without an order_id are skipped)."""
    number: dict[str, int] = {}
    groups: list[int] = []
    rows: list[int] = []
    monotonic, previous = True, -1
    for i in np.flatnonzero(keep).tolist():
        oid = lines.order_id[i]
        g = -1 if oid is None else number.setdefault(oid, len(number))
        monotonic = monotonic and g >= previous
        previous = g
        if g >= 0:
            rows.append(i)
            groups.append(g)
    n = len(number)
    index = np.asarray(rows, dtype=np.intp)
    codes = np.asarray(groups, dtype=np.intp)
    first = np.full(n, np.datetime64("NaT", "s"))
    cancelled = np.zeros(n, dtype=bool)
    dates = lines.order_date[index]
    if n:
        order = np.argsort(codes, kind="stable")
        starts = np.flatnonzero(np.r_[True, codes[order][1:] != codes[order][:-1]])
        first = np.minimum.reduceat(dates[order].astype("int64"), starts).astype("datetime64[s]")
        cancelled = np.logical_or.reduceat(lines.is_cancelled[index][order], starts)
    return CustomerOrders(
        order_id=list(number),
        order_date=first,
        net_sales=group_sums(lines.net_sales[index], codes, n, monotonic=monotonic),
        is_cancelled=cancelled,
    )


def customer_behaviour(lines: CustomerLines, as_of: date) -> dict[str, Any] | None:
    """Return one customer's ``BEHAVIOUR_COLUMNS`` values at ``as_of`` (None when no order is before it).

    Equals the customer's row of :func:`behaviour_features` (same values, dates as Timestamps).
    """
    cutoff = pd.Timestamp(as_of)
    before = lines.order_date < cutoff.to_datetime64()
    orders = customer_orders(lines, before)
    if not len(orders):
        return None
    placed = ~orders.is_cancelled
    frequency = int(placed.sum())
    first = orders.order_date.min()
    last = orders.order_date[placed].max() if frequency else orders.order_date.max()
    monetary = 0.0  # every order cancelled: nothing placed, nothing to add up
    if frequency:
        sums = group_sums(orders.net_sales[placed], np.zeros(frequency, dtype=np.intp), 1)
        monetary = float(np.round(sums, 2)[0])
    breadth = {
        p
        for i, p in enumerate(lines.product_line_id)
        if before[i] and not lines.is_cancelled[i] and p is not None
    }
    c = cutoff.to_datetime64()
    return {
        "first_order_date": pd.Timestamp(first),
        "last_order_date": pd.Timestamp(last),
        "recency_days": int((c - last) // np.timedelta64(1, "D")),
        "frequency": frequency,
        "monetary": monetary,
        "tenure_days": int((c - first) // np.timedelta64(1, "D")),
        "avg_order_value": float(np.round(monetary / frequency, 2)) if frequency else 0.0,
        "product_lines": len(breadth),
        "cancellation_rate": 1.0 - frequency / len(orders),
    }


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


def behaviour_features(source: pd.DataFrame | OrderHistory, as_of: date) -> pd.DataFrame:
    """Return one row per customer with an order before ``as_of``, indexed by customer_id (sorted).

    ``source``: an :class:`OrderHistory`, or history-shaped lines (``LINE_COLUMNS``: the lines
    before ``as_of`` are grouped into orders). Columns ``BEHAVIOUR_COLUMNS``: recency is
    measured from the last non-cancelled order (the last order of any status when all were
    cancelled); frequency and monetary count non-cancelled orders only; tenure from the first
    order of any status; product-line breadth = the product lines first bought (non-cancelled)
    before ``as_of``.
    """
    cutoff = pd.Timestamp(as_of)
    if isinstance(source, OrderHistory):
        history = source.before(cutoff)
    else:
        history = history_from_lines(source[source["order_date"] < cutoff])
    orders = history.orders
    placed = orders[~orders["is_cancelled"].to_numpy()]
    by_all = orders.groupby("customer_id", observed=True)
    out = by_customer(
        pd.DataFrame(
            {
                "first_order_date": by_all["order_date"].min(),
                "last_any": by_all["order_date"].max(),
                "orders_total": by_all.size(),
            }
        )
    ).sort_index()
    by_placed = placed.groupby("customer_id", observed=True)
    out["last_order_date"] = by_customer(by_placed["order_date"].max())
    out["last_order_date"] = out["last_order_date"].fillna(out["last_any"])
    out["frequency"] = by_customer(by_placed.size()).reindex(out.index).fillna(0).astype("int64")
    out["monetary"] = by_customer(by_placed["net_sales"].sum()).reindex(out.index).fillna(0.0).round(2)
    breadth = by_customer(history.first_uses.groupby("customer_id", observed=True).size())
    out["product_lines"] = breadth.reindex(out.index).fillna(0).astype("int64")
    out["recency_days"] = (cutoff - out["last_order_date"]).dt.days.astype("int64")
    out["tenure_days"] = (cutoff - out["first_order_date"]).dt.days.astype("int64")
    freq = out["frequency"].to_numpy(dtype="float64")
    out["avg_order_value"] = np.round(
        np.divide(out["monetary"].to_numpy(), freq, out=np.zeros(len(out)), where=freq > 0), 2
    )
    out["cancellation_rate"] = 1.0 - out["frequency"] / out["orders_total"]
    return out[list(BEHAVIOUR_COLUMNS)]
