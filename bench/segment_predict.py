"""Benchmark: segmentation + customer-sales prediction for many customers (synthetic personas).

    .venv/bin/python bench/segment_predict.py [--customers 100000] [--rounds 200]

For each size a synthetic ``fact_order_lines`` with known personas is built (not timed:
``salesbi.prediction.synthetic``), then a child process times ``segment_customers`` and
``predict_customer_sales`` (LightGBM, one thread) and reports its peak RSS; a second child
reports the peak RSS of just building the data, so the models' own memory is the difference.
Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(customers: int, rounds: int, run_models: bool, queue: Any) -> None:
    from salesbi.prediction import predict_customer_sales
    from salesbi.prediction.synthetic import synthetic_fact
    from salesbi.segmentation import segment_customers

    t0 = time.perf_counter()
    fact, cust, emp, _ = synthetic_fact(customers, seed=11)
    out: dict[str, Any] = {"lines": len(fact), "orders": int(fact["order_id"].nunique()), "data_s": 0.0}
    out["data_s"] = time.perf_counter() - t0
    if run_models:
        t1 = time.perf_counter()
        seg = segment_customers(fact, cust, emp)
        out["segment_s"] = time.perf_counter() - t1
        out["k"] = seg.model_runs[1].metrics.get("chosen_k")
        out["segmented"] = len(seg.customer_segments)
        t2 = time.perf_counter()
        pred = predict_customer_sales(fact, cust, employees=emp, boost_rounds=rounds)
        out["predict_s"] = time.perf_counter() - t2
        run = pred.model_runs[0]
        out["status"] = run.status
        out["mae"] = run.metrics.get("mae")
        out["train_rows"] = run.metrics.get("train_rows_final_model")
    out["peak_rss_mb"] = _peak_rss_mb()
    queue.put(out)


def measure(customers: int, rounds: int, run_models: bool) -> dict[str, Any]:
    """Return the child's timings and peak RSS for one size."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(customers, rounds, run_models, queue))
    proc.start()
    result: dict[str, Any] = queue.get()
    proc.join()
    return result


def main() -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    print(
        "| customers | order lines | orders | segment s | predict s | total s "
        "| peak RSS MB | data-only RSS MB |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in args.customers:
        full = measure(n, args.rounds, True)
        floor = measure(n, args.rounds, False)
        total = full["segment_s"] + full["predict_s"]
        print(
            f"| {n:,} | {full['lines']:,} | {full['orders']:,} | {full['segment_s']:.1f} | "
            f"{full['predict_s']:.1f} | {total:.1f} | {full['peak_rss_mb']:.0f} | "
            f"{floor['peak_rss_mb']:.0f} |"
        )
        print(
            f"<!-- k={full['k']} status={full['status']} train_rows={full['train_rows']} "
            f"mae={full['mae']} -->",
            flush=True,
        )


if __name__ == "__main__":
    main()
