"""Benchmark: every step of ``salesbi run`` on generated order lines, beside raw floors in the same run.

    .venv/bin/python bench/pipeline.py [--lines 100000 1000000] [--repeat 1] [--keep DIR]
    .venv/bin/python bench/pipeline.py --sizes large --keep DIR   # 3M and 10M lines (long)
    .venv/bin/python bench/pipeline.py --sizes all --keep DIR     # 100k, 1M, 3M, 10M
    .venv/bin/python bench/pipeline.py --lines 1000000 --memory-only  # where the memory goes, per step

For each size a sample company is generated (seed 1, not timed, reused from ``--keep``). Then,
alternating in this order ``--repeat`` times, each in its own child process:

* **salesbi run** — the whole pipeline (``salesbi run``, every step, a fresh SQLite warehouse and
  output folder per repetition): wall seconds, CPU seconds (user + system), peak RSS (the child's
  ``ru_maxrss`` from ``os.wait4``) and the per-step seconds of ``run_summary.json`` ``timings``;
* **sqlite3 .import** — the raw load floor: the ``sqlite3`` shell imports the same CSVs into
  tables with the same columns and primary keys (one process, one transaction per file);
* **DuckDB reference** — DuckDB reads the same CSVs, runs the contract's ingest checks in SQL
  (keys unique, required values present, foreign keys found, allowed values) and computes the
  three main report tables (``customer_summary``, ``product_summary``, ``sales_monthly``: the SQL
  of bench/reports.py). DuckDB is imported and the whole reference run once untimed first
  (warm: imports, CSV files in the page cache), then timed.

The DuckDB reference does far less than the pipeline (no GX suite, no staging, no warehouse,
no models, no Parquet, no Power BI): it is the cost of reading and checking the data and of
the main aggregates, not a like-for-like figure. The floors are what the ingest and report
parts of a run cannot go below on this machine.

With ``--memory`` (or ``--memory-only``) one more run per size executes in-process in a spawned
child with a sampler thread (RSS every 50 ms, counted towards the peak of every step running:
the model steps run side by side, so their peaks are the process's RSS while they ran, one
shared figure, and the table marks the steps that overlapped) and, at each step's end, a
census of the live DataFrames, Arrow's memory pool and glibc's heap: the table says which step
holds or frees what. Its own wall time is not reported (the census costs time).

Results depend on the machine's load: the table states the 1-minute load average before
each size. Prints markdown for docs/benchmarks.md (and JSON on stderr). Needs DuckDB
(``bench/requirements.lock``; ``make bench`` installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import queue as queue_module
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: the issue's sizes: ``small`` runs in minutes; 10M lines take tens of minutes and ~8 GB
SIZES: dict[str, list[int]] = {
    "small": [100_000, 1_000_000],
    "large": [3_000_000, 10_000_000],
    "all": [100_000, 1_000_000, 3_000_000, 10_000_000],
}

STEP_ORDER = (
    "connect",
    "read",
    "validate",
    "validation_report",
    "load",
    "completeness",
    "read_core",
    "reports",
    "spill",
    "read_fact",
    "model_inputs",
    "segments",
    "predictions",
    "forecast",
    "insights",
    "publish",
    "powerbi",
)


def measured(cmd: list[str], cwd: Path | None = None, stdin: str | None = None) -> dict[str, Any]:
    """Return wall s, CPU s, peak RSS MB and exit code of ``cmd`` run as a child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if stdin is not None and proc.stdin is not None:
        proc.stdin.write(stdin)
        proc.stdin.close()
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall_s": time.perf_counter() - t0,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "exit_code": proc.returncode,
        "stderr": err[-2000:],
    }


