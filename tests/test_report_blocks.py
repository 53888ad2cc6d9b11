"""Issue 18 memory: the report step builds the fact in blocks of whole orders, never whole.

The reference is the report build as it was before (kept below, verbatim but for its names): the
fact built whole as one frame, the report context over that frame (``ctx.fact``) and the product
aggregates and calendar bounds read from it. The blocked build must give every report table
identical (``assert_frame_equal``, exact) at block sizes from one line to more than the fact, on
the generator, on constructed shapes (edge cases, one order, orders without lines, unknown costs,
every order cancelled, an empty fact) and on the real samples; the blocks cut only between
orders; the spill file written block by block (a row group a block) holds the whole frame's
schema, rows and values; and after the report step of a run no frame of the whole fact is alive.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from salesbi import fact_spill, pipeline
from salesbi.errors import SalesBIError
from salesbi.fact_spill import FactSpill
from salesbi.params import PipelineParams
from salesbi.publish import write_parquet
from salesbi.reading.reader import core_frames, read_source
from salesbi.reports import build, dims, monthly, summaries
from salesbi.reports.context import order_frame, order_starts
from salesbi.reports.fact import FACT_ORDER_LINES, build_fact_order_lines, fact_blocks, order_block_bounds
from salesbi.reports.measures import add_months
from salesbi.reports.params import ReportParams
from salesbi.types import conform
from tests.census import live_objects
from tests.reports_helpers import make_core
from tests.test_memory_fact import _edge_cases

# --- the build before the change (the fact whole, the context over it) -------------------------


@dataclass(frozen=True)
class _OldContext:
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


def _old_default_as_of(fact: pd.DataFrame) -> date:
    if not len(fact):
        raise SalesBIError(
            "there are no order lines to report on",
            hint="load orders and order items first, or pass an explicit as_of date",
        )
    last = pd.Timestamp(fact["order_date"].max()).date()
    return last + timedelta(days=1)


def _old_build_context(
    core: dict[str, pd.DataFrame], fact: pd.DataFrame, params: ReportParams
) -> _OldContext:
    as_of = params.as_of or _old_default_as_of(fact)
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
    order_of_line: np.ndarray = np.cumsum(starts_order, dtype=np.int32 if len(fact) < 2**31 else np.int64)
    np.subtract(order_of_line, 1, out=order_of_line)
    customer_of_order = pd.factorize(orders["customer_id"], use_na_sentinel=True)[0].astype(np.int64)
    return _OldContext(
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


def _old_group_sums(codes: np.ndarray, n_keys: int, values: np.ndarray) -> np.ndarray:
    """Return per key code the sum of ``values`` over the lines of that code (-1: left out).

    pandas' groupby sum over the values in line order (compensated summation): the same sums,
    to the last bit, as grouping a frame that holds only those lines, without building it.
    """
    groups = pd.Categorical.from_codes(codes, categories=pd.RangeIndex(n_keys), validate=False)
    sums = pd.Series(values, copy=False).groupby(groups, observed=False, sort=True).sum()
    return sums.to_numpy()


def _old_distinct_per_key(codes: np.ndarray, n_keys: int, other: np.ndarray) -> np.ndarray:
    """Return per key code the count of distinct values of ``other`` on its lines (-1 in either: left out)."""
    keep = (codes >= 0) & (other >= 0)
    pairs = other[keep].astype(np.int64)
    pairs *= n_keys
    pairs += codes[keep]
    del keep
    pairs.sort()
    first = np.ones(len(pairs), dtype=bool)
    first[1:] = pairs[1:] != pairs[:-1]
    return np.bincount(pairs[first] % n_keys, minlength=n_keys)


def _old_sold_codes(ctx: Any, key: str) -> tuple[np.ndarray, pd.Index]:
    codes, keys = pd.factorize(ctx.fact[key], sort=True, use_na_sentinel=True)
    codes[~ctx.sold] = -1
    return codes, pd.Index(keys, name=key)


def _old_product_lines(ctx: Any, key: str) -> pd.DataFrame:
    fact = ctx.fact
    codes, keys = _old_sold_codes(ctx, key)
    n = len(keys)
    present = np.bincount(codes[codes >= 0], minlength=n) > 0

    def sums(values: np.ndarray) -> np.ndarray:
        return _old_group_sums(codes, n, values)[present]

    dates = fact["order_date"]
    in_last = ((dates >= pd.Timestamp(ctx.last_12m_start)) & (dates < pd.Timestamp(ctx.as_of))).to_numpy()
    in_prior = (
        (dates >= pd.Timestamp(ctx.prior_12m_start)) & (dates < pd.Timestamp(ctx.last_12m_start))
    ).to_numpy()
    sales = fact["net_sales"].to_numpy(dtype="float64", na_value=0.0)
    cost = fact["cost"].to_numpy(dtype="float64", na_value=np.nan)
    cost_unknown = sums(np.isnan(cost).astype("int64"))
    out = pd.DataFrame(
        {
            "orders": _old_distinct_per_key(codes, n, ctx.order_of_line)[present],
            "customers": _old_distinct_per_key(codes, n, ctx.customer_of_order[ctx.order_of_line])[present],
            "units": sums(fact["quantity"].to_numpy(dtype="float64", na_value=0.0)),
            "net_sales": sums(sales),
            "cost": sums(np.nan_to_num(cost, nan=0.0)),
            "discount_amount": sums(fact["discount_amount"].to_numpy(dtype="float64", na_value=0.0)),
            "sales_last_12m": sums(np.where(in_last, sales, 0.0)),
            "sales_prior_12m": sums(np.where(in_prior, sales, 0.0)),
        },
        index=keys[present],
    )
    out["cost"] = out["cost"].where(cost_unknown == 0)
    out["gross_profit"] = out["net_sales"] - out["cost"]
    for col in ("net_sales", "cost", "gross_profit", "discount_amount", "sales_last_12m", "sales_prior_12m"):
        out[col] = out[col].round(2)
    return out


def _old_products_per_line(ctx: Any) -> pd.Series:
    codes, keys = _old_sold_codes(ctx, "product_line_id")
    product = pd.factorize(ctx.fact["product_id"], use_na_sentinel=True)[0]
    present = np.bincount(codes[codes >= 0], minlength=len(keys)) > 0
    counts = _old_distinct_per_key(codes, len(keys), product)
    return pd.Series(counts[present], index=keys[present], name="product_id")


def _old_calendar_bounds(fact: pd.DataFrame, as_of: date) -> tuple[date, date]:
    dates = [pd.Timestamp(as_of) - pd.Timedelta(days=1)]
    for col in ("order_date", "shipped_date"):
        s = fact[col].dropna()
        if len(s):
            dates += [s.min(), s.max()]
    return min(dates).date(), max(dates).date()


def _old_build_reports(
    core: dict[str, pd.DataFrame], params: ReportParams, monkeypatch: pytest.MonkeyPatch
) -> dict[str, pd.DataFrame]:
    fact = conform(build_fact_order_lines(core), FACT_ORDER_LINES)
    ctx: Any = _old_build_context(core, fact, params)
    first, last = _old_calendar_bounds(fact, ctx.as_of)
    with monkeypatch.context() as m:
        m.setattr(summaries, "_product_lines", _old_product_lines)
        m.setattr(summaries, "products_per_line", _old_products_per_line)
        return {
            "dim_date": dims.build_dim_date(first, last, params.fiscal_year_start_month),
            "dim_geography": dims.build_dim_geography(core["customers"]),
            "dim_office": dims.build_dim_office(core["offices"], core["employees"]),
            "dim_employee": dims.build_dim_employee(
                core["employees"], core["offices"], core["customers"], ctx.orders
            ),
            "dim_product_line": dims.build_dim_product_line(core["product_lines"], core["products"]),
            "dim_product": dims.build_dim_product(core["products"], core["product_lines"]),
            "dim_customer": dims.build_dim_customer(core["customers"], core["employees"]),
            "fact_order_lines": fact,
            "customer_summary": summaries.build_customer_summary(ctx),
            "location_summary": summaries.build_location_summary(ctx),
            "product_summary": summaries.build_product_summary(ctx),
            "product_line_summary": summaries.build_product_line_summary(ctx),
            "employee_performance": summaries.build_employee_performance(ctx),
            "sales_monthly": monthly.build_sales_monthly(ctx),
            "customer_growth": monthly.build_customer_growth(ctx),
            "order_value_distribution": monthly.build_order_value_distribution(ctx),
        }


# --- the cases ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated_core(sample_company: Path) -> dict[str, pd.DataFrame]:
    """Return the core frames of the session's generated company."""
    return core_frames(read_source(sample_company, "canonical"))


