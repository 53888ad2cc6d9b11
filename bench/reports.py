"""Benchmark: the report build on generated order lines, against DuckDB computing the same tables.

Usage: ``python bench/reports.py [LINES ...]`` (default 1000000 10000000).  Prints a Markdown table:
seconds of the full ``build_reports``, seconds of the three compared tables (customer_summary,
product_summary, sales_monthly, fact included) vs DuckDB computing them from the same core frames,
and peak RSS of the process. Both sides are timed warm (one untimed run each first, DuckDB
imported) and alternated three times (medians); DuckDB joins the order lines once into a temporary
table that its three queries aggregate, as the pandas side builds its fact table once.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import psutil

from salesbi import contract
from salesbi.reports import monthly, summaries
from salesbi.reports.build import ReportParams, build_reports
from salesbi.reports.context import build_context
from salesbi.reports.fact import FACT_ORDER_LINES, build_fact_order_lines
from salesbi.types import conform


def synth_core(lines: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Return canonical core frames with about ``lines`` order lines (5 lines per order on average)."""
    rng = np.random.default_rng(seed)
    n_orders = max(1, lines // 5)
    n_cust = max(10, lines // 100)
    n_prod, n_emp, n_off = 500, 60, 7
    offices = pd.DataFrame(
        {
            "office_id": [f"O{i}" for i in range(n_off)],
            "city": [f"City{i}" for i in range(n_off)],
            "country": "X",
        }
    )
    employees = pd.DataFrame(
        {
            "employee_id": [f"E{i}" for i in range(n_emp)],
            "first_name": "F",
            "last_name": [f"L{i}" for i in range(n_emp)],
            "office_id": [f"O{i % n_off}" for i in range(n_emp)],
        }
    )
    countries = np.array([f"Country{i}" for i in range(25)])
    customers = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n_cust)],
            "customer_name": [f"Customer {i}" for i in range(n_cust)],
            "city": [f"Town{i % 400}" for i in range(n_cust)],
            "country": countries[np.arange(n_cust) % 25],
            "sales_rep_id": [f"E{i % n_emp}" for i in range(n_cust)],
        }
    )
    lines_ = pd.DataFrame(
        {"product_line_id": [f"L{i}" for i in range(7)], "name": [f"Line {i}" for i in range(7)]}
    )
    products = pd.DataFrame(
        {
            "product_id": [f"P{i}" for i in range(n_prod)],
            "product_name": [f"Product {i}" for i in range(n_prod)],
            "product_line_id": [f"L{i % 7}" for i in range(n_prod)],
            "unit_cost": rng.uniform(5, 100, n_prod).round(2),
        }
    )
    days = pd.Timestamp("2021-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 3 * 365, n_orders)), unit="D")
    statuses = np.where(rng.random(n_orders) < 0.02, "cancelled", "shipped")
    orders = pd.DataFrame(
        {
            "order_id": np.char.add("SO", np.arange(n_orders).astype(str)),
            "customer_id": np.char.add("C", rng.integers(0, n_cust, n_orders).astype(str)),
            "order_date": days,
            "status": statuses,
        }
    )
    per_order = np.full(n_orders, lines // n_orders)
    per_order[: lines - per_order.sum()] += 1
    order_idx = np.repeat(np.arange(n_orders), per_order)
    line_no = np.arange(len(order_idx)) - np.repeat(np.cumsum(per_order) - per_order, per_order) + 1
    prod = rng.integers(0, n_prod, len(order_idx))
    items = pd.DataFrame(
        {
            "order_id": orders["order_id"].to_numpy()[order_idx],
            "line_number": line_no,
            "product_id": np.char.add("P", prod.astype(str)),
            "quantity": rng.integers(1, 50, len(order_idx)),
            "unit_price": (
                products["unit_cost"].to_numpy()[prod] * rng.uniform(1.1, 1.8, len(order_idx))
            ).round(2),
            "discount": 0.0,
        }
    )
    raw = {
        "offices": offices,
        "employees": employees,
        "customers": customers,
        "product_lines": lines_,
        "products": products,
        "orders": orders,
        "order_items": items,
    }
    core = {}
    for t in contract.TABLES:
        f = raw[t.name]
        for c in t.columns:
            if c.name not in f.columns:
                f[c.name] = np.nan if c.kind in ("money", "fraction", "float") else None
        core[t.name] = conform(f, t)
    return core


#: the joined, non-cancelled order lines with their amounts, built once and shared by the three
#: report queries (the pandas side builds its fact table once too: same work, same result)
DUCK_LINES = """
    CREATE OR REPLACE TEMP TABLE lines AS
    SELECT o.order_id, o.customer_id, o.order_date, i.product_id, i.quantity,
           round(i.quantity * i.unit_price * (1 - coalesce(i.discount, 0)), 2) AS net,
           round(i.quantity * p.unit_cost, 2) AS cost
    FROM order_items i JOIN orders o USING (order_id) JOIN products p USING (product_id)
    WHERE o.status <> 'cancelled'"""

DUCK_SQL = {
    "customer_summary": """
        SELECT customer_id, count(DISTINCT order_id) orders, sum(quantity) units,
               sum(net) net_sales, sum(net - cost) gross_profit,
               min(order_date) first_order, max(order_date) last_order
        FROM lines GROUP BY customer_id""",
    "product_summary": """
        SELECT product_id, count(DISTINCT order_id) orders, count(DISTINCT customer_id) customers,
               sum(quantity) units, sum(net) net_sales, sum(cost) cost
        FROM lines GROUP BY product_id""",
    "sales_monthly": """
        SELECT date_trunc('month', order_date) m, count(DISTINCT order_id) orders,
               count(DISTINCT customer_id) active_customers, sum(net) net_sales
        FROM lines GROUP BY 1 ORDER BY 1""",
}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Return (seconds, result) of ``fn()``."""
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def ours_three(core: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Return the three compared tables built the salesbi way (fact and context included)."""
    fact = conform(build_fact_order_lines(core), FACT_ORDER_LINES)
    ctx = build_context(core, fact, ReportParams())
    return {
        "customer_summary": summaries.build_customer_summary(ctx),
        "product_summary": summaries.build_product_summary(ctx),
        "sales_monthly": monthly.build_sales_monthly(ctx),
    }


def duck_three(core: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Return the three tables computed by DuckDB from the same core frames (the join done once)."""
    import duckdb

    con = duckdb.connect()
    for name in ("orders", "order_items", "products"):
        con.register(name, core[name])
    con.execute(DUCK_LINES)
    out = {name: con.execute(sql).df() for name, sql in DUCK_SQL.items()}
    con.close()
    return out


def run(lines: int, repeat: int = 3) -> dict[str, Any]:
    """Return the benchmark figures (medians) for ``lines`` generated order lines.

    Both sides are warm (imports done, one untimed run each first) and alternated ``repeat``
    times, so neither pays for first-time costs or profits from the other's cache.
    """
    core = synth_core(lines)
    n = len(core["order_items"])
    duck = duck_three(core)  # warm-up: imports DuckDB, first scans of the frames
    ours = ours_three(core)
    assert (
        abs(ours["customer_summary"]["net_sales"].sum() - duck["customer_summary"]["net_sales"].sum()) < 1.0
    )
    del ours, duck
    t_duck, t_three = [], []
    for _ in range(repeat):
        t_duck.append(timed(lambda: duck_three(core))[0])
        t_three.append(timed(lambda: ours_three(core))[0])
    t_full, full = timed(lambda: build_reports(core))
    del full
    rss = psutil.Process().memory_info()
    peak = getattr(rss, "peak_wset", None) or _peak_rss_bytes()
    return {
        "lines": n,
        "full": t_full,
        "three": statistics.median(t_three),
        "duck": statistics.median(t_duck),
        "peak_gb": peak / 1e9,
    }


def _peak_rss_bytes() -> float:
    """Return the peak resident set size of this process in bytes (Linux/macOS)."""
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(kb if sys.platform == "darwin" else kb * 1024)


def main(argv: list[str]) -> None:
    """Run the benchmark for each size in ``argv`` and print a Markdown table."""
    sizes = [int(a) for a in argv] or [1_000_000, 10_000_000]
    print("| order lines | build_reports s | 3 tables s | DuckDB 3 tables s | ratio | peak RSS GB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in sizes:
        r = run(size)
        print(
            f"| {r['lines']:,} | {r['full']:.1f} | {r['three']:.1f} | {r['duck']:.1f} | "
            f"{r['three'] / r['duck']:.2f}× | {r['peak_gb']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
