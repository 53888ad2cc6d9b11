"""``generate_company``: write a deterministic sample company as the seven canonical CSVs.

Order of work: the small tables and every order header are drawn from one PCG64 generator seeded
with ``seed``; order lines are drawn block by block from per-block generators derived from the
same seed, and written chunk by chunk, so memory stays flat however many lines are requested.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from salesbi import contract
from salesbi.errors import ConfigurationError
from salesbi.generate import dimensions as dim
from salesbi.generate import lines as ln
from salesbi.generate import orders as od
from salesbi.generate import personas as ps
from salesbi.generate.calendar import Calendar
from salesbi.generate.truth import GROUND_TRUTH_DIR, TruthInputs, write_ground_truth
from salesbi.generate.writer import TableWriter, write_frame

GENERATOR_VERSION = "1.0"
DEFAULT_END = date(2025, 12, 31)
_EPOCH = date(1970, 1, 1)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`generate_company` wrote: rows per table, the date range and the file paths."""

    out: Path
    seed: int
    rows: dict[str, int]
    start: date  # first day of the generation window
    end: date  # last day of the generation window
    first_order_date: date
    last_order_date: date
    paths: dict[str, Path] = field(default_factory=dict)
    ground_truth: dict[str, Path] = field(default_factory=dict)

    def __str__(self) -> str:
        return (
            f"{self.rows['order_items']:,} order lines in {self.rows['orders']:,} orders, "
            f"{self.rows['customers']:,} customers, {self.rows['employees']:,} employees, "
            f"{self.rows['products']:,} products, orders {self.first_order_date} to {self.last_order_date} "
            f"(seed {self.seed})"
        )


def _check_arguments(out: Path, order_lines: int, seed: int, years: float, chunk_lines: int) -> None:
    """Raise ConfigurationError for arguments the generator cannot honour."""
    if isinstance(order_lines, bool) or not isinstance(order_lines, int) or order_lines < 1:
        raise ConfigurationError(
            f"order_lines must be a whole number ≥ 1, got {order_lines!r}",
            hint="pass e.g. --order-lines 100000",
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigurationError(f"seed must be a whole number ≥ 0, got {seed!r}", hint="pass e.g. --seed 42")
    if not (isinstance(years, int | float) and math.isfinite(years) and 28 / 365.25 <= years <= 50):
        raise ConfigurationError(
            f"years must be between 0.08 (four weeks) and 50, got {years!r}", hint="the default is 3 years"
        )
    if chunk_lines < 1:
        raise ConfigurationError(f"chunk_lines must be ≥ 1, got {chunk_lines!r}")
    if out.exists() and not out.is_dir():
        raise ConfigurationError(
            "the output path exists and is not a folder", file=out, hint="choose a folder for the seven CSVs"
        )


def generate_company(
    out: Path,
    order_lines: int = 100_000,
    seed: int = 42,
    *,
    start: date | None = None,
    years: float = 3.0,
    chunk_lines: int = 500_000,
    progress: Progress | None = None,
) -> GenerationSummary:
    """Write a sample company into ``out`` and return a :class:`GenerationSummary`.

    Writes ``offices.csv, employees.csv, customers.csv, product_lines.csv, products.csv,
    orders.csv, order_items.csv`` (contract header, UTF-8, ISO dates, empty = null) with exactly
    ``order_lines`` order lines, plus ``ground_truth/`` (personas, rep performance, margins,
    meta.json). The window is ``years`` long and ends on 2025-12-31 unless ``start`` is given.
    Same arguments → byte-identical files (``chunk_lines`` only changes memory use).
    ``progress(lines_written, order_lines)`` is called after each chunk.
    """
    out = Path(out)
    _check_arguments(out, order_lines, seed, years, chunk_lines)
    days = max(28, round(years * 365.25))
    if start is None:
        start = DEFAULT_END - timedelta(days=days - 1)
    calendar = Calendar(start=start, days=days)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))

    customers = dim.customer_count(order_lines)
    staff = dim.build_staff(rng, customers, start)
    catalogue = dim.build_catalogue(rng)
    clients = dim.build_clientele(rng, customers, days, staff, catalogue)
    plan = od.plan_orders(rng, calendar, clients, len(staff.rep_ids), order_lines)

    out.mkdir(parents=True, exist_ok=True)
    paths = {t.name: out / f"{t.name}.csv" for t in contract.TABLES}
    rows = {
        "offices": write_frame(paths["offices"], dim.offices_frame(), contract.OFFICES),
        "employees": write_frame(paths["employees"], staff.frame, contract.EMPLOYEES),
        "customers": write_frame(paths["customers"], clients.frame, contract.CUSTOMERS),
        "product_lines": write_frame(paths["product_lines"], catalogue.lines, contract.PRODUCT_LINES),
        "products": write_frame(paths["products"], catalogue.products, contract.PRODUCTS),
    }
    rows["orders"], rows["order_items"] = _write_orders(
        paths, seed, calendar, plan, staff, clients, catalogue, chunk_lines, order_lines, progress
    )

    first = start + timedelta(days=int(plan.day.min())) if plan.count else start
    last = start + timedelta(days=int(plan.day.max())) if plan.count else start
    meta = _meta(seed, order_lines, years, calendar, plan, rows, first, last)
    truth = TruthInputs(
        calendar=calendar,
        staff=staff,
        catalogue=catalogue,
        clients=clients,
        scale=plan.scale,
        expected_orders=plan.expected_orders,
        meta=meta,
    )
    ground_truth = write_ground_truth(out / GROUND_TRUTH_DIR, truth)
    return GenerationSummary(
        out=out,
        seed=seed,
        rows=rows,
        start=calendar.start,
        end=calendar.end,
        first_order_date=first,
        last_order_date=last,
        paths=paths,
        ground_truth=ground_truth,
    )


