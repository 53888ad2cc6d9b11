"""Benchmark: a second day's drop ingested incrementally against a full run of the same day, same machine.

    .venv/bin/python bench/incremental.py [--lines 1000000] [--steps ingest] [--keep DIR]

Generates a company of ``--lines`` order lines (day 1) and its next day's snapshot drop (same
files, 20 orders changed, 30 new, 5 customers changed: ``salesbi.generate.nextday``), not timed.
Then, each in a child process on SQLite with ``salesbi run --steps <steps>``:

1. day 1 into an empty warehouse (full load; the models are fitted and stored when selected);
2. day 2 into that warehouse with the defaults (``ingest_mode=auto`` → snapshot, ``refit=auto`` →
   the stored models score);
3. day 2 into a fresh warehouse and output folder (``ingest_mode=full``, ``refit=always``): the full
   rebuild the incremental run replaces.

Prints each run's wall time, CPU seconds (user + sys), peak RSS, per-step seconds (run_summary
timings) and rows loaded / unchanged, plus the 1-minute load average before and after, as markdown
for docs/scaling.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SALESBI = [sys.executable, "-m", "salesbi.cli"]


def _run(source: Path, work: Path, steps: str, *extra: str) -> dict[str, Any]:
    """Run ``salesbi run`` in a child process; return its summary, wall seconds and peak RSS (MB)."""
    cmd = [
        *SALESBI,
        "run",
        "--source",
        str(source),
        "--warehouse",
        f"sqlite:///{work / 'warehouse.db'}",
        "--out",
        str(work / "out"),
        "--steps",
        steps,
        *extra,
    ]
    rss_file = work / "rss.txt"
    start = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M %U %S", "-o", str(rss_file), *cmd],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads((work / "out" / "run_summary.json").read_text(encoding="utf-8"))
    rss_kib, user, system = rss_file.read_text().split()[-3:]  # GNU time: max RSS in KiB, CPU seconds
    return {
        "summary": summary,
        "wall": wall,
        "rss_mb": int(rss_kib) / 1024,
        "cpu": float(user) + float(system),
    }


def _row(label: str, result: dict[str, Any]) -> str:
    s = result["summary"]
    timings = s["timings"]
    loaded = sum(t["loaded"] for t in s["tables"].values())
    unchanged = sum(t.get("unchanged", 0) for t in s["tables"].values())
    top = ", ".join(f"{k} {v:.1f}" for k, v in sorted(timings.items(), key=lambda kv: -kv[1])[:6])
    rss = f"{result['rss_mb']:,.0f} MB"
    decisions = s["outputs"].get("model_decisions") or {}
    reused = ", ".join(k for k, d in decisions.items() if d["action"] == "reuse") or "—"
    return (
        f"| {label} | {result['wall']:.1f} | {result['cpu']:.1f} | {rss} | {loaded:,} | {unchanged:,} "
        f"| {reused} | {top} |"
    )


def main() -> None:
    """Run the benchmark and print the markdown table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--steps", default="ingest", help="steps of each run (e.g. ingest or all of them)")
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temp dir)")
    args = parser.parse_args()

    from salesbi.generate import generate_company
    from salesbi.generate.nextday import next_day_drop

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_incremental_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        day1, day2 = root / "day1", root / "day2"
        if not (day1 / "orders.csv").is_file():
            generate_company(day1, order_lines=args.lines, seed=42)
        if not (day2 / "orders.csv").is_file():
            next_day_drop(day1, day2, kind="snapshot", seed=1)
        load_before = os.getloadavg()[0]
        for name in ("incremental", "full"):
            shutil.rmtree(root / name, ignore_errors=True)
            (root / name).mkdir()
        first = _run(day1, root / "incremental", args.steps)
        incremental = _run(day2, root / "incremental", args.steps)
        full = _run(day2, root / "full", args.steps, "--ingest-mode", "full", "--refit", "always")
        load_after = os.getloadavg()[0]
        print(
            f"{args.lines:,} order lines, steps {args.steps}; "
            f"load average {load_before:.1f} → {load_after:.1f}"
        )
        print()
        print(
            "| run | wall, s | CPU, s | peak RSS | rows loaded | rows unchanged | models reused "
            "| slowest steps, s |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
        print(_row("day 1, empty warehouse", first))
        print(_row("**day 2, incremental**", incremental))
        print(_row("day 2, full rebuild", full))
        print()
        print(
            f"incremental / full: wall {incremental['wall'] / full['wall']:.2f}, "
            f"CPU {incremental['cpu'] / full['cpu']:.2f}"
        )
        for label, result in (("day 2 incremental", incremental), ("day 2 full", full)):
            timings = result["summary"]["timings"]
            print(f"{label} per step: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
            record = result["summary"]["outputs"].get("report_tables")
            if record:  # the monthly report tables: spliced or rebuilt (salesbi.incremental_reports)
                print(
                    f"{label} monthly tables: spliced {record['spliced']}, rebuilt {record['rebuilt']}, "
                    f"{record['seconds']:.3f} s ({record['cpu_seconds']:.3f} s CPU)"
                )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