def _one_order() -> dict[str, pd.DataFrame]:
    return make_core([("O1", "C1", "2024-03-05", "shipped", [("P1", 2, 10.0, 0.0), ("P3", 1, 5.0, 0.1)])])


def _orders_without_lines() -> dict[str, pd.DataFrame]:
    core = make_core(
        [
            ("O1", "C1", "2023-01-05", "shipped", [("P1", 2, 10.0, 0.0)]),
            ("O2", "C2", "2023-06-05", "cancelled", [("P2", 1, 5.0, 0.1), ("P3", 4, 1.0, 0.0)]),
            ("O3", "C3", "2024-02-05", "shipped", [("P3", 1, 1.0, 0.0), ("P1", -1, 10.0, 0.0)]),
            ("O4", "C4", "2025-02-05", "shipped", [("P2", 3, 5.0, 0.0)]),
        ]
    )
    extra = core["orders"].iloc[:2].copy()
    extra["order_id"] = ["O0", "O9"]  # orders without a line: not in the fact, not reported
    core["orders"] = conform(pd.concat([core["orders"], extra], ignore_index=True), _spec("orders"))
    return core


def _null_customers_and_products() -> dict[str, pd.DataFrame]:
    core = make_core(
        [
            ("O1", "C1", "2023-01-05", "shipped", [("P1", 2, 10.0, 0.0), ("P2", 1, 5.0, 0.0)]),
            ("O2", "C2", "2023-06-05", "shipped", [("P2", 1, 5.0, 0.1), ("P3", 4, 1.0, 0.0)]),
            ("O3", "C3", "2024-02-05", "cancelled", [("P3", 1, 1.0, 0.0)]),
            ("O4", "C5", "2024-05-05", "shipped", [("P1", 3, 10.0, 0.0)]),
        ],
        uncosted=True,  # unknown costs everywhere
    )
    core["orders"].loc[1, "customer_id"] = pd.NA  # an order without a customer
    core["order_items"].loc[0, "product_id"] = "NO-SUCH-PRODUCT"  # no line, no cost
    core["order_items"].loc[2, "product_id"] = pd.NA  # a line without a product
    core["products"].loc[2, "product_line_id"] = pd.NA  # a product without a line
    return core