def salesbi_run(source: Path, work: Path, reports_in: str = "python") -> dict[str, Any]:
    """Return the measurements of one ``salesbi run`` (every step) on a fresh warehouse."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cli = Path(sys.executable).parent / "salesbi"
    cmd = [
        str(cli),
        "run",
        "-s",
        str(source),
        "-w",
        f"sqlite:///{work}/warehouse.db",
        "-o",
        str(work / "out"),
        "--reports-in",
        reports_in,
    ]
    result = measured(cmd, cwd=work)
    if result["exit_code"] not in (0, 3):
        raise SystemExit(f"salesbi run failed ({result['exit_code']}):\n{result['stderr']}")
    summary = json.loads((work / "out" / "run_summary.json").read_text(encoding="utf-8"))
    result["timings"] = summary.get("timings", {})
    result["status"] = summary.get("status")
    return result


def _sql_type(kind: str) -> str:
    return {"int": "INTEGER", "money": "REAL", "fraction": "REAL", "float": "REAL"}.get(kind, "TEXT")


def sqlite_import_script(source: Path, db: Path) -> str:
    """Return the sqlite3 shell script importing every CSV into a table with the contract's keys.

    Columns follow each file's header (types from the contract); the primary key is the
    table's natural key, so the floor pays for the same uniqueness checks as core.
    """
    from salesbi import contract

    lines = [f".open {db}", ".mode csv"]
    for spec in contract.TABLES:
        path = source / f"{spec.name}.csv"
        if not path.exists():
            continue
        header = path.open(encoding="utf-8").readline().strip().split(",")
        kinds = {c.name: c.kind for c in spec.columns}
        cols = ", ".join(f'"{h}" {_sql_type(kinds.get(h, "text"))}' for h in header)
        key = ", ".join(f'"{k}"' for k in spec.key)
        lines.append(f'CREATE TABLE "{spec.name}" ({cols}, PRIMARY KEY ({key}));')
        lines.append(f'.import --skip 1 "{path}" "{spec.name}"')
    lines.append(".quit")
    return "\n".join(lines) + "\n"


def sqlite_floor(source: Path, work: Path) -> dict[str, Any]:
    """Return the measurements of ``sqlite3 .import`` of the source CSVs into keyed tables."""
    db = work / "floor.db"
    db.unlink(missing_ok=True)
    result = measured(["sqlite3"], stdin=sqlite_import_script(source, db))
    if result["exit_code"] != 0 or result["stderr"].strip():
        raise SystemExit(f"sqlite3 .import failed:\n{result['stderr']}")
    db.unlink(missing_ok=True)
    return result


def duckdb_statements(source: Path) -> list[tuple[str, str]]:
    """Return (label, SQL) of the DuckDB reference: load, ingest checks, three report tables."""
    from salesbi import contract

    sys.path.insert(0, str(ROOT / "bench"))
    from reports import DUCK_LINES, DUCK_SQL  # the report SQL of bench/reports.py

    out: list[tuple[str, str]] = []
    names = [t.name for t in contract.TABLES if (source / f"{t.name}.csv").exists()]
    for name in names:
        out.append(
            ("load", f"CREATE TABLE {name} AS SELECT * FROM read_csv('{source / name}.csv', header=true)")
        )
    for spec in contract.TABLES:
        if spec.name not in names:
            continue
        key = ", ".join(spec.key)
        out.append(("check", f"SELECT count(*) - count(DISTINCT ({key})) FROM {spec.name}"))
        for col in spec.required_columns:
            out.append(("check", f"SELECT count(*) FROM {spec.name} WHERE {col} IS NULL"))
        for col, parent, parent_col in spec.foreign_keys:
            if parent not in names:
                continue
            out.append(
                (
                    "check",
                    f"SELECT count(*) FROM {spec.name} c ANTI JOIN {parent} p ON c.{col} = p.{parent_col} "
                    f"WHERE c.{col} IS NOT NULL",
                )
            )
        for c in spec.columns:
            if c.allowed:
                values = ", ".join("'" + v.replace("'", "''") + "'" for v in c.allowed)
                out.append(
                    ("check", f"SELECT count(*) FROM {spec.name} WHERE lower({c.name}) NOT IN ({values})")
                )
    out.append(("reports", DUCK_LINES))  # the join once, shared by the three report tables
    for name, sql in DUCK_SQL.items():
        out.append(("reports", f"CREATE TABLE rpt_{name} AS {sql}"))
    return out


def _duckdb_child(source: str, queue: Any) -> None:
    import resource

    import duckdb

    statements = duckdb_statements(Path(source))

    def once() -> dict[str, float]:
        con = duckdb.connect()
        seconds: dict[str, float] = {}
        for label, sql in statements:
            t = time.perf_counter()
            con.execute(sql).fetchall()
            seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - t
        con.close()
        return seconds

    once()  # warm: imports, extension and CSV pages cached
    c0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    seconds = once()
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    queue.put({"wall_s": wall, "cpu_s": cpu, "parts": seconds, "peak_rss_mb": c1.ru_maxrss / 1024})


def duckdb_reference(source: Path) -> dict[str, Any]:
    """Return the warm timing of the DuckDB reference, measured in a spawned child process."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_duckdb_child, args=(str(source), queue))
    proc.start()
    while True:  # a child that dies before answering must not leave the benchmark waiting
        try:
            result: dict[str, Any] = queue.get(timeout=5)
            break
        except queue_module.Empty:
            if not proc.is_alive():
                raise SystemExit(f"the DuckDB reference failed (exit code {proc.exitcode})") from None
    proc.join()
    return result


