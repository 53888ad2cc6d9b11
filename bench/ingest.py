"""Benchmark: generated order lines → validated core (SQLite, or PostgreSQL), against a raw floor.

    .venv/bin/python bench/ingest.py [--lines 100000 1000000] [--keep DIR] [--pg-url URL]

For each size it generates a sample company (not timed), then times each step
of `salesbi ingest` on a fresh warehouse in a child process (read, validate,
load) and measures the child's peak RSS. The floor does the least work that
leaves the same rows in tables with the same primary keys, with the database's
own bulk loader and no Python: the `sqlite3` shell's `.import` of the same CSVs
(SQLite) or `psql`'s `\\copy` of them (PostgreSQL, with `--pg-url` naming a
database whose schemas the benchmark may drop), measured as a child process
(wall and peak RSS). Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _salesbi_child(source: str, url: str, queue: Any) -> None:
    from salesbi.ingest import load_step, prepare_warehouse, read_step, validate_step
    from salesbi.warehouse.engine import create_engine

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data = read_step(Path(source), "canonical")
    timings["read"] = time.perf_counter() - t0
    engine = create_engine(url)
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


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        return fh.readline().strip().split(",")


def psql_copy_script(source: Path, schema: str = "floor") -> str:
    """Return the psql script that copies every CSV into a table with the contract's primary key.

    Columns follow each file's header, typed like core (the same SQL types); one transaction.
    """
    from sqlalchemy.dialects import postgresql

    from salesbi import contract
    from salesbi.types import sql_type

    dialect = postgresql.dialect()
    lines = [f"DROP SCHEMA IF EXISTS {schema} CASCADE;", f"CREATE SCHEMA {schema};", "BEGIN;"]
    for spec in contract.TABLES:
        path = source / f"{spec.name}.csv"
        if not path.exists():
            continue
        header = _header(path)
        types = {c.name: str(sql_type(c).compile(dialect=dialect)) for c in spec.columns}
        cols = ", ".join(f'"{h}" {types.get(h, "TEXT")}' for h in header)
        key = ", ".join(f'"{k}"' for k in spec.key)
        lines.append(f'CREATE TABLE {schema}."{spec.name}" ({cols}, PRIMARY KEY ({key}));')
        names = ", ".join(f'"{h}"' for h in header)
        lines.append(
            f"\\copy {schema}.\"{spec.name}\" ({names}) FROM '{path}' WITH (FORMAT csv, HEADER true)"
        )
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def _libpq_url(url: str) -> str:
    import sqlalchemy as sa

    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def floor(source: Path, work: Path, pg_url: str | None) -> dict[str, Any]:
    """Return wall s and peak RSS MB of the database's own bulk import of the source CSVs."""
    from bench.pipeline import measured, sqlite_import_script

    if pg_url is None:
        db = work / "floor.db"
        result = measured(["sqlite3"], stdin=sqlite_import_script(source, db))
        db.unlink(missing_ok=True)
    else:
        result = measured(
            ["psql", "-q", "-v", "ON_ERROR_STOP=1", _libpq_url(pg_url)], stdin=psql_copy_script(source)
        )
        measured(["psql", "-q", _libpq_url(pg_url), "-c", "DROP SCHEMA floor CASCADE"])
    if result["exit_code"] != 0:
        raise SystemExit(f"the floor failed:\n{result['stderr']}")
    return result


def _drop_pg_schemas(url: str) -> None:
    import sqlalchemy as sa

    from salesbi.warehouse.engine import SCHEMAS

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for schema in SCHEMAS:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


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
    parser.add_argument("--pg-url", default=None, help="load into this PostgreSQL database instead of SQLite")
    args = parser.parse_args()
    from salesbi.generate import generate_company

    rows_out = []
    for n in args.lines:
        base = args.keep or Path(tempfile.mkdtemp(prefix="salesbi-bench-"))
        source = base / f"company-{n}"
        if not (source / "order_items.csv").exists():
            generate_company(source, order_lines=n, seed=1)
        work = Path(tempfile.mkdtemp(prefix="salesbi-bench-wh-"))
        if args.pg_url:
            _drop_pg_schemas(args.pg_url)
        url = args.pg_url or f"sqlite:///{work}/warehouse.db"
        ours = _in_child(_salesbi_child, str(source), url)
        raw = floor(source, work, args.pg_url)
        shutil.rmtree(work)
        if args.keep is None:
            shutil.rmtree(base)
        t = ours["timings"]
        rows_out.append(
            {
                "warehouse": "postgresql" if args.pg_url else "sqlite",
                "order_lines": n,
                "rows_all_tables": ours["rows"],
                "read_s": round(t["read"], 2),
                "validate_s": round(t["validate"], 2),
                "load_s": round(t["load"], 2),
                "total_s": round(t["total"], 2),
                "rows_per_s": round(ours["rows"] / t["total"]),
                "peak_rss_mb": round(ours["peak_rss_mb"]),
                "floor_s": round(raw["wall_s"], 2),
                "floor_rss_mb": round(raw["peak_rss_mb"]),
                "ratio_vs_floor": round(t["total"] / raw["wall_s"], 2),
                "ratio_load_only": round((t["read"] + t["load"]) / raw["wall_s"], 2),
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
