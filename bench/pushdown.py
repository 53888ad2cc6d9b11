"""Benchmark: the report tables built in pandas vs inside PostgreSQL (``reports_in="warehouse"``).

Usage: ``SALESBI_BENCH_PG_URL=postgresql+psycopg://... python bench/pushdown.py [LINES ...]``
(default 100000 1000000). For each size: generates a company, ingests it into the (emptied)
PostgreSQL warehouse, then runs each way of building the reports in its own process (so that
its peak RSS is its own), alternated and repeated (best wall of ``--repeat``, default 2):

* ``read core + pandas``: what ``salesbi report`` does with ``--reports-in python`` (read the
  seven core tables, build in pandas);
* ``pandas, frames held``: ``build_reports`` on core frames the process holds already (as a
  ``salesbi run`` that ingested them; reading them is not timed, their memory is counted);
* ``push-down``: :func:`build_reports_in_warehouse` as the pipeline calls it, the fact read
  back through ``COPY`` for publishing;
* ``push-down, no fact``: the same without reading the fact back (every other table).

Per way: wall seconds, the process's CPU seconds (user + sys), the PostgreSQL backend's CPU
seconds (``/proc/<backend pid>/stat`` of the process's connections: PostgreSQL runs on the
same machine; parallel workers are not counted) and the peak RSS of the process. Also times
``INSERT INTO … SELECT`` of the fact inside the database (what publishing the fact without
reading it back would cost) against reading it back. Prints Markdown tables and the load
average (the machine may be shared). Drops the schemas.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from salesbi.generate import generate_company
from salesbi.params import PipelineParams
from salesbi.pipeline import read_core, run_pipeline
from salesbi.reports.build import ReportParams, build_reports
from salesbi.reports.sql.build import build_reports_in_warehouse, read_report_table
from salesbi.reports.sql.selects import fact_order_lines_select
from salesbi.reports.tables import FACT_ORDER_LINES
from salesbi.warehouse.ddl import warehouse_metadata
from salesbi.warehouse.engine import SCHEMAS, create_engine

WAYS = ("read core + pandas", "pandas, frames held", "push-down", "push-down, no fact")


def _drop(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for schema in SCHEMAS:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


def _proc_cpu(pid: int) -> float:
    """Return the user + system CPU seconds of process ``pid`` (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb() -> float:
    """Return this process's peak RSS in MB (``VmHWM``: unlike ``ru_maxrss``, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_way(url: str, way: str) -> dict[str, float]:
    """Build the reports one ``way`` in this process; return wall, cpu, db_cpu and peak RSS (MB).

    ``read core + pandas`` reads core as the pipeline does (:func:`salesbi.pipeline.read_core`).
    """
    engine = create_engine(url)
    backends: list[int] = []
    sa.event.listen(engine, "connect", lambda dbapi, _rec: backends.append(dbapi.info.backend_pid))
    metadata = warehouse_metadata()
    params = ReportParams()

    held = read_core(engine, metadata) if way == "pandas, frames held" else {}
    db0 = sum(_proc_cpu(p) for p in backends)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    if way == "read core + pandas":
        build_reports(read_core(engine, metadata), params)
    elif way == "pandas, frames held":
        build_reports(held, params)
    else:
        build_reports_in_warehouse(engine, metadata, params, with_fact=way == "push-down")
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    db = sum(_proc_cpu(p) for p in backends) - db0
    engine.dispose()
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"wall": wall, "cpu": cpu, "db_cpu": db, "rss_mb": _peak_rss_mb()}


def fact_in_database(url: str) -> dict[str, float]:
    """Return seconds of reading the fact back (COPY → Arrow → frame) and of ``INSERT … SELECT``."""
    engine = create_engine(url)
    metadata = warehouse_metadata()
    select = fact_order_lines_select(metadata)
    with engine.connect() as conn:
        t0 = time.perf_counter()
        read_report_table(conn, select, FACT_ORDER_LINES)
        read = time.perf_counter() - t0
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE bench_fact AS SELECT * FROM rpt.fact_order_lines WHERE false"
        )
        sql = str(select.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        t0 = time.perf_counter()
        conn.exec_driver_sql(f"INSERT INTO bench_fact {sql}")
        insert = time.perf_counter() - t0
    engine.dispose()
    return {"read back": read, "INSERT … SELECT": insert}


def bench(url: str, lines: int, repeat: int) -> dict[str, dict[str, float]]:
    """Return the measures of each way of building the reports on ``lines`` generated order lines."""
    _drop(url)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        generate_company(src, order_lines=lines, seed=7)
        # ingest + the pandas reports once: publishing creates the rpt tables
        run_pipeline(PipelineParams(source=src, warehouse_url=url, out_dir=out, steps=("ingest", "reports")))
    result: dict[str, dict[str, float]] = {}
    for _ in range(repeat):  # alternated: one of each, then again; the best wall of each is kept
        for way in WAYS:
            child = subprocess.run(
                [sys.executable, __file__, "--way", way],
                env={**os.environ, "SALESBI_BENCH_PG_URL": url},
                capture_output=True,
                text=True,
                check=True,
            )
            got = json.loads(child.stdout.strip().splitlines()[-1])
            if way not in result or got["wall"] < result[way]["wall"]:
                result[way] = got
    result["fact"] = fact_in_database(url)
    _drop(url)
    return result


def main(argv: list[str]) -> None:
    """Run the benchmark for the sizes in ``argv`` and print Markdown tables."""
    url = os.environ["SALESBI_BENCH_PG_URL"]
    if argv[:1] == ["--way"]:
        print(json.dumps(run_way(url, argv[1])))
        return
    sizes = [int(a) for a in argv] or [100_000, 1_000_000]
    rows = []
    for lines in sizes:
        load_before = os.getloadavg()[0]
        r = bench(url, lines, repeat=2)
        rows.append((lines, load_before, os.getloadavg()[0], r))
    print(
        "| order lines | load avg (start → end) | way | wall | CPU (process) | CPU (PostgreSQL) | peak RSS |"
    )
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: |")
    for lines, before, after, r in rows:
        for way in WAYS:
            m = r[way]
            print(
                f"| {lines:,} | {before:.1f} → {after:.1f} | {way} | {m['wall']:.2f} s | {m['cpu']:.2f} s "
                f"| {m['db_cpu']:.2f} s | {m['rss_mb']:,.0f} MB |"
            )
    print()
    print("| order lines | fact read back (COPY → frame) | fact INSERT … SELECT in the database |")
    print("| ---: | ---: | ---: |")
    for lines, _, _, r in rows:
        print(f"| {lines:,} | {r['fact']['read back']:.2f} s | {r['fact']['INSERT … SELECT']:.2f} s |")


if __name__ == "__main__":
    main(sys.argv[1:])
