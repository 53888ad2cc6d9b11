"""The model steps' and the insights' inputs computed from the fact's lines batch by batch (pandas path).

The same inputs the warehouse computes with ``reports_in="warehouse"``
(:mod:`salesbi.reports.sql.model_inputs`), equal frame for frame (values, dtypes, order), computed
from the fact's lines read in batches (the spilled Parquet file row group by row group, or slices
of a fact frame) so that no per-line frame of the whole fact exists in the model steps:

- :func:`order_rows`: one row per order (``ORDER_COLUMNS``): its customer, date and credited
  employee (constant on its lines), whether any line is cancelled, the sum of its net sales;
- :func:`first_uses`: per customer and product line, the first date of a non-cancelled line;
- :func:`forecast_days`: per day, customer country ('Unknown' when none), product line and
  office, the sum of net sales and the number of orders counted on the row of their first line
  (``salesbi.forecasting.series.DAY_COLUMNS``);
- :func:`insight_facts`: per status and cancelled flag, the last order date and the sum of net sales.

Each is a partial aggregate per batch, combined at the end (an order whose lines straddle two
batches is one group again after combining; the fact is sorted by order_id and line_number, so
an order's first line is the first of its lines that the batches yield). Sums are added as
integers of cents (net sales are whole cents), exactly, so the result does not depend on the
batch size nor on the order of addition, and equals the database's (``cents_sum``).
:func:`model_inputs_from_lines` computes any of them in one pass over the batches;
:func:`line_batches` cuts a fact frame, reads a spilled file or builds the fact from core's
frames (:func:`fact_batches_from_core`) batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import pandas as pd

from salesbi.fact_spill import BATCH_ROWS, SpilledTable
from salesbi.reports.fact import FACT_ORDER_LINES, fact_blocks
from salesbi.reports.line_blocks import OrderLineBlocks
from salesbi.reports.sql.model_inputs import (
    DAYS_SPEC,
    FIRST_USES_SPEC,
    INSIGHTS_SPEC,
    ORDERS_SPEC,
)
from salesbi.schema import Table
from salesbi.segmentation.history import OrderHistory, order_history
from salesbi.types import conform

#: the inputs :func:`model_inputs_from_lines` can compute
HISTORY, DAYS, INSIGHTS = "history", "days", "insights"


def cents(values: pd.Series) -> np.ndarray:
    """Return money amounts (whole cents) as int64 numbers of cents (nulls as 0)."""
    amounts = values.to_numpy(dtype="float64", na_value=0.0)
    return np.rint(amounts * 100.0).astype(np.int64)


def _money(total_cents: pd.Series) -> np.ndarray:
    """Return sums of cents as amounts (``SUM(cents) / 100.0`` as the database divides them)."""
    return total_cents.to_numpy(dtype="int64").astype("float64") / 100.0


def _typed(frame: pd.DataFrame, spec: Table) -> pd.DataFrame:
    return conform(frame[list(spec.column_names)].reset_index(drop=True), spec)


def _combined(parts: list[pd.DataFrame], combine: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    whole = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    return combine(whole)


class Aggregate(Protocol):
    """A partial aggregate of the fact's lines, fed batch by batch."""

    #: the fact's columns it reads
    columns: ClassVar[tuple[str, ...]]

    def add(self, lines: pd.DataFrame) -> None:
        """Add a batch of the fact's lines (in the fact's order)."""

    def result(self) -> pd.DataFrame:
        """Return the aggregate of every line added."""


