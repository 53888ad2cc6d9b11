"""Benchmark: CPU seconds of the push-down steps (``--reports-in warehouse``) on an ingested warehouse.

    .venv/bin/python bench/pushdown_steps.py --warehouse sqlite:////tmp/me/wh.db [--repeat 2]
    .venv/bin/python /tmp/main/bench/pushdown_steps.py ...  # a copy in main's tree: main's code

Times, on one warehouse whose core holds the order lines (``salesbi ingest`` or a run first),
each statement group the report, model and publish steps run in warehouse mode, in this order:

* ``fact_build`` — the run's build table of the fact's lines (one ``INSERT … SELECT``;
  ``salesbi.reports.sql.fact_build``; absent from code without it);
* ``reports`` — ``build_reports_in_warehouse`` (every report table but the fact);
* ``model_inputs`` — the orders and first uses (segments, predictions) and the forecast's days;
* ``insights`` — the insights' aggregate of the fact;
* ``publish_fact`` — ``INSERT … SELECT`` into ``rpt.fact_order_lines`` and its Parquet file,
  in a transaction rolled back at the end (``rpt`` is left as it was).

For each, CPU seconds of this process (user + system: SQLite runs in it; PostgreSQL's server
processes are not counted, so the wall seconds are printed too) and wall seconds. With the
build table (code that has it) every later group reads it, without it each recomputes the
fact's joins from core. The build table is dropped at the end. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the code of the checkout the script is in (main's, copied there)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def timed(results: dict[str, list[tuple[float, float]]], name: str) -> Iterator[None]:
    """Append (CPU seconds, wall seconds) of the enclosed block to ``results[name]``."""
    cpu, wall = _cpu(), time.perf_counter()
    yield
    results.setdefault(name, []).append((_cpu() - cpu, time.perf_counter() - wall))


def one_pass(url: str, results: dict[str, list[tuple[float, float]]]) -> None:
    """Run every timed group once on the warehouse ``url``."""
    from salesbi.reports.fact import FACT_ORDER_LINES
    from salesbi.reports.params import ReportParams
    from salesbi.reports.sql import model_inputs, sqlite
    from salesbi.reports.sql.build import build_reports_in_warehouse
    from salesbi.reports.sql.fact_publish import export_parquet, fact_table, insert_fact
    from salesbi.warehouse.ddl import warehouse_metadata
    from salesbi.warehouse.engine import create_engine

    has_build = importlib.util.find_spec("salesbi.reports.sql.fact_build") is not None
    engine = create_engine(url)
    metadata = warehouse_metadata()
    lines: Any = None
    extra: dict[str, Any] = {}
    try:
        if has_build:
            from salesbi.reports.sql.fact_build import create_fact_build

            with timed(results, "fact_build"):
                lines = create_fact_build(engine, metadata, "bench-pushdown").table
            extra = {"fact": lines}
        with timed(results, "reports"):
            build_reports_in_warehouse(engine, metadata, ReportParams(), with_fact=False, **extra)
        args: tuple[Any, ...] = (lines,) if has_build else ()
        with timed(results, "model_inputs"), engine.connect() as conn:
            sqlite.bounded(conn)
            model_inputs.read_order_history(conn, metadata, *args)
            model_inputs.read_forecast_days(conn, metadata, *args)
        with timed(results, "insights"), engine.connect() as conn:
            sqlite.bounded(conn)
            model_inputs.read_insight_facts(conn, metadata, *args)
        with timed(results, "publish_fact"), engine.connect() as conn:
            sqlite.bounded(conn)
            with conn.begin() as transaction, tempfile.TemporaryDirectory() as tmp:
                table = fact_table(metadata)
                conn.execute(table.delete())
                insert_fact(conn, metadata, table, *args)
                export_parquet(conn, table, FACT_ORDER_LINES, Path(tmp) / "fact.parquet")
                transaction.rollback()
    finally:
        if has_build:
            from salesbi.reports.sql.fact_build import drop_fact_build

            drop_fact_build(engine, "bench-pushdown")
        engine.dispose()


def table(results: dict[str, list[tuple[float, float]]]) -> str:
    """Return the results as markdown: per group the median CPU and wall seconds."""

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[len(ordered) // 2]

    rows = ["| step | CPU s | wall s |", "| --- | ---: | ---: |"]
    total_cpu = total_wall = 0.0
    for name, runs in results.items():
        cpu, wall = median([r[0] for r in runs]), median([r[1] for r in runs])
        total_cpu, total_wall = total_cpu + cpu, total_wall + wall
        rows.append(f"| {name} | {cpu:.1f} | {wall:.1f} |")
    rows.append(f"| **total** | **{total_cpu:.1f}** | **{total_wall:.1f}** |")
    return "\n".join(rows)


def main(argv: list[str] | None = None, run: Callable[[str, dict[str, Any]], None] = one_pass) -> None:
    """Time the push-down groups ``--repeat`` times and print the medians."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", required=True, help="URL of a warehouse whose core holds the lines")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    results: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.repeat):
        run(args.warehouse, results)
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print(table(results))


if __name__ == "__main__":
    main()
