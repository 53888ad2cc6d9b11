"""Benchmark: publishing the report layer, against the same dialect's raw bulk floor.

    .venv/bin/python bench/publish.py --parquet OUT/powerbi/data [--pg-url URL] [--repeat 3]

Input: the Parquet folder of an earlier ``salesbi run`` (every ``rpt`` table of one run), read
into frames once, not timed. Then, per warehouse (SQLite in a temporary folder; PostgreSQL when
``--pg-url`` names an empty database the benchmark may fill), alternated ``--repeat`` times:

* **publish** — :func:`salesbi.publish.publish`: Parquet staged aside, journal, one warehouse
  transaction replacing every ``rpt`` table (the dialect's bulk path), the swap;
* **warehouse part** — :func:`salesbi.publish.replace_tables` alone (the same transaction);
* **floor** — the least work that leaves the same rows in tables with the same primary keys:
  the ``sqlite3`` shell's ``.import`` / ``psql``'s ``\\copy`` of CSV files of the same frames
  (written beforehand, not timed), plus ``pyarrow.parquet.write_table`` of the same tables.

Prints the medians as a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from salesbi.rpt import rpt_tables  # noqa: E402
from salesbi.schema import Table  # noqa: E402
from salesbi.types import to_arrow  # noqa: E402


def read_frames(folder: Path) -> dict[str, pd.DataFrame]:
    """Return the frame of every rpt table with a Parquet file in ``folder``."""
    out: dict[str, pd.DataFrame] = {}
    for spec in rpt_tables():
        path = folder / f"{spec.name}.parquet"
        if path.is_file():
            out[spec.name] = pq.read_table(path).to_pandas()
    return out


def floor_ddl(spec: Table, dialect: sa.Dialect, schema: str | None) -> str:
    """Return CREATE TABLE for the floor: the rpt table's columns and types, its primary key, no more."""
    from sqlalchemy.schema import CreateTable

    from salesbi.warehouse.ddl import add_plain_table

    table = add_plain_table(sa.MetaData(), spec)
    table.schema = schema
    return str(CreateTable(table).compile(dialect=dialect)).strip() + ";"


def write_csvs(frames: dict[str, pd.DataFrame], folder: Path) -> dict[str, Path]:
    """Write each frame (conformed, as published) as a header-less CSV; return the paths."""
    from salesbi.rpt import rpt_table

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in frames.items():
        arrow = to_arrow(frame, rpt_table(name))
        path = folder / f"{name}.csv"
        pacsv.write_csv(arrow, path, write_options=pacsv.WriteOptions(include_header=False))
        paths[name] = path
    return paths


def timed(fn: Any) -> float:
    """Return the wall seconds of ``fn()``."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def sqlite_floor(csvs: dict[str, Path], work: Path) -> float:
    """Return the seconds of ``sqlite3 .import`` of the CSVs into keyed tables (one transaction)."""
    from sqlalchemy.dialects import sqlite

    from salesbi.rpt import rpt_table

    db = work / "floor.db"
    db.unlink(missing_ok=True)
    ddl = [floor_ddl(rpt_table(n), sqlite.dialect(), None) for n in csvs]
    script = [f".open {db}", ".mode csv", *ddl, "BEGIN;"]
    script += [f'.import "{p}" "{n}"' for n, p in csvs.items()]
    script += ["COMMIT;", ".quit"]
    seconds = timed(lambda: subprocess.run(["sqlite3"], input="\n".join(script), text=True, check=True))
    db.unlink(missing_ok=True)
    return seconds


def pg_floor(csvs: dict[str, Path], url: str) -> float:
    """Return the seconds of ``psql \\copy`` of the CSVs into keyed tables of a scratch schema."""
    from sqlalchemy.dialects import postgresql

    from salesbi.rpt import rpt_table

    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    ddl = [floor_ddl(rpt_table(n), postgresql.dialect(), "floor") for n in csvs]
    setup = "DROP SCHEMA IF EXISTS floor CASCADE; CREATE SCHEMA floor;\n" + "\n".join(ddl)
    subprocess.run(["psql", "-q", dsn], input=setup, text=True, check=True, capture_output=True)
    copies = [
        "BEGIN;",
        *(f"\\copy floor.{n} FROM '{p}' WITH (FORMAT csv)" for n, p in csvs.items()),
        "COMMIT;",
    ]
    seconds = timed(
        lambda: subprocess.run(["psql", "-q", dsn], input="\n".join(copies), text=True, check=True)
    )
    subprocess.run(["psql", "-q", dsn, "-c", "DROP SCHEMA floor CASCADE"], check=True, capture_output=True)
    return seconds


def parquet_floor(frames: dict[str, pd.DataFrame], folder: Path) -> float:
    """Return the seconds of writing each table's Parquet file once (the Arrow tables made beforehand)."""
    from salesbi.rpt import rpt_table

    arrow: dict[str, pa.Table] = {n: to_arrow(f, rpt_table(n)) for n, f in frames.items()}
    folder.mkdir(parents=True, exist_ok=True)

    def write() -> None:
        for n, t in arrow.items():
            pq.write_table(t, folder / f"{n}.parquet", compression="zstd")

    return timed(write)