class OrderRows:
    """One row per order (:data:`salesbi.reports.sql.model_inputs.ORDER_COLUMNS`), by order_id."""

    columns: ClassVar[tuple[str, ...]] = (
        "order_id",
        "customer_id",
        "order_date",
        "employee_id",
        "is_cancelled",
        "net_sales",
    )

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    @staticmethod
    def _per_order(rows: pd.DataFrame) -> pd.DataFrame:
        return rows.groupby("order_id", sort=False, as_index=False, dropna=False).agg(
            customer_id=("customer_id", "first"),
            order_date=("order_date", "first"),
            employee_id=("employee_id", "first"),
            is_cancelled=("is_cancelled", "max"),
            cents=("cents", "sum"),
        )

    def add(self, lines: pd.DataFrame) -> None:
        """Add the per-order partial sums of a batch of lines."""
        rows = pd.DataFrame(
            {
                "order_id": lines["order_id"],
                "customer_id": lines["customer_id"],
                "order_date": lines["order_date"],
                "employee_id": lines["employee_id"],
                "is_cancelled": lines["is_cancelled"].astype(bool),
                "cents": cents(lines["net_sales"]),
            }
        )
        self._parts.append(self._per_order(rows))

    def result(self) -> pd.DataFrame:
        """Return the orders, ordered by order_id (code point), typed as the database's rows."""
        if not self._parts:
            return conform(pd.DataFrame(columns=list(ORDERS_SPEC.column_names)), ORDERS_SPEC)
        out = _combined(self._parts, self._per_order).sort_values("order_id", kind="stable")
        out["net_sales"] = _money(out["cents"])
        return _typed(out, ORDERS_SPEC)


class FirstUses:
    """Per customer and product line, the first date of a non-cancelled line (``FIRST_USE_COLUMNS``)."""

    columns: ClassVar[tuple[str, ...]] = ("customer_id", "product_line_id", "order_date", "is_cancelled")
    _keys: ClassVar[list[str]] = ["customer_id", "product_line_id"]

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def _first(self, rows: pd.DataFrame) -> pd.DataFrame:
        return rows.groupby(self._keys, sort=False, as_index=False, dropna=False)["order_date"].min()

    def add(self, lines: pd.DataFrame) -> None:
        """Add the first uses of a batch of lines."""
        kept = (~lines["is_cancelled"].astype(bool)) & lines["product_line_id"].notna()
        self._parts.append(self._first(lines.loc[kept, [*self._keys, "order_date"]]))

    def result(self) -> pd.DataFrame:
        """Return the first uses, ordered by customer and product line (code point)."""
        if not self._parts:
            return conform(pd.DataFrame(columns=list(FIRST_USES_SPEC.column_names)), FIRST_USES_SPEC)
        out = _combined(self._parts, self._first).sort_values(self._keys, kind="stable")
        return _typed(out, FIRST_USES_SPEC)


class ForecastDays:
    """Per day, country, product line and office: net sales and orders (``DAY_COLUMNS``)."""

    columns: ClassVar[tuple[str, ...]] = (
        "order_id",
        "order_date",
        "customer_id",
        "product_line_id",
        "office_id",
        "net_sales",
    )
    _keys: ClassVar[list[str]] = ["order_date", "country", "product_line_id", "office_id"]

    def __init__(self, customers: pd.DataFrame) -> None:
        known = customers[["customer_id", "country"]].drop_duplicates("customer_id")
        self._ids = pd.Index(known["customer_id"].astype("string"))
        self._country = known["country"].astype("string").fillna("Unknown").array
        self._parts: list[pd.DataFrame] = []
        self._last_order: object = None

    def _sums(self, rows: pd.DataFrame) -> pd.DataFrame:
        return rows.groupby(self._keys, sort=False, as_index=False, dropna=False)[["cents", "orders"]].sum()

    def add(self, lines: pd.DataFrame) -> None:
        """Add the per-day partial sums of a batch of lines (in the fact's order)."""
        order_id = lines["order_id"]
        first = ~order_id.duplicated().to_numpy()
        if len(order_id) and order_id.iloc[0] == self._last_order:
            first[0] = False  # the order's first line was in the previous batch
        if len(order_id):
            self._last_order = order_id.iloc[-1]
        row = self._ids.get_indexer(lines["customer_id"].astype("string"))
        country = pd.Series(
            pd.api.extensions.take(self._country, row, allow_fill=True), index=lines.index, dtype="string"
        ).fillna("Unknown")
        rows = pd.DataFrame(
            {
                "order_date": lines["order_date"],
                "country": country,
                "product_line_id": lines["product_line_id"],
                "office_id": lines["office_id"],
                "cents": cents(lines["net_sales"]),
                "orders": first.astype(np.int64),
            }
        )
        self._parts.append(self._sums(rows))

    def result(self) -> pd.DataFrame:
        """Return the day rows, ordered by date, country, product line and office (nulls last)."""
        if not self._parts:
            return conform(pd.DataFrame(columns=list(DAYS_SPEC.column_names)), DAYS_SPEC)
        out = _combined(self._parts, self._sums).sort_values(self._keys, kind="stable", na_position="last")
        out["net_sales"] = _money(out["cents"])
        return _typed(out, DAYS_SPEC)


