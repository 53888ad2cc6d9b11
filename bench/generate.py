"""Benchmark: how fast the sample company generator writes order lines, and its peak memory.

    .venv/bin/python bench/generate.py [--lines 1000000 10000000] [--chunk-lines 500000] [--keep DIR]

Each size runs in a fresh child process (spawned, so its memory is its own): the child imports
the generator, notes its resident memory, then times ``generate_company`` and reports its peak
RSS (``getrusage`` ru_maxrss, which includes the interpreter, numpy, pandas and pyarrow) and
the CSV bytes written. Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
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


def _child(out: str, lines: int, chunk_lines: int, queue: Any) -> None:
    import psutil

    from salesbi.generate import generate_company

    base_mb = psutil.Process().memory_info().rss / 2**20
    t0 = time.perf_counter()
    summary = generate_company(Path(out), order_lines=lines, seed=1, chunk_lines=chunk_lines)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    queue.put(
        {
            "seconds": seconds,
            "orders": summary.rows["orders"],
            "customers": summary.rows["customers"],
            "base_mb": base_mb,
            "peak_mb": peak_mb,
            "bytes": size,
        }
    )


def run(lines: int, chunk_lines: int, out: Path) -> dict[str, Any]:
    """Return the measurements of one generation of ``lines`` order lines in a child process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(str(out), lines, chunk_lines, queue))
    proc.start()
    result: dict[str, Any] = queue.get()
    proc.join()
    if proc.exitcode != 0:
        raise SystemExit(f"generation of {lines:,} lines failed (exit code {proc.exitcode})")
    return result


def main() -> None:
    """Run the benchmark for each requested size and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--chunk-lines", type=int, default=500_000)
    parser.add_argument(
        "--keep", type=Path, default=None, help="write the companies here instead of a temp dir"
    )
    args = parser.parse_args()

    rows = []
    for lines in args.lines:
        tmp = Path(tempfile.mkdtemp(prefix="salesbi-gen-"))
        out = (args.keep / f"lines_{lines}") if args.keep else tmp / "company"
        try:
            r = run(lines, args.chunk_lines, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rows.append((lines, r))
        print(f"{lines:,} lines: {r['seconds']:.1f} s, peak RSS {r['peak_mb']:.0f} MB", file=sys.stderr)

    print(f"Generator benchmark (`bench/generate.py`, seed 1, chunk_lines {args.chunk_lines:,})\n")
    head = (
        "order lines",
        "orders",
        "customers",
        "seconds",
        "lines/s",
        "peak RSS MB",
        "RSS after import MB",
        "CSV MB",
    )
    print("| " + " | ".join(head) + " |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for lines, r in rows:
        print(
            f"| {lines:,} | {r['orders']:,} | {r['customers']:,} | {r['seconds']:.1f} | "
            f"{lines / r['seconds']:,.0f} | {r['peak_mb']:.0f} | {r['base_mb']:.0f} | "
            f"{r['bytes'] / 2**20:,.0f} |"
        )


if __name__ == "__main__":
    main()