class _StepSampler:
    """Samples this process's RSS every 50 ms into the peak of every step running; notes RSS at step ends.

    Installed by wrapping ``RunSummary.timed`` (the step timer of every stage), so the steps are
    exactly those of ``run_summary.json``. The model steps of a run overlap (side by side in
    threads): a sample counts towards the peak of **every** step running when it is taken (each
    step's peak is the process's RSS while it ran, not its own share), and a step that ran beside
    others lists them (``overlapped``). Between steps, samples go to ``after <last step ended>``.
    At each step's end it also takes a census of the live DataFrames (``memory_usage(deep=True)``),
    Arrow's pool and glibc's heap (used and free): the whole process's, whoever holds them.
    """

    def __init__(self, rss: Callable[[], float] | None = None, start: bool = True) -> None:
        import threading

        self.running: list[str] = []  # steps started and not ended, in start order
        self.idle = "startup"  # where samples go while no step runs
        self.rows: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self._rss = rss or _rss_mb
        if start:
            threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            self.sample()
            time.sleep(0.05)

    def sample(self) -> None:
        """Take one RSS sample into the peak of every running step (or of the idle span)."""
        mb = self._rss()
        with self.lock:
            for step in self.running or [self.idle]:
                row = self.rows.setdefault(step, {})
                row["peak_mb"] = max(row.get("peak_mb", 0.0), mb)

    def enter(self, step: str) -> None:
        """Note that ``step`` starts (RSS at its start; the steps already running overlap it)."""
        mb = self._rss()
        with self.lock:
            row = self.rows.setdefault(step, {})
            row["start_mb"] = mb
            row["peak_mb"] = max(row.get("peak_mb", 0.0), mb)
            for other in self.running:
                _overlap(row, other)
                _overlap(self.rows[other], step)
            self.running.append(step)

    def leave(self, step: str, census: Callable[[], dict[str, Any]] | None = None) -> None:
        """Note that ``step`` ended: the census at its end."""
        facts = (census or _census)()
        with self.lock:
            self.rows[step].update(facts)
            if step in self.running:
                self.running.remove(step)
            self.idle = f"after {step}"


def _overlap(row: dict[str, Any], other: str) -> None:
    names: list[str] = row.setdefault("overlapped", [])
    if other not in names:
        names.append(other)


def _rss_mb() -> float:
    from salesbi.memory import resident_bytes

    return (resident_bytes() or 0) / 2**20


#: glibc's ``struct mallinfo2``, in order
MALLINFO2_FIELDS: tuple[str, ...] = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks")
MALLINFO2_FIELDS += ("uordblks", "fordblks", "keepcost")


def _census() -> dict[str, Any]:
    """Return RSS, Arrow pool bytes, glibc heap used/free and the live frames (largest first), MB."""
    import ctypes
    import gc

    import pandas as pd
    import pyarrow as pa

    from salesbi.memory import resident_bytes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in MALLINFO2_FIELDS]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    frames = [o for o in gc.get_objects() if isinstance(o, pd.DataFrame)]
    sizes = sorted(
        (
            (f.memory_usage(deep=True).sum() / 2**20, f.shape, ",".join(map(str, f.columns[:3])))
            for f in frames
        ),
        key=lambda x: -float(x[0]),
    )
    return {
        "end_mb": (resident_bytes() or 0) / 2**20,
        "arrow_mb": pa.total_allocated_bytes() / 2**20,
        "malloc_used_mb": (info.uordblks + info.hblkhd) / 2**20,
        "malloc_free_mb": info.fordblks / 2**20,
        "frames_mb": sum(x[0] for x in sizes),
        "largest_frames": [(round(mb, 1), list(shape), cols) for mb, shape, cols in sizes[:4]],
    }


