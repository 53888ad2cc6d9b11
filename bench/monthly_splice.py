"""Benchmark: the monthly report tables spliced for a day-2 drop's affected months against built in full.

    .venv/bin/python bench/monthly_splice.py [--source DIR | --lines 1000000] [--rounds 5] [--moved 0]

Reads a company (``--source``, or one generated with ``--lines`` order lines), builds its report
context (day 1) and the full ``sales_monthly`` and ``customer_growth`` (the previous run's tables).
Day 2, in memory, as ``salesbi.generate.nextday`` makes it: 20 of the newest open orders change
status, 30 new orders dated the next day (copies of recent ones); ``--moved N`` also moves N random
orders by -6..+6 months. Then, alternated ``--rounds`` times in this one thread: the two tables
built in full from day 2's context, and spliced (``salesbi.incremental_reports.splice``); the
results are checked equal. Prints best and median CPU (thread) and wall seconds, as markdown.
Not timed: reading, the context (every report table needs it), the old state's SQL lookup.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from salesbi.incremental_reports import ChangedOrders, splice  # noqa: E402
from salesbi.reading.reader import core_frames, read_source  # noqa: E402
from salesbi.reports import monthly  # noqa: E402
from salesbi.reports.context import ReportContext, build_context  # noqa: E402
from salesbi.reports.fact import FACT_ORDER_LINES, build_fact_order_lines  # noqa: E402
from salesbi.reports.params import ReportParams  # noqa: E402
from salesbi.types import conform  # noqa: E402


def _ctx(core: dict[str, pd.DataFrame]) -> ReportContext:
    fact = conform(build_fact_order_lines(core), FACT_ORDER_LINES)
    return build_context(core, fact, ReportParams())


def _day2(
    core: dict[str, pd.DataFrame], moved: int, seed: int = 1
) -> tuple[dict[str, pd.DataFrame], set[str]]:
    """Return day 2's core (the next-day drop's changes applied) and the changed or new order ids."""
    rng = np.random.Generator(np.random.PCG64(seed))
    orders, items = core["orders"].copy(), core["order_items"].copy()
    day = orders["order_date"].max() + pd.Timedelta(days=1)
    open_ = orders[orders["status"] != "cancelled"].sort_values("order_date", kind="stable").tail(60)
    chosen = open_.sample(n=20, random_state=seed).index
    orders.loc[chosen, "status"] = np.where(orders.loc[chosen, "status"] == "shipped", "disputed", "shipped")
    changed = set(orders.loc[chosen, "order_id"].astype(str))
    if moved:
        picked = orders.index[rng.choice(len(orders), size=moved, replace=False)]
        shift = rng.integers(-6, 7, size=moved)
        first, last = orders["order_date"].min(), orders["order_date"].max()
        new_dates = [
            d + pd.DateOffset(months=int(k))
            for d, k in zip(orders.loc[picked, "order_date"], shift, strict=True)
        ]
        orders.loc[picked, "order_date"] = (
            pd.Series(new_dates, index=picked).clip(first, last).astype(orders["order_date"].dtype)
        )
        changed |= set(orders.loc[picked, "order_id"].astype(str))
    sources = orders.loc[rng.choice(open_.index.to_numpy(), size=30, replace=True)]
    new = sources.copy()
    new["order_id"] = [f"D2-{i:05d}" for i in range(len(new))]
    new["order_date"] = day
    new["status"] = "placed"
    lines = [
        items[items["order_id"] == old].assign(order_id=fresh)
        for old, fresh in zip(sources["order_id"], new["order_id"], strict=True)
    ]
    orders = pd.concat([orders, new], ignore_index=True)
    items = pd.concat([items, *lines], ignore_index=True)
    changed |= set(new["order_id"])
    return {**core, "orders": orders, "order_items": items}, changed


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.thread_time()
    out = fn()
    return time.thread_time() - cpu, time.perf_counter() - wall, out


def main() -> None:
    """Run the benchmark and print its markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--moved", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source
        if source is None:
            from salesbi.generate import generate_company

            source = Path(tmp) / "company"
            generate_company(source, order_lines=args.lines, seed=42)
        core = core_frames(read_source(source, "canonical"))
    before = _ctx(core)
    previous = {
        "sales_monthly": monthly.build_sales_monthly(before),
        "customer_growth": monthly.build_customer_growth(before),
    }
    core2, ids = _day2(core, args.moved)
    del core
    after = _ctx(core2)
    cols = ["order_id", "customer_id", "order_date", "is_cancelled"]
    changed = ChangedOrders(
        order_ids=frozenset(ids),
        previous=before.orders.loc[before.orders["order_id"].isin(ids), cols].reset_index(drop=True),
    )
    del before

    def full() -> dict[str, pd.DataFrame]:
        return {
            "sales_monthly": monthly.build_sales_monthly(after),
            "customer_growth": monthly.build_customer_growth(after),
        }

    results: dict[str, list[tuple[float, float]]] = {"full": [], "spliced": []}
    months: list[str] = []
    for _ in range(args.rounds):
        cpu, wall, built = _timed(full)
        results["full"].append((cpu, wall))
        cpu, wall, (tables, reason, months) = _timed(lambda: splice(after, changed, previous))
        results["spliced"].append((cpu, wall))
        assert reason is None, reason
        for name, frame in built.items():
            pd.testing.assert_frame_equal(tables[name], frame, check_exact=True)
    n_months = len(previous["sales_monthly"])
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{after.lines.rows:,} order lines, {len(after.orders):,} orders, {n_months} months; "
        f"{len(ids)} orders changed or new, {len(months)} months recomputed; load average {load}\n"
    )
    print("| sales_monthly + customer_growth | CPU best, s | CPU median, s | wall best, s | wall median, s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, rows in results.items():
        cpu_s, wall_s = [r[0] for r in rows], [r[1] for r in rows]
        print(
            f"| {name} | {min(cpu_s):.4f} | {statistics.median(cpu_s):.4f} | "
            f"{min(wall_s):.4f} | {statistics.median(wall_s):.4f} |"
        )


if __name__ == "__main__":
    main()