def _all_cancelled() -> dict[str, pd.DataFrame]:
    return make_core(
        [
            ("O1", "C1", "2024-01-05", "cancelled", [("P1", 2, 10.0, 0.0), ("P2", 1, 5.0, 0.1)]),
            ("O2", "C2", "2024-02-05", "cancelled", [("P3", 1, 1.0, 0.0)]),
        ]
    )


def _spec(name: str) -> Any:
    from salesbi import contract

    return contract.table(name)


def _cases(generated_core: dict[str, pd.DataFrame]) -> Iterator[tuple[str, dict[str, pd.DataFrame]]]:
    yield "generator", generated_core
    yield "edge cases", _edge_cases(generated_core)
    yield "one order", _one_order()
    yield "orders without lines", _orders_without_lines()
    yield "null customers and products, unknown costs", _null_customers_and_products()
    yield "every order cancelled", _all_cancelled()


#: one order per block, a few orders, many, the whole fact in one (one-line blocks on small cases only)
BLOCKS = (1, 7, 1_000, 10**9)
LARGE_BLOCKS = (997, 10**9)


def _assert_same_tables(
    core: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch, params: ReportParams | None = None
) -> None:
    params = params or ReportParams()
    old = _old_build_reports(core, params, monkeypatch)
    for lines in BLOCKS if len(core["order_items"]) < 5_000 else LARGE_BLOCKS:
        new = build.build_reports(core, params, block_lines=lines)
        assert list(new) == list(old)
        for table in new:
            pd.testing.assert_frame_equal(new[table], old[table], check_exact=True, obj=f"{table} ({lines})")


