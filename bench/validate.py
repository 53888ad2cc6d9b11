"""Time ``validate_staged`` on a synthetic company with N order lines (default 1,000,000).

Usage: python bench/validate.py [ORDER_LINES] [--faults]

Uses ``salesbi.generate.generate_company`` + the reader when the generator is
available and ``--generated`` is passed; otherwise it synthesises typed frames
directly (no CSV round trip), so the number measured is validation alone.
With ``--faults`` about 0.1% of the lines carry a fault, to time the reject path.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from salesbi import contract
from salesbi.types import conform, pandas_dtype
from salesbi.validation.validate import StagedTableData, validate_staged


def _staged(name: str, data: Mapping[str, Any]) -> StagedTableData:
    spec = contract.table(name)
    raw = pd.DataFrame(data)
    for c in spec.columns:  # typed nulls for absent optional columns
        if c.name not in raw.columns:
            raw[c.name] = pd.Series(None, index=raw.index, dtype=pandas_dtype(c))
    frame = conform(raw, spec)
    n = len(frame)
    frame["_source_file"] = pd.Series(f"{name}.csv", index=frame.index, dtype="string")
    frame["_source_line"] = pd.Series(np.arange(2, n + 2), index=frame.index, dtype="Int64")
    return StagedTableData(table=spec, frame=frame)


def synthesise(order_lines: int, *, faults: bool = False, seed: int = 1) -> dict[str, StagedTableData]:
    """Return the seven staged tables of a synthetic company with ``order_lines`` lines."""
    rng = np.random.default_rng(seed)
    n_orders = max(order_lines // 10, 1)
    n_customers = max(n_orders // 20, 1)
    n_products = 500
    ids = lambda prefix, n: [f"{prefix}{i}" for i in range(1, n + 1)]  # noqa: E731
    offices = {"office_id": ids("O", 5), "city": ["Paris"] * 5, "country": ["France"] * 5}
    employees = {
        "employee_id": ids("E", 50),
        "first_name": ["Ann"] * 50,
        "last_name": ["Lee"] * 50,
        "office_id": [f"O{1 + i % 5}" for i in range(50)],
        "manager_id": [None] + ["E1"] * 49,
        "email": [f"e{i}@example.com" for i in range(50)],
    }
    customers = {
        "customer_id": ids("C", n_customers),
        "customer_name": [f"Customer {i}" for i in range(n_customers)],
        "city": ["Lyon"] * n_customers,
        "country": ["France"] * n_customers,
        "sales_rep_id": [f"E{2 + i % 49}" for i in range(n_customers)],
    }
    lines = {"product_line_id": ids("L", 7), "name": [f"Line {i}" for i in range(7)]}
    price = rng.uniform(5, 200, n_products).round(2)
    products = {
        "product_id": ids("P", n_products),
        "product_name": [f"Product {i}" for i in range(n_products)],
        "product_line_id": [f"L{1 + i % 7}" for i in range(n_products)],
        "unit_cost": (price * 0.6).round(2),
        "list_price": price,
    }
    order_dates = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 3000, n_orders), unit="D")
    orders = {
        "order_id": [str(10000 + i) for i in range(n_orders)],
        "customer_id": [f"C{c}" for c in rng.integers(1, n_customers + 1, n_orders)],
        "employee_id": [f"E{e}" for e in rng.integers(2, 51, n_orders)],
        "order_date": order_dates,
        "shipped_date": order_dates + pd.to_timedelta(3, unit="D"),
        "status": ["shipped"] * n_orders,
    }
    per_order = order_lines // n_orders
    order_idx = np.repeat(np.arange(n_orders), per_order)[:order_lines]
    items = {
        "order_id": pd.Series(10000 + order_idx).astype(str),
        "line_number": np.tile(np.arange(1, per_order + 1), n_orders)[:order_lines],
        "product_id": [f"P{p}" for p in rng.integers(1, n_products + 1, len(order_idx))],
        "quantity": rng.integers(1, 50, len(order_idx)),
        "unit_price": rng.uniform(5, 200, len(order_idx)).round(2),
        "discount": rng.choice([0.0, 0.05, 0.1], len(order_idx)),
    }
    if faults:
        bad = rng.choice(len(order_idx), max(len(order_idx) // 1000, 1), replace=False)
        items["quantity"][bad] = -1
    return {
        "offices": _staged("offices", offices),
        "employees": _staged("employees", employees),
        "customers": _staged("customers", customers),
        "product_lines": _staged("product_lines", lines),
        "products": _staged("products", products),
        "orders": _staged("orders", orders),
        "order_items": _staged("order_items", items),
    }


def main(argv: list[str]) -> None:
    """Print the validation time for the requested size."""
    args = [a for a in argv if not a.startswith("--")]
    n = int(args[0]) if args else 1_000_000
    t0 = time.perf_counter()
    from salesbi.validation.gxcontext import gx

    gx()
    t1 = time.perf_counter()
    tables = synthesise(n, faults="--faults" in argv)
    t2 = time.perf_counter()
    outcome = validate_staged(tables, run_id="bench", today=date(2026, 1, 1))
    t3 = time.perf_counter()
    rejected = sum(c.rejected for c in outcome.counts.values())
    print(f"order lines: {n}")
    print(f"import GX: {t1 - t0:.1f} s (once per process, not counted)")
    print(f"synthesise frames: {t2 - t1:.1f} s")
    print(
        f"validate_staged: {t3 - t2:.1f} s  "
        f"(rejected records: {rejected}, reasons: {len(outcome.rejected_rows)})"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
