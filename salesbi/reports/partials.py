"""Per-key partial aggregates of the fact's sold lines, summed block by block, combined at the end.

The report step builds the fact in blocks of whole orders (:func:`salesbi.reports.fact.fact_blocks`).
The product and product line builders need, per key, sums over the sold (not cancelled) lines;
instead of keeping per-line columns until every block is built, each block adds its lines into
per-key totals here and is dropped. What is kept grows with keys, pairs and days, never with lines:

- per key: lines, orders, units and the money sums (net sales, cost, discount) in **integer
  cents**. The fact's money columns are whole cents (rounded to 2 decimals when built), so the
  integer sums are exact whatever the order of the blocks, and ``round(sum, 2)`` of pandas' double
  sum of the same lines is exactly ``cents / 100`` (tests/test_report_blocks.py holds the tables
  to the one-pass double build, bit for bit);
- per (key, order day): net sales in cents, for the 12-month windows (the as-of date is known
  only once every block is seen);
- the distinct (key, customer) pairs, for the distinct customers per key;
- distinct orders per key add up across blocks: an order is in exactly one block.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: a (code, value) pair packed into one int64: code × 2**32 + value (0 <= value < 2**32)
_PAIR_SHIFT = np.int64(1 << 32)
#: added to a day number (days since 1970, negative before) to pack it as a pair's value
_DAY_BIAS = np.int64(1 << 31)


class KeyCodes:
    """Integer codes of one text key, assigned block by block (first seen first; null: -1).

    One entry per distinct value (products, customers), none per line; values looked up by
    hash (a pandas index), not one by one in Python.
    """

    def __init__(self) -> None:
        self._known: pd.Index | None = None

    def __len__(self) -> int:
        return 0 if self._known is None else len(self._known)

    def code(self, values: pd.Series) -> np.ndarray:
        """Return the code of each of ``values`` (int64, -1 for null), coding new values."""
        local, uniques = pd.factorize(values, use_na_sentinel=True)
        seen = pd.Index(uniques)
        if self._known is None:
            self._known = seen
            known = np.arange(len(seen), dtype=np.int64)
        else:
            known = self._known.get_indexer(seen).astype(np.int64)
            new = known < 0
            if new.any():
                known[new] = np.arange(len(self._known), len(self._known) + int(new.sum()))
                self._known = self._known.append(seen[new])
        return np.append(known, np.int64(-1))[local]  # local -1 (null) → -1

    def sorted(self, name: str) -> tuple[np.ndarray, pd.Index]:
        """Return (per code its position in the sorted values; the sorted values named ``name``).

        The order ``pd.factorize(column, sort=True)`` of the whole column gives.
        """
        values = pd.Index([], dtype="string") if self._known is None else self._known
        rank, keys = pd.factorize(values.array, sort=True)
        return rank.astype(np.int64), pd.Index(keys, name=name)


#: the cents a double holds exactly (2**53): beyond, an amount is not a whole number of cents
_EXACT_CENTS = float(2**53)


def whole_cents(values: np.ndarray, column: str) -> np.ndarray:
    """Return ``values`` (float64 amounts of whole cents, no NaN) as int64 cents.

    Raises ValueError when a value is not a whole number of cents (the fact rounds every money
    column to 2 decimals, so this is a broken invariant, not a data error).
    """
    cents = np.rint(values * 100.0)
    exact = np.array_equal(cents / 100.0, values) and bool(np.all(np.abs(cents) < _EXACT_CENTS))
    if not exact:  # NaN and infinities fail too
        raise ValueError(f"fact_order_lines.{column} holds amounts that are not whole cents")
    return cents.astype(np.int64)


def distinct(values: np.ndarray) -> np.ndarray:
    """Return the distinct int64 ``values``, sorted (a sort, not numpy's hash ``np.unique``: faster here).

    Stable sort: timsort merges the runs of already sorted parts in linear time.
    """
    ordered = np.sort(values, kind="stable")
    if len(ordered) < 2:
        return ordered
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


class PairSet:
    """A set of distinct (code, value) pairs of non-negative int codes, added block by block.

    Held as sorted unique packed int64 (8 bytes a pair), merged when the added parts outgrow it.
    """

    def __init__(self) -> None:
        self._merged = np.empty(0, dtype=np.int64)
        self._parts: list[np.ndarray] = []
        self._pending = 0

    def add(self, codes: np.ndarray, values: np.ndarray) -> None:
        """Add the pairs (``codes[i]``, ``values[i]``) where both are non-negative."""
        keep = (codes >= 0) & (values >= 0)
        part = distinct(codes[keep].astype(np.int64) * _PAIR_SHIFT + values[keep].astype(np.int64))
        self._parts.append(part)
        self._pending += len(part)
        if self._pending > max(len(self._merged), 1 << 16):
            self._merge()

    def _merge(self) -> None:
        self._merged = distinct(np.concatenate([self._merged, *self._parts]))
        self._parts, self._pending = [], 0

    def counts(self, n_codes: int) -> np.ndarray:
        """Return per code 0..``n_codes``-1 the number of distinct values paired with it."""
        self._merge()
        return np.bincount(self._merged // _PAIR_SHIFT, minlength=n_codes)[:n_codes]


#: the integer sums kept per key (money in cents)
_SUMS = ("lines", "orders", "units", "net_sales", "cost", "cost_unknown", "discount_amount")


class KeyPartials:
    """The per-key totals of the sold lines of one key of the fact (product_id or product_line_id)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.codes = KeyCodes()
        self.sums = {name: np.zeros(0, dtype=np.int64) for name in _SUMS}
        self.customers = PairSet()
        self.daily: pd.Series = pd.Series(dtype=np.int64)  # net sales cents per packed (code, day)

    def _grow(self) -> int:
        n = len(self.codes)
        for name, values in self.sums.items():
            if len(values) < n:
                self.sums[name] = np.concatenate([values, np.zeros(max(n - len(values), 64), dtype=np.int64)])
        return n

    def add(self, block_key: pd.Series, sold: np.ndarray, lines: BlockLines) -> np.ndarray:
        """Add the sold lines of one block; return per line its key code (-1: not sold or null key).

        ``block_key``: the block's key column; ``sold``: per line not cancelled.
        """
        codes = self.codes.code(block_key)
        codes[~sold] = -1
        self._grow()
        keep = codes >= 0
        c = codes[keep]
        np.add.at(self.sums["lines"], c, 1)
        for name in ("units", "net_sales", "cost", "cost_unknown", "discount_amount"):
            np.add.at(self.sums[name], c, getattr(lines, name)[keep])
        # distinct orders: each order is in one block only, so the block's counts add up
        order_pairs = distinct(c * np.int64(lines.orders + 1) + lines.order_no[keep])
        np.add.at(self.sums["orders"], order_pairs // np.int64(lines.orders + 1), 1)
        self.customers.add(c, lines.customer[keep])
        dated = keep & (lines.day != _NO_DAY)
        packed = codes[dated] * _PAIR_SHIFT + (lines.day[dated] + _DAY_BIAS)
        day_sums = pd.Series(lines.net_sales[dated]).groupby(packed).sum()
        if not self.daily.empty:
            day_sums = pd.concat([self.daily, day_sums]).groupby(level=0).sum()
        self.daily = day_sums
        return codes

    def sorted_keys(self) -> tuple[np.ndarray, pd.Index, np.ndarray]:
        """Return (the codes in the sorted order of their keys, the sorted keys, per sorted key
        whether it has sold lines)."""
        n = self._grow()
        rank, keys = self.codes.sorted(self.key)
        by_rank = np.empty(n, dtype=np.int64)
        by_rank[rank] = np.arange(n)  # by_rank[r]: the code of the r-th key in sorted order
        return by_rank, keys, self.sums["lines"][:n][by_rank] > 0

    def table(self, last_start: pd.Timestamp, prior_start: pd.Timestamp, as_of: pd.Timestamp) -> pd.DataFrame:
        """Return per key with sold lines (index: the keys, sorted) the report's product aggregates.

        Columns: orders, customers, units, net_sales, cost (null when any line's cost is
        unknown), discount_amount, sales_last_12m (order date in [``last_start``, ``as_of``)),
        sales_prior_12m ([``prior_start``, ``last_start``)), gross_profit, as
        ``summaries._product_lines`` always gave them (float64 money rounded to cents).
        """
        by_rank, keys, present = self.sorted_keys()
        n = len(by_rank)
        s = {name: values[:n][by_rank] for name, values in self.sums.items()}
        packed = self.daily.index.to_numpy(dtype=np.int64)
        code = packed // _PAIR_SHIFT
        day = packed - code * _PAIR_SHIFT - _DAY_BIAS
        cents = self.daily.to_numpy(dtype=np.int64)

        def window(lo: pd.Timestamp, hi: pd.Timestamp) -> np.ndarray:
            inside = (day >= _day(lo)) & (day < _day(hi))
            total = np.zeros(n, dtype=np.int64)
            np.add.at(total, code[inside], cents[inside])
            return total[by_rank]

        last, prior = window(last_start, as_of), window(prior_start, last_start)
        customers = self.customers.counts(n)[by_rank]
        out = pd.DataFrame(
            {
                "orders": s["orders"][present],
                "customers": customers[present],
                "units": s["units"][present].astype("float64"),
                "net_sales": _money(s["net_sales"][present]),
                "cost": _money(s["cost"][present]),
                "discount_amount": _money(s["discount_amount"][present]),
                "sales_last_12m": _money(last[present]),
                "sales_prior_12m": _money(prior[present]),
            },
            index=keys[present],
        )
        cost_known = s["cost_unknown"][present] == 0
        out["cost"] = out["cost"].where(cost_known)
        gross = _money(s["net_sales"][present] - s["cost"][present])
        out["gross_profit"] = pd.Series(gross, index=out.index).where(cost_known)
        return out


def _money(cents: np.ndarray) -> np.ndarray:
    """Return int64 ``cents`` as float64 amounts (exactly what rounding a double sum to 2 decimals gives)."""
    return np.round(cents.astype("float64") / 100.0, 2)


#: the day of a line without an order date (in no window)
_NO_DAY = np.int64(np.iinfo(np.int64).min)


def _day(ts: pd.Timestamp) -> np.int64:
    """Return the day number (days since 1970-01-01) of ``ts``."""
    return np.int64(pd.Timestamp(ts).to_datetime64().astype("datetime64[D]").astype(np.int64))


class BlockLines:
    """The per-line columns of one block the partials read (dropped with the block).

    ``order_no``: the line's order within the block (0..``orders``-1); ``customer``: the code of
    the order's customer (-1: none); ``day``: the order date's day number (:data:`_NO_DAY` when
    null); money in int64 cents; ``cost_unknown``: 1 where the cost is null (its cents are 0).
    """

    def __init__(self, block: pd.DataFrame, order_no: np.ndarray, orders: int, customer: np.ndarray) -> None:
        self.order_no = order_no
        self.orders = orders
        self.customer = customer
        dates = block["order_date"].to_numpy(dtype="datetime64[D]")
        self.day = np.where(np.isnat(dates), _NO_DAY, dates.astype(np.int64))
        self.units = block["quantity"].to_numpy(dtype="int64", na_value=0)
        self.net_sales = whole_cents(block["net_sales"].to_numpy(dtype="float64", na_value=0.0), "net_sales")
        cost = block["cost"].to_numpy(dtype="float64", na_value=np.nan)
        unknown = np.isnan(cost)
        self.cost_unknown = unknown.astype(np.int64)
        self.cost = whole_cents(np.where(unknown, 0.0, cost), "cost")
        self.discount_amount = whole_cents(
            block["discount_amount"].to_numpy(dtype="float64", na_value=0.0), "discount_amount"
        )


class ProductPartials:
    """The partials of the product and product line builders, block by block."""

    def __init__(self) -> None:
        self.product = KeyPartials("product_id")
        self.product_line = KeyPartials("product_line_id")
        self.customers = KeyCodes()
        self.products_of_line = PairSet()

    def add(self, block: pd.DataFrame, order_no: np.ndarray, orders: pd.DataFrame) -> None:
        """Add one block of whole orders (``order_no``: per line its row in ``orders``, the block's)."""
        if not len(block):
            return
        sold = ~block["is_cancelled"].to_numpy(dtype=bool, na_value=False)
        customer = self.customers.code(orders["customer_id"])[order_no]
        lines = BlockLines(block, order_no, len(orders), customer)
        product = self.product.add(block["product_id"], sold, lines)
        product_line = self.product_line.add(block["product_line_id"], sold, lines)
        self.products_of_line.add(product_line, product)

    def products_per_line(self) -> pd.Series:
        """Return per product_line_id with sold lines the number of distinct products sold on them."""
        by_rank, keys, present = self.product_line.sorted_keys()
        counts = self.products_of_line.counts(len(by_rank))[by_rank]
        return pd.Series(counts[present], index=keys[present], name="product_id")
