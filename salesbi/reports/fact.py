"""``rpt.fact_order_lines``: one row per order line with revenue, cost and profit.

This is the single place where the derived measures of DESIGN.md are defined:

* revenue       = quantity × unit_price × (1 − discount)
* discount_amount = quantity × unit_price × discount
* cost          = quantity × unit_cost (null where the source has no cost)
* gross_profit  = revenue − cost (null where cost is null)
* net_sales     = revenue, or 0 for cancelled orders (net sales exclude cancelled orders); a
                  return (negative quantity on a cancelled order, i.e. a credit note) keeps its
                  negative revenue, so returns net off sales; such lines have is_cancelled false
* credited employee = orders.employee_id, else the customer's sales_rep_id
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from salesbi.contract import ORDER_ITEMS
from salesbi.errors import SalesBIError
from salesbi.reports.line_blocks import OrderLineBlocks, order_ids, whole_order_blocks
from salesbi.schema import Column, Table
from salesbi.types import conform
from salesbi.warehouse.ordered_read import ORDERED_BATCH_ROWS

FACT_ORDER_LINES = Table(
    name="fact_order_lines",
    schema="rpt",
    description="One row per order line; every sales figure in the reports sums this table.",
    key=("order_id", "line_number"),
    columns=(
        Column("order_id", "id", required=True),
        Column("line_number", "int", required=True),
        Column("customer_id", "id", required=True),
        Column("product_id", "id", required=True),
        Column("product_line_id", "id"),
        Column("employee_id", "id", description="credited sales rep"),
        Column("office_id", "id", description="office of the credited sales rep"),
        Column("order_date", "date", required=True),
        Column("shipped_date", "date"),
        Column("status", "text", required=True, length=16),
        Column("is_cancelled", "bool", required=True),
        Column("quantity", "int", required=True),
        Column("unit_price", "money", required=True),
        Column("discount", "fraction", required=True),
        Column("revenue", "money", required=True),
        Column("discount_amount", "money", required=True),
        Column("cost", "money"),
        Column("gross_profit", "money"),
        Column("net_sales", "money", required=True),
        Column("net_profit", "money", description="gross_profit, or 0 for cancelled orders"),
        Column("geography_key", "id", description="customer's '<country>|<city>' (rpt.dim_geography)"),
    ),
    indexes=(("customer_id",), ("order_date",), ("product_id",)),
)

CANCELLED_STATUSES = frozenset({"cancelled"})


def geography_key(country: pd.Series, city: pd.Series) -> pd.Series:
    """Return the ``'<country>|<city>'`` key of ``rpt.dim_geography`` (empty parts when unknown)."""
    return country.astype("string").fillna("") + "|" + city.astype("string").fillna("")


def _text(values: pd.Series) -> pa.Array:
    """Return ``values`` as one Arrow large_string array (ids compare as text)."""
    arr = pa.array(values, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return pc.cast(arr, pa.large_string())


def _positions(keys: pa.Array, table: pd.DataFrame, key: str, table_name: str) -> np.ndarray:
    """Return, per key, the row of ``table`` holding it (-1 where absent); its keys must be unique."""
    right = _text(table[key])
    if pc.count_distinct(right, mode="only_valid").as_py() != len(right) - right.null_count:
        raise SalesBIError(
            f"{table_name}.{key} has duplicate values: the fact table needs one row per {key}",
            hint=f"load {table_name} through salesbi ingest, which keeps one row per key",
        )
    pos = pc.index_in(keys, value_set=right, skip_nulls=True)  # a null key matches nothing
    return np.asarray(pc.fill_null(pos, -1).to_numpy(zero_copy_only=False), dtype=np.intp)


def key_positions(values: pd.Series, table: pd.DataFrame, key: str, table_name: str) -> np.ndarray:
    """Return per value the row of ``table`` whose ``key`` holds it (-1 where absent or null).

    An Arrow hash lookup: no Python string per value. ``table``'s keys must be unique.
    """
    return _positions(_text(values), table, key, table_name)


def _take(values: pd.Series, rows: np.ndarray) -> pd.Series:
    """Return ``values`` at positions ``rows`` (null where the position is -1), same dtype."""
    taken = pd.api.extensions.take(values.array, rows, allow_fill=True)
    return pd.Series(taken, dtype=values.dtype)


#: lines per block of :func:`fact_blocks` (whole orders: a block ends at the first order boundary
#: at or after this many lines); each block is one row group of the spill file
#: (``salesbi.fact_spill.FactSpill``)
FACT_BLOCK_LINES = 262_144


def fact_line_rows(core: dict[str, pd.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
    """Return (row of ``order_items``, row of ``orders``) per fact line, in the fact's order.

    The fact's order is by order_id then line_number; lines whose order is unknown are left out
    (validation rejects them before they reach ``core``).
    """
    items, orders = core["order_items"], core["orders"]
    # lookups by key position (Arrow hash joins), not pandas merges: ~3x faster on a million lines
    order_ids = _text(items["order_id"])
    order_row = _positions(order_ids, orders, "order_id", "orders")
    item_row = np.flatnonzero(order_row >= 0)  # lines of unknown orders are left out
    by_order_and_line = pc.sort_indices(
        pa.table(
            {
                "o": order_ids.take(item_row),
                "l": pa.array(items["line_number"], from_pandas=True).take(item_row),
            }
        ),
        sort_keys=[("o", "ascending"), ("l", "ascending")],
    ).to_numpy()
    del order_ids
    item_row = item_row[by_order_and_line]
    return item_row, order_row[item_row]


def order_block_bounds(order_row: np.ndarray, block_lines: int) -> list[tuple[int, int]]:
    """Return the (start, stop) line positions of blocks of whole orders of about ``block_lines`` lines.

    ``order_row``: per line its order (:func:`fact_line_rows`; an order's lines are adjacent). A
    block ends at the first order boundary at or after each multiple of ``block_lines``, so no
    order is ever split across two blocks (an order longer than a block is one block). At least
    one block, empty when there are no lines.
    """
    n = len(order_row)
    if n == 0:
        return [(0, 0)]
    if block_lines < 1:
        raise ValueError(f"block_lines must be at least 1, not {block_lines}")
    starts = np.flatnonzero(np.concatenate(([True], order_row[1:] != order_row[:-1])))
    wanted = np.arange(block_lines, n, block_lines)
    at = np.searchsorted(starts, wanted, side="left")
    cuts = np.unique(starts[at[at < len(starts)]])
    edges = [0, *(int(c) for c in cuts if 0 < c < n), n]
    return list(itertools.pairwise(edges))


class FactBlocks:
    """``rpt.fact_order_lines`` in blocks of whole orders, each conformed to the table's dtypes.

    Iterating yields the blocks in the fact's order (at least one, empty when there are no
    lines); concatenated they are ``conform(build_fact_order_lines(core), FACT_ORDER_LINES)``
    (tested). ``rows`` is the fact's length, known before the first block is built.
    """

    def __init__(self, core: dict[str, pd.DataFrame], block_lines: int = FACT_BLOCK_LINES) -> None:
        self.core = core
        item_row, order_row = fact_line_rows(core)
        self.bounds = order_block_bounds(order_row, block_lines)
        self.rows: int | None = len(item_row)
        # held while the blocks are built: int32 while the rows fit (8 bytes a line, not 16)
        self.item_row, self.order_row = (
            _narrow(a, len(t)) for a, t in ((item_row, core["order_items"]), (order_row, core["orders"]))
        )

    def __iter__(self) -> Iterator[pd.DataFrame]:
        items = self.core["order_items"]
        for start, stop in self.bounds:
            block = _assemble(self.core, items, self.item_row[start:stop], self.order_row[start:stop])
            yield conform(block, FACT_ORDER_LINES)


class StreamedFactBlocks:
    """``rpt.fact_order_lines`` in blocks of whole orders built from core's lines read in key order.

    ``lines`` (:class:`~salesbi.reports.line_blocks.OrderLineBlocks`) replaces
    ``core["order_items"]``: each batch of lines is looked up in ``core["orders"]`` (lines of
    unknown orders are left out, as :func:`fact_line_rows` does) and cut into the blocks the
    whole frame gives (:func:`~salesbi.reports.line_blocks.whole_order_blocks`); no per-line
    array of the whole fact exists. ``rows`` is None until every block is built (then the
    fact's length).
    """

    def __init__(
        self,
        core: dict[str, pd.DataFrame],
        lines: OrderLineBlocks,
        block_lines: int = FACT_BLOCK_LINES,
        read_rows: int | None = None,
    ) -> None:
        self.core = core
        self.lines = lines
        self.block_lines = block_lines
        # lines read at a time: no more than a block (at most ORDERED_BATCH_ROWS)
        self.read_rows = read_rows or max(1, min(block_lines, ORDERED_BATCH_ROWS))
        self.rows: int | None = None

    def _known(self, lookup: OrderLookup) -> Iterator[pd.DataFrame]:
        for batch in self.lines.batches(self.read_rows):
            rows = lookup.positions(order_ids(batch))
            known = rows >= 0
            kept = batch if known.all() else batch[known]
            yield kept.assign(**{_ORDER_ROW: rows[known]})

    def __iter__(self) -> Iterator[pd.DataFrame]:
        lookup = OrderLookup(self.core["orders"])
        done = 0
        for block in whole_order_blocks(self._known(lookup), self.block_lines):
            if _ORDER_ROW in block:
                order_row = block[_ORDER_ROW].to_numpy(dtype=np.intp)
                items = block.drop(columns=[_ORDER_ROW])
            else:  # no line at all
                order_row, items = np.empty(0, dtype=np.intp), conform(block, ORDER_ITEMS)
            fact = _assemble(self.core, items, np.arange(len(items), dtype=np.intp), order_row)
            del block, items
            done += len(fact)
            yield conform(fact, FACT_ORDER_LINES)
        self.rows = done


#: the column :class:`StreamedFactBlocks` adds to a batch of lines: the line's row of ``orders``
_ORDER_ROW = "__order_row"


class OrderLookup:
    """The row of ``orders`` of each order id, for ids that come sorted (a batch of lines in key order).

    ``orders``' ids are sorted once (8 bytes an order for the permutation, plus the sorted ids);
    a batch's ids are looked up among the sorted ids between its first and last (bisected), so
    the hash table built per batch grows with the batch's orders, not with all orders.
    """

    def __init__(self, orders: pd.DataFrame) -> None:
        ids = _text(orders["order_id"])
        valid = len(ids) - ids.null_count
        if pc.count_distinct(ids, mode="only_valid").as_py() != valid:
            raise SalesBIError(
                "orders.order_id has duplicate values: the fact table needs one row per order_id",
                hint="load orders through salesbi ingest, which keeps one row per key",
            )
        order = pc.array_sort_indices(ids, null_placement="at_end").to_numpy()[:valid]
        self._row = order.astype(np.intp)
        self._sorted = ids.take(pa.array(order))

    def _bisect(self, value: str, right: bool) -> int:
        """Return where ``value`` goes in the sorted ids (after equal ones when ``right``)."""
        lo, hi = 0, len(self._sorted)
        while lo < hi:
            mid = (lo + hi) // 2
            v = self._sorted[mid].as_py()
            if v < value or (right and v == value):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def positions(self, ids: pa.Array) -> np.ndarray:
        """Return per id (sorted by their bytes, no null) its row of ``orders`` (-1 where absent)."""
        if not len(ids) or not len(self._sorted):
            return np.full(len(ids), -1, dtype=np.intp)
        lo = self._bisect(ids[0].as_py(), right=False)
        hi = self._bisect(ids[len(ids) - 1].as_py(), right=True)
        if hi <= lo:
            return np.full(len(ids), -1, dtype=np.intp)
        pos = pc.index_in(ids, value_set=self._sorted.slice(lo, hi - lo))
        at = np.asarray(pc.fill_null(pos, -1).to_numpy(zero_copy_only=False), dtype=np.intp)
        return np.where(at >= 0, self._row[np.maximum(at, 0) + lo], -1)


def _narrow(rows: np.ndarray, length: int) -> np.ndarray:
    """Return the row positions ``rows`` (of a table of ``length`` rows) as int32 when they fit."""
    return rows.astype(np.int32) if length < 2**31 else rows


def fact_blocks(
    core: dict[str, pd.DataFrame],
    block_lines: int = FACT_BLOCK_LINES,
    lines: OrderLineBlocks | None = None,
) -> FactBlocks | StreamedFactBlocks:
    """Return the fact of ``core`` as blocks of about ``block_lines`` lines (whole orders).

    :class:`FactBlocks` from ``core["order_items"]``, or with ``lines`` (core's lines read in
    key order, ``order_items`` not in ``core``) :class:`StreamedFactBlocks`: the same blocks.
    """
    if lines is not None:
        return StreamedFactBlocks(core, lines, block_lines)
    return FactBlocks(core, block_lines)


def build_fact_order_lines(core: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Return the ``fact_order_lines`` frame from the canonical ``core`` frames, sorted by order and line.

    ``core`` maps canonical table names to frames with the contract's columns.
    Lines whose order is unknown are not in the result (validation rejects them
    before they reach ``core``). The whole fact as one frame: the report step builds it in
    blocks instead (:func:`fact_blocks`).
    """
    item_row, order_row = fact_line_rows(core)
    return _assemble(core, core["order_items"], item_row, order_row)


def _assemble(
    core: dict[str, pd.DataFrame], items: pd.DataFrame, item_row: np.ndarray, order_row: np.ndarray
) -> pd.DataFrame:
    """Return the fact's lines at ``item_row`` of ``items`` (core's order lines or a block of them;
    their orders at ``order_row`` of ``core["orders"]``).

    Memory: each column is built once and the frame is assembled from them without a
    copy (no column inserted one by one, no reordering copy, no per-line customer
    country and city: the geography key is made per customer and taken per line).
    """
    orders, customers = core["orders"], core["customers"]
    products, employees = core["products"], core["employees"]
    f: dict[str, pd.Series | np.ndarray] = {c: _take(items[c], item_row) for c in ("order_id", "line_number")}
    for c in ("order_date", "shipped_date"):
        f[c] = _take(orders[c], order_row)
    customer_id = f["customer_id"] = _take(orders["customer_id"], order_row)
    product_id = f["product_id"] = _take(items["product_id"], item_row)
    status = f["status"] = _take(orders["status"], order_row)
    customer_row = _positions(_text(customer_id), customers, "customer_id", "customers")
    product_row = _positions(_text(product_id), products, "product_id", "products")
    f["product_line_id"] = _take(products["product_line_id"], product_row)
    employee = _take(orders["employee_id"], order_row).fillna(_take(customers["sales_rep_id"], customer_row))
    f["employee_id"] = employee
    f["office_id"] = _take(
        employees["office_id"], _positions(_text(employee), employees, "employee_id", "employees")
    )
    # the customer's '<country>|<city>', made once per customer; a line whose customer is unknown
    # gets the key of an unknown country and city, as geography_key(null, null) gives
    f["geography_key"] = _take(geography_key(customers["country"], customers["city"]), customer_row).fillna(
        geography_key(pd.Series([pd.NA], dtype="string"), pd.Series([pd.NA], dtype="string")).iloc[0]
    )

    qty = _take(items["quantity"], item_row)
    f["quantity"] = qty
    qty = qty.astype("float64")
    price = _take(items["unit_price"], item_row).astype("float64")
    discount = _take(items["discount"], item_row).astype("float64").fillna(0.0)
    unit_cost = _take(products["unit_cost"], product_row).astype("float64")
    gross = qty * price
    f["unit_price"] = price
    f["discount"] = discount
    revenue = (gross * (1.0 - discount)).round(2)
    f["revenue"] = revenue
    f["discount_amount"] = (gross * discount).round(2)
    del gross
    cost = (qty * unit_cost).round(2)
    f["cost"] = cost
    gross_profit = (revenue - cost).round(2)
    f["gross_profit"] = gross_profit
    # a line with a negative quantity on a cancelled order is a return (a credit note's line): it is not
    # a cancelled sale but nets off sales, so it keeps its (negative) revenue in net sales
    returned = qty.to_numpy(dtype="float64", na_value=0.0) < 0
    cancelled = status.isin(CANCELLED_STATUSES).to_numpy(dtype=bool) & ~returned
    f["is_cancelled"] = cancelled
    f["net_sales"] = np.where(cancelled, 0.0, revenue)
    # a cancelled line of a product without cost still has an unknown profit, not zero
    profit = gross_profit.to_numpy(dtype="float64", na_value=np.nan)
    f["net_profit"] = np.where(cancelled & ~np.isnan(profit), 0.0, profit)
    return pd.DataFrame({c: f[c] for c in FACT_ORDER_LINES.column_names}, copy=False)