def _memory_child(source: str, work: str, queue: Any, reports_in: str = "python") -> None:
    import contextlib
    from collections.abc import Iterator

    from salesbi import runlog

    sampler = _StepSampler()
    timed = runlog.RunSummary.timed

    @contextlib.contextmanager
    def sampled(self: runlog.RunSummary, step: str) -> Iterator[None]:
        sampler.enter(step)
        try:
            with timed(self, step):
                yield
        finally:
            sampler.leave(step)

    runlog.RunSummary.timed = sampled  # type: ignore[method-assign,assignment]
    from salesbi.cli import app

    out = Path(work)
    args = ["run", "-s", source, "-w", f"sqlite:///{out}/warehouse.db", "-o", str(out / "out")]
    args += ["--reports-in", reports_in]
    with contextlib.suppress(SystemExit):
        app(args, standalone_mode=False)
    queue.put(sampler.rows)


def memory_profile(source: Path, work: Path, reports_in: str = "python") -> dict[str, dict[str, Any]]:
    """Return step → RSS at start, peak during, at end, and the census at its end (a sampled run)."""
    import multiprocessing as mp

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_memory_child, args=(str(source), str(work), queue, reports_in))
    proc.start()
    while True:
        try:
            rows: dict[str, dict[str, Any]] = queue.get(timeout=5)
            break
        except queue_module.Empty:
            if not proc.is_alive():
                raise SystemExit(f"the sampled run failed (exit code {proc.exitcode})") from None
    proc.join()
    return rows


def memory_markdown(lines: int, load: float, rows: dict[str, dict[str, Any]]) -> str:
    """Return the per-step memory table of one sampled run."""
    out = [
        f"Per-step memory, {lines:,} order lines (load average {load:.1f}), MB:",
        "",
        "| step | RSS at start | peak RSS | RSS at end | live frames | Arrow pool | malloc used / free "
        "| largest frames (MB, shape, first columns) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    overlapping = False
    for step, r in rows.items():
        if "end_mb" not in r:
            continue
        largest = "; ".join(f"{mb} {shape} {cols}" for mb, shape, cols in r["largest_frames"][:3])
        beside = r.get("overlapped") or []
        overlapping = overlapping or bool(beside)
        name = f"{step} (beside {', '.join(beside)})" if beside else step
        out.append(
            f"| {name} | {r.get('start_mb', 0):.0f} | {r.get('peak_mb', 0):.0f} | {r['end_mb']:.0f} "
            f"| {r['frames_mb']:.0f} | {r['arrow_mb']:.0f} | {r['malloc_used_mb']:.0f} / "
            f"{r['malloc_free_mb']:.0f} | {largest} |"
        )
    if overlapping:
        out += [
            "",
            "Steps marked *beside* ran at the same time (threads): each one's peak is the process's RSS "
            "while it ran (every sample counts for every step running), so their peaks are one shared "
            "figure, not shares; the census is the whole process's at the step's end.",
        ]
    return "\n".join(out)


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def generated(base: Path, lines: int) -> Path:
    """Return the folder of the sample company with ``lines`` order lines (generated once, in chunks)."""
    from salesbi.generate import generate_company

    source = base / f"company-{lines}"
    if not (source / "order_items.csv").exists():
        # the generator writes order lines in chunks of 500,000: 10M lines need no more memory than 1M
        generate_company(source, order_lines=lines, seed=1)
    return source


def bench_size(lines: int, base: Path, repeat: int, reports_in: str = "python") -> dict[str, Any]:
    """Return the medians over ``repeat`` alternated runs for ``lines`` generated order lines."""
    source = generated(base, lines)
    load = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="salesbi-bench-pipeline-"))
    runs, floors, ducks = [], [], []
    try:
        for _ in range(repeat):
            floors.append(sqlite_floor(source, work))
            ducks.append(duckdb_reference(source))
            runs.append(salesbi_run(source, work / "run", reports_in))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    steps = sorted(
        {s for r in runs for s in r["timings"]},
        key=lambda s: (STEP_ORDER.index(s) if s in STEP_ORDER else len(STEP_ORDER), s),
    )
    return {
        "order_lines": lines,
        "load_avg_1m": round(load, 1),
        "repeat": repeat,
        "wall_s": round(_median([r["wall_s"] for r in runs]), 1),
        "cpu_s": round(_median([r["cpu_s"] for r in runs]), 1),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs)),
        "status": runs[-1]["status"],
        "steps": {s: round(_median([r["timings"].get(s, 0.0) for r in runs]), 2) for s in steps},
        "sqlite_import_s": round(_median([f["wall_s"] for f in floors]), 2),
        "sqlite_import_rss_mb": round(max(f["peak_rss_mb"] for f in floors)),
        "duckdb_s": round(_median([d["wall_s"] for d in ducks]), 2),
        "duckdb_parts_s": {
            k: round(_median([d["parts"].get(k, 0.0) for d in ducks]), 2) for k in ducks[0]["parts"]
        },
        "duckdb_rss_mb": round(max(d["peak_rss_mb"] for d in ducks)),
    }