def test_every_report_table_equals_the_whole_fact_build(
    generated_core: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    for _name, core in _cases(generated_core):
        _assert_same_tables(core, monkeypatch)
    _assert_same_tables(generated_core, monkeypatch, ReportParams(as_of=date(2023, 7, 1), churn_months=2))


def test_the_cases_are_really_there(generated_core: dict[str, pd.DataFrame]) -> None:
    fact = build_fact_order_lines(_null_customers_and_products())
    assert fact["customer_id"].isna().any() and fact["product_id"].isna().any()
    assert fact["product_line_id"].isna().sum() >= 2 and fact["cost"].isna().all()
    core = _orders_without_lines()
    assert len(core["orders"]) == 6 and build_fact_order_lines(core)["order_id"].nunique() == 4
    assert build_fact_order_lines(_all_cancelled())["is_cancelled"].all()


def test_an_empty_fact_builds_empty_tables_with_an_as_of_date_and_fails_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    core = _one_order()
    core["order_items"] = core["order_items"].iloc[:0]
    params = ReportParams(as_of=date(2024, 4, 1))
    _assert_same_tables(core, monkeypatch, params)
    assert build.build_reports(core, params)["fact_order_lines"].empty
    with pytest.raises(SalesBIError, match="no order lines"):
        build.build_reports(core)


@pytest.mark.realdata
@pytest.mark.parametrize("profile", ["classicmodels", "northwind"])
def test_every_report_table_equals_the_whole_fact_build_on_the_real_samples(
    datasets_dir: Path, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _assert_same_tables(core_frames(read_source(datasets_dir / profile, profile)), monkeypatch)


# --- the blocks --------------------------------------------------------------------------------


def test_blocks_cut_only_between_orders(generated_core: dict[str, pd.DataFrame]) -> None:
    whole = conform(build_fact_order_lines(generated_core), FACT_ORDER_LINES)
    for lines in (333, 4_096, 10**9):
        blocks = fact_blocks(generated_core, lines)
        parts = list(blocks)
        assert blocks.rows == len(whole) == sum(len(p) for p in parts)
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole, check_exact=True)
        ids = [set(p["order_id"]) for p in parts]
        assert sum(len(i) for i in ids) == whole["order_id"].nunique()  # no order in two blocks
        # a block ends at the first order end at or after each multiple of the block size
        ends = np.cumsum([len(p) for p in parts])
        assert len(parts) <= -(-len(whole) // lines)
        assert all(e >= lines * (k + 1) for k, e in enumerate(ends[:-1]))
    small = _orders_without_lines()
    assert [len(p) for p in fact_blocks(small, 1)] == [1, 2, 2, 1]  # one order a block
    assert len(list(fact_blocks(generated_core, 333))) > 50


def test_block_bounds_by_hand() -> None:
    order = np.array([0, 0, 0, 1, 2, 2, 3, 3, 3, 3, 4])
    assert order_block_bounds(order, 1) == [(0, 3), (3, 4), (4, 6), (6, 10), (10, 11)]
    assert order_block_bounds(order, 4) == [(0, 4), (4, 10), (10, 11)]
    assert order_block_bounds(order, 5) == [(0, 6), (6, 10), (10, 11)]  # the first order ends after 5, 10
    assert order_block_bounds(order, 11) == [(0, 11)]
    assert order_block_bounds(np.array([], dtype=np.intp), 5) == [(0, 0)]
    with pytest.raises(ValueError, match="at least 1"):
        order_block_bounds(order, 0)


# --- the spill file, written block by block ----------------------------------------------------


def _row_groups(path: Path) -> list[int]:
    meta = pq.read_metadata(path)
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


@pytest.mark.parametrize("lines", [300, 1_000, 7_000, 10**9])
def test_the_file_written_in_blocks_has_one_row_group_a_block_and_the_whole_frames_contents(
    generated_core: dict[str, pd.DataFrame], tmp_path: Path, lines: int
) -> None:
    parts = list(fact_blocks(generated_core, lines))
    whole = pd.concat(parts, ignore_index=True)
    expected = write_parquet(whole, FACT_ORDER_LINES, tmp_path / "whole.parquet")
    sink = FactSpill(FACT_ORDER_LINES, tmp_path / "spill")
    for part in parts:
        sink.append(part)
    spilled = sink.finish()
    assert isinstance(spilled, fact_spill.SpilledTable) and spilled.rows == len(whole)
    # one row group a block (whole orders), nothing buffered across blocks
    assert _row_groups(spilled.path) == [len(p) for p in parts]
    # the whole frame's file but for the row groups: schema (pandas metadata too), rows, values
    ours, theirs = pq.read_table(spilled.path), pq.read_table(expected)
    assert ours.schema.equals(theirs.schema, check_metadata=True) and ours.equals(theirs)
    pd.testing.assert_frame_equal(spilled.read(), whole, check_exact=True)
    if len(parts) == 1:  # one block: the whole frame's file, byte for byte
        assert spilled.path.read_bytes() == expected.read_bytes()
    else:
        assert len(parts) > 2


def test_an_empty_fact_spills_the_empty_frames_file(tmp_path: Path) -> None:
    core = _one_order()
    core["order_items"] = core["order_items"].iloc[:0]
    sink = FactSpill(FACT_ORDER_LINES, tmp_path / "spill")
    build.build_reports(core, ReportParams(as_of=date(2024, 4, 1)), fact_sink=sink)
    spilled = sink.finish()
    assert isinstance(spilled, fact_spill.SpilledTable) and spilled.rows == 0
    frame = conform(build_fact_order_lines(core), FACT_ORDER_LINES)
    assert (
        spilled.path.read_bytes()
        == write_parquet(frame, FACT_ORDER_LINES, tmp_path / "e.parquet").read_bytes()
    )


def test_a_fact_under_keep_below_stays_a_frame_and_over_it_is_written(
    generated_core: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    whole = conform(build_fact_order_lines(generated_core), FACT_ORDER_LINES)
    kept = FactSpill(FACT_ORDER_LINES, tmp_path / "kept", keep_below=len(whole) + 1)
    tables = build.build_reports(generated_core, fact_sink=kept, block_lines=3_000)
    assert "fact_order_lines" not in tables and not kept.spilling
    frame = kept.finish()
    assert isinstance(frame, pd.DataFrame)
    pd.testing.assert_frame_equal(frame, whole, check_exact=True)
    assert not (tmp_path / "kept").exists()

    over = FactSpill(FACT_ORDER_LINES, tmp_path / "over", keep_below=5_000)
    build.build_reports(generated_core, fact_sink=over, block_lines=3_000)
    spilled = over.finish()
    assert isinstance(spilled, fact_spill.SpilledTable)
    sizes = _row_groups(spilled.path)  # the blocks held under keep_below are written one by one
    assert sum(sizes) == len(whole) and len(sizes) == len(list(fact_blocks(generated_core, 3_000)))
    pd.testing.assert_frame_equal(spilled.read(), whole, check_exact=True)


def test_a_failed_build_leaves_no_partial_file(
    generated_core: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = FactSpill(FACT_ORDER_LINES, tmp_path / "spill")

    def failing(ctx: Any) -> Any:
        raise RuntimeError("a builder failed")

    monkeypatch.setattr(summaries, "build_customer_summary", failing)
    with pytest.raises(RuntimeError, match="a builder failed"):
        try:
            build.build_reports(generated_core, fact_sink=sink, block_lines=2_000)
        finally:
            assert sink.tmp.exists()  # row groups were written while the blocks were built
            sink.abort()
    assert not sink.tmp.exists() and not sink.path.exists()


# --- the report step of a run ------------------------------------------------------------------


def test_no_frame_of_the_whole_fact_is_alive_after_the_report_step(
    sample_company: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Census of the live frames when the report step has returned: blocks only while built."""
    monkeypatch.setattr(build, "FACT_BLOCK_LINES", 2_000)
    blocks: list[weakref.ref[pd.DataFrame]] = []
    seen: dict[str, Any] = {}
    real_append = FactSpill.append

    def append(self: FactSpill, block: pd.DataFrame) -> None:
        blocks.append(weakref.ref(block))
        real_append(self, block)

    real_spill_fact = pipeline.spill_fact

    def census(ctx: Any, frames: dict[str, pd.DataFrame], sink: FactSpill) -> Any:
        result = real_spill_fact(ctx, frames, sink)
        alive = live_objects()
        seen["alive_blocks"] = sum(ref() is not None for ref in blocks)
        seen["fact_frames"] = [
            len(f)
            for f in alive
            if isinstance(f, pd.DataFrame) and {"net_sales", "geography_key", "line_number"} <= set(f.columns)
        ]
        seen["spilled"] = result.spilled["fact_order_lines"]
        return result

    monkeypatch.setattr(FactSpill, "append", append)
    monkeypatch.setattr(pipeline, "spill_fact", census)
    params = PipelineParams(
        source=sample_company,
        profile="canonical",
        warehouse_url=f"sqlite:///{tmp_path / 'wh.db'}",
        out_dir=tmp_path / "out",
        steps=("ingest", "reports"),  # type: ignore[arg-type]
    )
    summary = pipeline.run_pipeline(params)
    assert summary.status in ("succeeded", "succeeded_with_warnings")
    assert len(blocks) >= 10 and seen["alive_blocks"] == 0
    assert seen["fact_frames"] == []  # no fact frame alive: not whole, not a block
    assert seen["spilled"].rows == 20_000 and "spill" in summary.timings


# --- what the build holds per line: a census ---------------------------------------------------


def _core_buffers(core: dict[str, pd.DataFrame]) -> list[np.ndarray | pa.Array]:
    """Return the numpy arrays and Arrow chunks holding ``core``'s columns."""
    out: list[np.ndarray | pa.Array] = []
    for frame in core.values():
        for block in frame._mgr.blocks:  # the frame's own storage (a column taken may be a copy)
            values = block.values
            if isinstance(values, np.ndarray):
                out.append(values)
                continue
            for part in vars(values).values():  # an extension array's parts: numpy data, mask, Arrow
                if isinstance(part, np.ndarray):
                    out.append(part)
                elif isinstance(part, pa.ChunkedArray):
                    out.extend(part.chunks)
    return out


def _shares(a: np.ndarray | pa.Array | pa.ChunkedArray, core: list[np.ndarray | pa.Array]) -> bool:
    """Return whether ``a`` is (a view of) one of ``core``'s buffers."""
    if isinstance(a, np.ndarray):
        return any(isinstance(c, np.ndarray) and np.may_share_memory(a, c) for c in core)
    chunks = a.chunks if isinstance(a, pa.ChunkedArray) else [a]
    addresses = {b.address for c in core if isinstance(c, pa.Array) for b in c.buffers() if b is not None}
    return all(b is None or b.address in addresses for chunk in chunks for b in chunk.buffers())


def _per_line_census(core: dict[str, pd.DataFrame], n: int) -> list[str]:
    """Return every live object of at least ``n`` rows (a frame, a column, an array) not core's."""
    alive = live_objects()
    core_frames_ids = {id(f) for f in core.values()}
    buffers = _core_buffers(core)
    found: list[str] = []
    seen: set[int] = set()
    for obj in alive:
        candidates = [obj, *gc.get_referents(obj)]
        for c in candidates:
            if id(c) in seen:
                continue
            seen.add(id(c))
            if isinstance(c, pd.RangeIndex):  # no memory per row
                continue
            if isinstance(c, pd.DataFrame | pd.Series | pd.Index):
                big = len(c) >= n and id(c) not in core_frames_ids
            elif isinstance(c, np.ndarray):
                big = c.size >= n and not _shares(c, buffers)
            elif isinstance(c, pa.Array | pa.ChunkedArray):
                big = len(c) >= n and not _shares(c, buffers)
            else:
                continue
            if big:
                found.append(f"{type(c).__name__} {getattr(c, 'dtype', getattr(c, 'type', ''))} of {len(c)}")
    return found


def test_no_per_line_array_is_alive_when_the_report_builders_run(
    generated_core: dict[str, pd.DataFrame],
) -> None:
    """Census of what the build holds as long as the fact, blocks of 2,000 lines out of 20,000.

    While the blocks are built: the two sort arrays of ``fact_line_rows`` (the census sees
    arrays); once they are: nothing per line but core's frames (and one block while it is built),
    when the context is made and when the last builder runs.
    """
    core = generated_core
    n = build_fact_order_lines(core).shape[0]
    assert n == len(core["order_items"]) == 20_000
    seen: dict[str, list[str]] = {}

    class Sink:
        def append(self, block: pd.DataFrame) -> None:
            assert len(block) < n
            if "blocks" not in seen:
                seen["blocks"] = _per_line_census(core, n)

    def last_builder(ctx: Any) -> dict[str, pd.DataFrame]:
        seen["end"] = _per_line_census(core, n)
        return build.full_monthly_tables(ctx)

    tables = build.build_reports(
        core,
        fact_sink=Sink(),
        block_lines=2_000,
        monthly_tables=last_builder,
        on_context=lambda ctx: seen.setdefault("context", _per_line_census(core, n)),
    )
    assert sorted(seen["blocks"]) == [f"ndarray int32 of {n}"] * 2  # fact_line_rows, int32
    assert seen["context"] == [] and seen["end"] == []
    assert len(tables["product_summary"]) == len(core["products"])
