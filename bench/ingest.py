"""Benchmark: generated order lines → validated SQLite core, against a raw floor in the same run.

    .venv/bin/python bench/ingest.py [--lines 100000 1000000] [--keep DIR]

For each size it generates a sample company (not timed), then times each step
of `salesbi ingest` on a fresh SQLite warehouse in a child process (read,
validate, load) and measures the child's peak RSS. The reference floor does
the least work that produces the same core rows: pyarrow's CSV reader plus
plain sqlite3 `executemany` into tables with the same primary keys, also in a
child process. Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _salesbi_child(source: str, workdir: str, queue: Any) -> None:
    from salesbi.ingest import load_step, prepare_warehouse, read_step, validate_step
    from salesbi.warehouse.engine import create_engine

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data = read_step(Path(source), "canonical")
    timings["read"] = time.perf_counter() - t0
    engine = create_engine(f"sqlite:///{workdir}/warehouse.db")
    md = prepare_warehouse(engine)
    t1 = time.perf_counter()
    outcome = validate_step(data, run_id="bench")
    timings["validate"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    result = load_step(engine, md, data, outcome, run_id="bench")
    timings["load"] = time.perf_counter() - t2
    timings["total"] = time.perf_counter() - t0
    rows = sum(c.loaded for c in result.counts.values())
    queue.put({"timings": timings, "rows": rows, "peak_rss_mb": _peak_rss_mb()})


def _floor_child(source: str, workdir: str, queue: Any) -> None:
    import pyarrow.csv as pacsv
    import sqlalchemy as sa

    from salesbi import contract
    from salesbi.warehouse.ddl import add_core_table
    from salesbi.warehouse.load import iter_row_chunks

    t0 = time.perf_counter()
    conn = sqlite3.connect(f"{workdir}/floor.db", isolation_level=None)
    md = sa.MetaData()
    rows = 0
    conn.execute("BEGIN")
    for spec in contract.TABLES:
        table = add_core_table(md, spec)
        cols = ", ".join(f'"{c.name}" {"INTEGER" if c.kind == "int" else "TEXT"}' for c in spec.columns)
        conn.execute(f'CREATE TABLE "{spec.name}" ({cols}, PRIMARY KEY ({", ".join(spec.key)}))')
        arrow = pacsv.read_csv(
            Path(source) / f"{spec.name}.csv",
            convert_options=pacsv.ConvertOptions(
                column_types={c.name: "string" for c in spec.columns if c.kind in ("id", "text", "long_text")}
            ),
        )
        frame = arrow.to_pandas()
        marks = ", ".join("?" for _ in spec.columns)
        for chunk in iter_row_chunks(frame, table, 50_000):
            conn.executemany(f'INSERT INTO "{spec.name}" VALUES ({marks})', chunk)
        rows += len(frame)
    conn.execute("COMMIT")
    queue.put({"timings": {"total": time.perf_counter() - t0}, "rows": rows, "peak_rss_mb": _peak_rss_mb()})


def _in_child(target: Any, *args: str) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return dict(result)


def main() -> None:
    """Run the benchmark and print the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep generated data here (reused if present)"
    )
    args = parser.parse_args()
    from salesbi.generate import generate_company

    rows_out = []
    for n in args.lines:
        base = args.keep or Path(tempfile.mkdtemp(prefix="salesbi-bench-"))
        source = base / f"company-{n}"
        if not (source / "order_items.csv").exists():
            generate_company(source, order_lines=n, seed=1)
        work = Path(tempfile.mkdtemp(prefix="salesbi-bench-wh-"))
        ours = _in_child(_salesbi_child, str(source), str(work))
        floor = _in_child(_floor_child, str(source), str(work))
        shutil.rmtree(work)
        if args.keep is None:
            shutil.rmtree(base)
        t = ours["timings"]
        rows_out.append(
            {
                "order_lines": n,
                "rows_all_tables": ours["rows"],
                "read_s": round(t["read"], 2),
                "validate_s": round(t["validate"], 2),
                "load_s": round(t["load"], 2),
                "total_s": round(t["total"], 2),
                "rows_per_s": round(ours["rows"] / t["total"]),
                "peak_rss_mb": round(ours["peak_rss_mb"]),
                "floor_s": round(floor["timings"]["total"], 2),
                "floor_rss_mb": round(floor["peak_rss_mb"]),
                "ratio_vs_floor": round(t["total"] / floor["timings"]["total"], 2),
                "ratio_load_only": round((t["read"] + t["load"]) / floor["timings"]["total"], 2),
            }
        )
    print(json.dumps(rows_out, indent=2), file=sys.stderr)
    keys = list(rows_out[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---:|" * len(keys))
    for r in rows_out:
        print("| " + " | ".join(f"{r[k]:,}" if isinstance(r[k], int) else str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
