"""Benchmark: the report tables built in pandas vs inside PostgreSQL (``reports_in="warehouse"``).

Usage: ``SALESBI_BENCH_PG_URL=postgresql+psycopg://... python bench/pushdown.py [LINES ...]``
(default 100000 1000000). For each size: generates a company, ingests it into the (emptied)
PostgreSQL warehouse, then times, alternated and repeated (best of ``--repeat``, default 2):

* ``read core + pandas``: what ``salesbi report`` does today (read the seven core tables, build);
* ``push-down``: :func:`build_reports_in_warehouse` reading only what it needs;
* ``pandas (frames held)``: ``build_reports`` alone, as in a ``salesbi run`` holding the frames;
* ``push-down (frames held)``: the same with the run's small core frames passed in.

Prints a Markdown table and the load average (the machine may be shared). Drops the schemas.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from salesbi import contract
from salesbi.generate import generate_company
from salesbi.params import PipelineParams
from salesbi.pipeline import run_pipeline
from salesbi.reports.build import ReportParams, build_reports
from salesbi.reports.sql.build import build_reports_in_warehouse
from salesbi.types import conform
from salesbi.warehouse.ddl import warehouse_metadata
from salesbi.warehouse.engine import SCHEMAS, create_engine
from salesbi.warehouse.load import read_table


def _drop(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for schema in SCHEMAS:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench(url: str, lines: int, repeat: int) -> dict[str, float]:
    """Return the seconds of each way of building the reports on ``lines`` generated order lines."""
    _drop(url)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        generate_company(src, order_lines=lines, seed=7)
        t0 = time.perf_counter()
        run_pipeline(PipelineParams(source=src, warehouse_url=url, out_dir=out, steps=("ingest",)))
        ingest = time.perf_counter() - t0
    engine = create_engine(url)
    metadata = warehouse_metadata()
    params = ReportParams()

    def read_core() -> dict[str, pd.DataFrame]:
        with engine.connect() as conn:
            return {
                s.name: conform(read_table(conn, metadata.tables[f"core.{s.name}"]), s)
                for s in contract.TABLES
            }

    core = read_core()
    runs: dict[str, Callable[[], object]] = {
        "read core + pandas": lambda: build_reports(read_core(), params),
        "push-down": lambda: build_reports_in_warehouse(engine, metadata, params),
        "pandas (frames held)": lambda: build_reports(core, params),
        "push-down (frames held)": lambda: build_reports_in_warehouse(engine, metadata, params, core=core),
    }
    result = {"ingest": ingest}
    for _ in range(repeat):  # alternated: one of each, then again; the best of each is kept
        for name, fn in runs.items():
            result[name] = min(result.get(name, float("inf")), _best(fn, 1))
    engine.dispose()
    _drop(url)
    return result


def main(argv: list[str]) -> None:
    """Run the benchmark for the sizes in ``argv`` and print a Markdown table."""
    url = os.environ["SALESBI_BENCH_PG_URL"]
    sizes = [int(a) for a in argv] or [100_000, 1_000_000]
    rows = []
    for lines in sizes:
        load_before = os.getloadavg()[0]
        r = bench(url, lines, repeat=2)
        rows.append((lines, load_before, os.getloadavg()[0], r))
    print(
        "| order lines | load avg (start → end) | read core + pandas | push-down | pandas, frames held "
        "| push-down, frames held |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for lines, before, after, r in rows:
        print(
            f"| {lines:,} | {before:.1f} → {after:.1f} | {r['read core + pandas']:.2f} s "
            f"| {r['push-down']:.2f} s | {r['pandas (frames held)']:.2f} s "
            f"| {r['push-down (frames held)']:.2f} s |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
