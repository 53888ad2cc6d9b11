"""Benchmark: requests/s and p50/p99 latency of single-customer /segment and /predict/customer-sales.

    .venv/bin/python bench/api.py [--requests 400] [--concurrency 1 4] [--models-dir DIR]

Trains the models on 2,000 synthetic customers into a temporary model store (unless
``--models-dir`` names one), starts ``uvicorn`` with the API in a subprocess on 127.0.0.1 (one
worker, a free port), and fires ``--requests`` requests per endpoint and concurrency level from
an httpx async client in this process (loopback only; the loop is bounded by the request count).
Each request is one customer's real order history (about 40 lines). Latency is measured at the
client, from sending to the full response. Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = "bench-key-0123456789abcdef"
HOST = "127.0.0.1"


def train(models_dir: Path, customers: int) -> tuple[list[list[dict[str, Any]]], float]:
    """Store segmentation and prediction models trained on synthetic data; return histories and seconds."""
    from salesbi.modelstore import save_all
    from salesbi.prediction import predict_customer_sales
    from salesbi.prediction.synthetic import synthetic_fact
    from salesbi.segmentation import segment_customers

    t0 = time.perf_counter()
    fact, cust, emp, _ = synthetic_fact(customers, seed=11)
    save_all(segment_customers(fact, cust, emp).models, models_dir)
    save_all(predict_customer_sales(fact, cust, employees=emp, boost_rounds=100).models, models_dir)
    histories = []
    for _, lines in list(fact.groupby("customer_id", observed=True))[:200]:
        histories.append(
            [
                {
                    "order_id": str(r.order_id),
                    "order_date": str(r.order_date.date()),
                    "net_sales": float(r.net_sales),
                    "is_cancelled": bool(r.is_cancelled),
                    "product_line_id": str(r.product_line_id),
                }
                for r in lines.itertuples()
            ]
        )
    return histories, time.perf_counter() - t0


def free_port() -> int:
    """Return a free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def start_server(models_dir: Path, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """Start uvicorn with the API factory in a subprocess; return it once /health answers."""
    env = {
        **os.environ,
        "SALESBI_API_KEYS": KEY,
        "SALESBI_MODELS_DIR": str(models_dir),
        "SALESBI_WAREHOUSE_URL": f"sqlite:///{workdir / 'absent.db'}",
        "PYTHONPATH": str(ROOT),
    }
    cmd = [sys.executable, "-m", "uvicorn", "salesbi.api.app:create_app", "--factory"]
    cmd += ["--host", HOST, "--port", str(port), "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, env=env, cwd=workdir)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{HOST}:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("the API did not start within 120 s")


async def load(url: str, bodies: list[dict[str, Any]], requests: int, concurrency: int) -> dict[str, float]:
    """Send ``requests`` POSTs with ``concurrency`` workers; return rps, p50, p99 (ms) and errors."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers={"X-API-Key": KEY}, limits=limits, timeout=30) as client:
        for body in bodies[:5]:  # warm-up, not counted
            await client.post(url, json=body)

        async def worker() -> None:
            nonlocal errors
            for i in counter:
                t0 = time.perf_counter()
                r = await client.post(url, json=bodies[i % len(bodies)])
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += r.status_code != 200

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, round(0.99 * len(latencies)) - 1)],
        "errors": errors,
    }


def main() -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per endpoint and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--customers", type=int, default=2000, help="synthetic customers to train on")
    parser.add_argument("--models-dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models_dir = args.models_dir or work / "models"
        histories, seconds = train(models_dir, args.customers)
        lines = statistics.mean(len(h) for h in histories)
        print(f"trained on {args.customers} customers in {seconds:.1f} s; {lines:.0f} lines per request")
        port = free_port()
        proc = start_server(models_dir, port, work)
        try:
            rows = []
            for path, key in (("/segment", "history"), ("/predict/customer-sales", "history")):
                bodies = [{key: h} for h in histories]
                for c in args.concurrency:
                    result = asyncio.run(load(f"http://{HOST}:{port}{path}", bodies, args.requests, c))
                    rows.append((path, c, result))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print()
    print("| endpoint | concurrency | requests | req/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for path, c, r in rows:
        print(
            f"| `POST {path}` | {c} | {args.requests} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} "
            f"| {r['errors']:.0f} |"
        )


if __name__ == "__main__":
    main()