def markdown(results: list[dict[str, Any]]) -> str:
    """Return the results as two markdown tables: the whole run, and per-step seconds."""
    out = [
        "| order lines | load avg | salesbi run wall s | CPU s | peak RSS MB | sqlite3 .import s "
        "| DuckDB reference s (load / checks / reports) | run ÷ DuckDB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        p = r["duckdb_parts_s"]
        out.append(
            f"| {r['order_lines']:,} | {r['load_avg_1m']} | {r['wall_s']} | {r['cpu_s']} "
            f"| {r['peak_rss_mb']:,} "
            f"| {r['sqlite_import_s']} | {r['duckdb_s']} ({p.get('load', 0)} / {p.get('check', 0)} / "
            f"{p.get('reports', 0)}) | {r['wall_s'] / r['duckdb_s']:.0f}× |"
        )
    steps = [s for s in STEP_ORDER if any(s in r["steps"] for r in results)]
    steps += sorted({s for r in results for s in r["steps"]} - set(steps))
    out += ["", "| order lines | " + " | ".join(steps) + " |", "| ---: |" + " ---: |" * len(steps)]
    for r in results:
        out.append(
            f"| {r['order_lines']:,} | " + " | ".join(str(r["steps"].get(s, "")) for s in steps) + " |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark for each size and print markdown (JSON on stderr)."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--lines", type=int, nargs="+", default=None, help="order lines per size")
    ap.add_argument(
        "--sizes",
        choices=sorted(SIZES),
        default="small",
        help="preset sizes when --lines is not given: "
        + "; ".join(f"{k} = {', '.join(f'{n:,}' for n in v)}" for k, v in SIZES.items()),
    )
    ap.add_argument("--repeat", type=int, default=1, help="alternated repetitions per size (medians)")
    ap.add_argument("--keep", type=Path, default=None, help="keep generated data here (reused if present)")
    ap.add_argument(
        "--memory",
        action="store_true",
        help="also run one sampled salesbi run per size: RSS per step and the live frames at each step's end",
    )
    ap.add_argument(
        "--memory-only", action="store_true", help="only the sampled run (no timed runs, no floors)"
    )
    ap.add_argument(
        "--reports-in",
        choices=("python", "warehouse"),
        default="python",
        help="salesbi run --reports-in: pandas (default) or push-down into the SQLite warehouse",
    )
    args = ap.parse_args(argv)
    args.lines = args.lines or SIZES[args.sizes]
    if shutil.which("sqlite3") is None:
        raise SystemExit("the sqlite3 shell is needed for the floor (apt-get install sqlite3)")
    base = args.keep or Path(tempfile.mkdtemp(prefix="salesbi-bench-"))
    results = []
    memory: list[str] = []
    try:
        for lines in args.lines:
            if not args.memory_only:
                results.append(bench_size(lines, base, max(1, args.repeat), args.reports_in))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
            if args.memory or args.memory_only:
                source = generated(base, lines)
                load = os.getloadavg()[0]
                work = Path(tempfile.mkdtemp(prefix="salesbi-bench-memory-"))
                try:
                    rows = memory_profile(source, work / "run", args.reports_in)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                print(json.dumps({"order_lines": lines, "memory": rows}), file=sys.stderr, flush=True)
                memory.append(memory_markdown(lines, load, rows))
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    print(f"`bench/pipeline.py {' '.join(argv if argv is not None else sys.argv[1:])}`\n")
    if results:
        print(markdown(results))
    for table in memory:
        print("\n" + table)


if __name__ == "__main__":
    main()