class InsightFacts:
    """Per status and cancelled flag: the last order date and the sum of net sales (``INSIGHT_COLUMNS``)."""

    columns: ClassVar[tuple[str, ...]] = ("status", "is_cancelled", "order_date", "net_sales")
    _keys: ClassVar[list[str]] = ["status", "is_cancelled"]

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def _groups(self, rows: pd.DataFrame) -> pd.DataFrame:
        return rows.groupby(self._keys, sort=False, as_index=False, dropna=False).agg(
            order_date=("order_date", "max"), cents=("cents", "sum")
        )

    def add(self, lines: pd.DataFrame) -> None:
        """Add the partial sums of a batch of lines."""
        rows = pd.DataFrame(
            {
                "status": lines["status"],
                "is_cancelled": lines["is_cancelled"].astype(bool),
                "order_date": lines["order_date"],
                "cents": cents(lines["net_sales"]),
            }
        )
        self._parts.append(self._groups(rows))

    def result(self) -> pd.DataFrame:
        """Return the groups, ordered by status (code point) and cancelled flag."""
        if not self._parts:
            return conform(pd.DataFrame(columns=list(INSIGHTS_SPEC.column_names)), INSIGHTS_SPEC)
        out = _combined(self._parts, self._groups).sort_values(self._keys, kind="stable")
        out["net_sales"] = _money(out["cents"])
        return _typed(out, INSIGHTS_SPEC)


@dataclass(frozen=True)
class CoreLines:
    """The fact's lines still to be built from core's frames (the report step did not run).

    ``lines``: core's order lines read in key order when ``core`` has no ``order_items`` frame.
    """

    core: Mapping[str, pd.DataFrame]
    lines: OrderLineBlocks | None = None


