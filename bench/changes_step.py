"""Time the ``changes`` step of a daily drop alone: its CPU seconds and the memory it adds.

Reads a drop (``--source``) as ``salesbi run`` does (``order_items`` spilled above
``--spill-rows``), then compares it with a warehouse holding the day before
(``salesbi.incremental.select_drop_changes``, the ``changes`` step), sampling the process's RSS
every 20 ms. Prints one JSON line: RSS before the step, its peak during the step and after it
(the ChangeSet alive), CPU seconds (user + sys) and wall seconds of the step, the mode applied
and the rows selected per table. The warehouse is only read.

Run it from a checkout with ``PYTHONPATH`` at that checkout to compare two versions of the code
on the same drop and warehouse (docs/scaling.md "Eighth session, snapshot drops streamed")::

    .venv/bin/python bench/changes_step.py --source DAY2 -w sqlite:////tmp/x/wh.db --out /tmp/x/o
"""

from __future__ import annotations

import argparse
import inspect
import json
import resource
import threading
import time
from pathlib import Path
from typing import Any


def _rss_mb() -> float:
    """Return this process's resident set size in MB (from /proc)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class _Peak:
    """Samples the RSS in a thread until stopped; ``peak`` is the highest seen."""

    def __init__(self) -> None:
        self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mb())

    def __enter__(self) -> _Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    """Measure the changes step of ``--source`` against ``--warehouse``; print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("-w", "--warehouse", required=True)
    parser.add_argument("--out", type=Path, required=True, help="holds the read's spill (removed after)")
    parser.add_argument("--mode", default="auto")
    parser.add_argument("--spill-rows", type=int, default=500_000)
    parser.add_argument("--block-rows", type=int, default=500_000)
    args = parser.parse_args()

    from salesbi.incremental import select_drop_changes
    from salesbi.ingest import read_step
    from salesbi.params import PipelineParams
    from salesbi.pipeline import open_warehouse
    from salesbi.reading.spilled import SpillPolicy, ingest_spill_folder, remove_ingest_spills
    from salesbi.runlog import last_good_counts

    params = PipelineParams(source=args.source, warehouse_url=args.warehouse, out_dir=args.out)
    engine, metadata = open_warehouse(params)
    spill = SpillPolicy(ingest_spill_folder(args.out, "bench"), args.spill_rows)
    try:
        data = read_step(args.source, "canonical", spill=spill)
        previous = last_good_counts(engine)
        kw: dict[str, Any] = {"block_rows": args.block_rows}
        if "spill_rows" in inspect.signature(select_drop_changes).parameters:
            kw["spill_rows"] = args.spill_rows
        before, cpu, wall = _rss_mb(), _cpu(), time.perf_counter()
        with _Peak() as peak:
            changes = select_drop_changes(
                engine, metadata, data, mode=args.mode, previous_counts=previous, **kw
            )
        cpu, wall = _cpu() - cpu, time.perf_counter() - wall
        record = {
            "rss_before_mb": round(before, 1),
            "rss_peak_mb": round(peak.peak, 1),
            "rss_after_mb": round(_rss_mb(), 1),
            "cpu_s": round(cpu, 2),
            "wall_s": round(wall, 2),
            "mode": changes.mode,
            "selected": {name: t.rows for name, t in changes.tables.items()},
            "unchanged": changes.unchanged,
            "order_items_selected_as": type(changes.data.tables["order_items"].frame).__name__,
        }
        print(json.dumps(record))
    finally:
        engine.dispose()
        remove_ingest_spills(args.out)


if __name__ == "__main__":
    main()