def fresh_warehouse(url: str) -> tuple[sa.Engine, sa.MetaData]:
    """Return an engine and metadata of a warehouse whose rpt tables are empty (created if missing)."""
    from salesbi.ingest import prepare_warehouse
    from salesbi.warehouse.engine import create_engine

    engine = create_engine(url)
    md = prepare_warehouse(engine)
    return engine, md


def bench_dialect(
    label: str, url: str, frames: dict[str, pd.DataFrame], work: Path, repeat: int
) -> dict[str, Any]:
    """Return the median seconds of publish, its warehouse part and the floors on one warehouse."""
    from salesbi.publish import publish, replace_tables

    csvs = write_csvs(frames, work / "csv")
    engine, md = fresh_warehouse(url)
    definitions = [t for t in rpt_tables() if t.name in frames]
    times: dict[str, list[float]] = {"publish": [], "warehouse": [], "floor": [], "parquet_floor": []}
    folder = work / "out" / "data"
    for i in range(repeat):  # alternated, so a busy moment hits every figure alike
        times["publish"].append(
            timed(
                lambda i=i: publish(
                    engine, md, run_id=f"bench-{i}", frames=frames, definitions=definitions, folder=folder
                )
            )
        )
        times["warehouse"].append(timed(lambda: replace_tables(engine, md, frames, definitions)))
        times["floor"].append(sqlite_floor(csvs, work) if label == "sqlite" else pg_floor(csvs, url))
        times["parquet_floor"].append(parquet_floor(frames, work / "parquet-floor"))
    engine.dispose()
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = sum(len(f) for f in frames.values())
    return {
        "warehouse": label,
        "rows": rows,
        "publish_s": round(med["publish"], 2),
        "warehouse_part_s": round(med["warehouse"], 2),
        "bulk_floor_s": round(med["floor"], 2),
        "parquet_floor_s": round(med["parquet_floor"], 2),
        "ratio_publish_vs_floors": round(med["publish"] / (med["floor"] + med["parquet_floor"]), 2),
        "ratio_warehouse_vs_bulk_floor": round(med["warehouse"] / med["floor"], 2),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parquet", type=Path, required=True, help="a run's <out>/powerbi/data folder")
    parser.add_argument("--pg-url", default=None, help="an empty PostgreSQL database (SQLAlchemy URL)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if shutil.which("sqlite3") is None:
        raise SystemExit("the sqlite3 shell is needed for the floor (apt-get install sqlite3)")
    frames = read_frames(args.parquet)
    if not frames:
        raise SystemExit(f"no rpt Parquet files in {args.parquet}")
    results = []
    work = Path(tempfile.mkdtemp(prefix="salesbi-bench-publish-"))
    try:
        results.append(
            bench_dialect(
                "sqlite", f"sqlite:///{work}/sqlite/warehouse.db", frames, work / "sqlite", args.repeat
            )
        )
        if args.pg_url:
            if shutil.which("psql") is None:
                raise SystemExit("psql is needed for the PostgreSQL floor")
            results.append(bench_dialect("postgresql", args.pg_url, frames, work / "pg", args.repeat))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    keys = list(results[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---:|" * len(keys))
    for r in results:
        print("| " + " | ".join(f"{r[k]:,}" if isinstance(r[k], int) else str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