def _dates(calendar: Calendar, day: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Return a date32 array for day indices of the window (null where ``mask``)."""
    offset = (calendar.start - _EPOCH).days
    values = (day.astype("int64") + offset).astype("int32")
    return pa.array(values, type=pa.date32(), mask=mask)


def _orders_table(
    calendar: Calendar, plan: od.OrderPlan, o0: int, o1: int, ids: dict[str, pa.Array], width: int
) -> pa.Table:
    """Return the orders ``[o0, o1)`` as an Arrow table with the contract's columns."""
    numbers = pa.array(np.arange(o0 + 1, o1 + 1, dtype="int64")).cast(pa.string())
    order_id = pc.binary_join_element_wise("SO", pc.utf8_lpad(numbers, width, "0"), "")
    customer = pa.array(plan.customer[o0:o1])
    employee = plan.employee[o0:o1]
    day = plan.day[o0:o1]
    ship_lag = plan.ship_lag[o0:o1]
    return pa.table(
        {
            "order_id": order_id,
            "customer_id": ids["customer"].take(customer),
            "employee_id": ids["rep"].take(pa.array(employee, mask=employee < 0)),
            "order_date": _dates(calendar, day),
            "required_date": _dates(calendar, day + plan.required_lag[o0:o1]),
            "shipped_date": _dates(calendar, day + ship_lag, mask=ship_lag < 0),
            "status": ids["status"].take(pa.array(plan.status[o0:o1])),
            "ship_city": ids["city"].take(customer),
            "ship_country": ids["country"].take(customer),
        }
    )


def _items_table(block: ln.LineBlock, order_id: pa.Array, o0: int, ids: dict[str, pa.Array]) -> pa.Table:
    """Return order lines as an Arrow table; ``order_id`` holds the ids of the chunk's orders from ``o0``."""
    return pa.table(
        {
            "order_id": order_id.take(pa.array(block.order - o0)),
            "line_number": pa.array(block.line_number),
            "product_id": ids["product"].take(pa.array(block.product)),
            "quantity": pa.array(block.quantity),
            "unit_price": pa.array(block.unit_price),
            "discount": pa.array(block.discount),
        }
    )


def _write_orders(
    paths: dict[str, Path],
    seed: int,
    calendar: Calendar,
    plan: od.OrderPlan,
    staff: dim.Staff,
    clients: dim.Clientele,
    catalogue: dim.Catalogue,
    chunk_lines: int,
    order_lines: int,
    progress: Progress | None,
) -> tuple[int, int]:
    """Stream orders and order lines to their CSVs chunk by chunk; return (orders, order lines) written."""
    frame = clients.frame
    ids = {
        "customer": pa.array(frame["customer_id"].to_numpy(), pa.string()),
        "city": pa.array(frame["city"].to_numpy(), pa.string()),
        "country": pa.array(frame["country"].to_numpy(), pa.string()),
        "rep": pa.array(staff.rep_ids, pa.string()),
        "status": pa.array(contract.ORDER_STATUSES, pa.string()),
        "product": pa.array(catalogue.products["product_id"].to_numpy(), pa.string()),
    }
    width = max(8, len(str(plan.count)))
    sampler = ln.ProductSampler(catalogue)
    mean_lines = order_lines / max(plan.count, 1)
    blocks_per_chunk = max(1, int(chunk_lines // (ln.BLOCK_ORDERS * mean_lines)))
    blocks = -(-plan.count // ln.BLOCK_ORDERS)
    written = 0
    with (
        TableWriter(paths["orders"], contract.ORDERS) as orders_out,
        TableWriter(paths["order_items"], contract.ORDER_ITEMS) as items_out,
    ):
        for first_block in range(0, blocks, blocks_per_chunk):
            o0 = first_block * ln.BLOCK_ORDERS
            o1 = min(plan.count, (first_block + blocks_per_chunk) * ln.BLOCK_ORDERS)
            orders = _orders_table(calendar, plan, o0, o1, ids, width)
            orders_out.append(orders)
            for b in range(first_block, min(blocks, first_block + blocks_per_chunk)):
                b0 = b * ln.BLOCK_ORDERS
                b1 = min(plan.count, b0 + ln.BLOCK_ORDERS)
                block = ln.build_lines(ln.block_generator(seed, b), plan, b0, b1, clients, catalogue, sampler)
                items_out.append(_items_table(block, orders.column("order_id"), o0, ids))
                written += len(block.order)
            if progress is not None:
                progress(written, order_lines)
    return orders_out.rows, items_out.rows


def _meta(
    seed: int,
    order_lines: int,
    years: float,
    calendar: Calendar,
    plan: od.OrderPlan,
    rows: dict[str, int],
    first: date,
    last: date,
) -> dict[str, object]:
    """Return the meta.json content: arguments, seasonality and trend, personas, date range, version."""
    return {
        "generator": "salesbi.generate",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "arguments": {"order_lines": order_lines, "seed": seed, "years": years, "start": calendar.start},
        "date_range": {"start": calendar.start, "end": calendar.end, "days": calendar.days},
        "order_dates": {"first": first, "last": last},
        "rows": rows,
        **calendar.description(),
        "personas": {
            name: {
                "share": ps.MIX[i],
                "relative_orders_per_year": ps.RELATIVE_RATE[i],
                "value_factor": ps.VALUE_FACTOR[i],
                "mean_lines_per_order": 1 + ps.EXTRA_LINES[i],
            }
            for i, name in enumerate(ps.PERSONAS)
        },
        "orders_per_year_per_relative_rate": round(plan.scale, 9),
        "status_shares": {**od.STATUS_SHARES, "note": "orders that would ship after the end are 'placed'"},
        "no_employee_share": od.NO_EMPLOYEE_SHARE,
        "no_rep_customer_share": dim.NO_REP_SHARE,
        "discounts": dict(zip(map(str, ln.DISCOUNTS), ln.DISCOUNT_SHARES, strict=True)),
    }