def fact_batches_from_core(
    core: Mapping[str, pd.DataFrame],
    columns: Collection[str] | None = None,
    rows: int = BATCH_ROWS,
    lines: OrderLineBlocks | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield ``build_fact_order_lines(core)`` in order, built a batch of whole orders at a time.

    Orders are taken by order_id (the fact's order) in groups of about ``rows`` lines (an order
    is never cut; one order with more lines makes a larger batch); each batch is the fact of
    those orders and their lines, so the batches put together equal the whole fact (its
    ``columns`` only, every column when None) and the whole fact never exists. ``lines``: core's
    order lines read in key order, when ``core`` has no ``order_items`` frame.
    """
    wanted = [c for c in FACT_ORDER_LINES.column_names if columns is None or c in set(columns)]
    for block in fact_blocks(dict(core), max(1, rows), lines):  # the report step's blocks (reports.fact)
        if len(block):
            yield block[wanted]


def line_batches(
    source: SpilledTable | pd.DataFrame | CoreLines, columns: Collection[str], rows: int = BATCH_ROWS
) -> Iterator[pd.DataFrame]:
    """Yield the fact's lines in order, ``columns`` only, as frames of about ``rows`` lines.

    ``source``: the spilled fact (read from its file batch by batch), a fact frame (sliced:
    the batches share the frame's columns) or core's frames (the fact built a batch of whole
    orders at a time: :func:`fact_batches_from_core`).
    """
    if isinstance(source, SpilledTable):
        yield from source.batches(rows, columns=sorted(columns))
        return
    if isinstance(source, CoreLines):
        yield from fact_batches_from_core(source.core, columns, rows, source.lines)
        return
    wanted = [c for c in source.columns if c in set(columns)]
    for start in range(0, len(source), rows):
        yield source.iloc[start : start + rows][wanted]


def aggregate(batches: Iterable[pd.DataFrame], aggregates: Sequence[Aggregate]) -> None:
    """Feed every batch of lines to each of ``aggregates`` (one pass)."""
    for batch in batches:
        for each in aggregates:
            each.add(batch)


def _one(batches: Iterable[pd.DataFrame], what: Aggregate) -> pd.DataFrame:
    aggregate(batches, [what])
    return what.result()


def order_rows(batches: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Return one row per order of the fact's lines (what ``order_history_select`` reads)."""
    return _one(batches, OrderRows())


def first_uses(batches: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Return each customer's first non-cancelled day per product line (what ``first_uses_select`` reads)."""
    return _one(batches, FirstUses())


def forecast_days(batches: Iterable[pd.DataFrame], customers: pd.DataFrame) -> pd.DataFrame:
    """Return the forecast's input per day (what ``forecast_days_select`` reads)."""
    return _one(batches, ForecastDays(customers))


def insight_facts(batches: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Return the fact per status and cancelled flag (what ``insight_facts_select`` reads)."""
    return _one(batches, InsightFacts())


@dataclass(frozen=True)
class OrderGrainInputs:
    """The model steps' and insights' inputs (None: not computed)."""

    #: the orders and first uses segments and predictions read (``OrderHistory``)
    history: OrderHistory | None = None
    #: the forecast's day rows (``DAY_COLUMNS``)
    days: pd.DataFrame | None = None
    #: the insights' aggregate (``INSIGHT_COLUMNS``)
    insights: pd.DataFrame | None = None


def needed_columns(wanted: Collection[str]) -> set[str]:
    """Return the fact's columns that the inputs ``wanted`` (HISTORY, DAYS, INSIGHTS) read (key too)."""
    columns: set[str] = set(FACT_ORDER_LINES.key)
    for name, makers in (
        (HISTORY, (OrderRows, FirstUses)),
        (DAYS, (ForecastDays,)),
        (INSIGHTS, (InsightFacts,)),
    ):
        if name in wanted:
            for maker in makers:
                columns |= set(maker.columns)
    return columns


def model_inputs_from_lines(
    source: SpilledTable | pd.DataFrame | CoreLines, customers: pd.DataFrame | None, wanted: Collection[str]
) -> OrderGrainInputs:
    """Return the inputs ``wanted`` (HISTORY, DAYS, INSIGHTS) computed in one pass over the fact's lines.

    ``source``: the spilled fact, a fact frame or core's frames (:class:`CoreLines`);
    ``customers``: core's customers (the forecast's countries; needed when DAYS is wanted).
    Each equals what the warehouse reads for the same data
    (:mod:`salesbi.reports.sql.model_inputs`: ``read_order_history``, ``read_forecast_days``,
    ``read_insight_facts``).
    """
    orders, uses = (OrderRows(), FirstUses()) if HISTORY in wanted else (None, None)
    days = ForecastDays(customers if customers is not None else _no_customers()) if DAYS in wanted else None
    insights = InsightFacts() if INSIGHTS in wanted else None
    aggregates: list[Aggregate] = [a for a in (orders, uses, days, insights) if a is not None]
    aggregate(line_batches(source, needed_columns(wanted)), aggregates)
    return OrderGrainInputs(
        history=order_history(orders.result(), uses.result()) if orders and uses else None,
        days=days.result() if days else None,
        insights=insights.result() if insights else None,
    )


def _no_customers() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": pd.Series(dtype="string"), "country": pd.Series(dtype="string")})
