"""bench/pipeline.py's per-step RSS sampler: overlapping steps (the model steps run in threads)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_pipeline", ROOT / "bench" / "pipeline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _census() -> dict[str, Any]:
    return {"end_mb": 0.0}


def test_a_sample_counts_for_every_step_running_and_overlaps_are_named() -> None:
    rss = iter([100.0, 150.0, 400.0, 160.0, 300.0, 120.0, 90.0])
    sampler = _bench()._StepSampler(rss=lambda: next(rss), start=False)
    sampler.enter("segments")  # 100
    sampler.enter("predictions")  # 150
    sampler.sample()  # 400: both running
    sampler.leave("segments", _census)
    sampler.enter("forecast")  # 160
    sampler.sample()  # 300: predictions and forecast
    sampler.leave("predictions", _census)
    sampler.leave("forecast", _census)
    sampler.sample()  # 120: after forecast
    rows = sampler.rows
    assert rows["segments"]["start_mb"] == 100.0 and rows["segments"]["peak_mb"] == 400.0
    assert rows["predictions"]["start_mb"] == 150.0 and rows["predictions"]["peak_mb"] == 400.0
    assert rows["forecast"]["start_mb"] == 160.0 and rows["forecast"]["peak_mb"] == 300.0
    assert rows["after forecast"]["peak_mb"] == 120.0
    assert rows["segments"]["overlapped"] == ["predictions"]
    assert rows["predictions"]["overlapped"] == ["segments", "forecast"]
    assert rows["forecast"]["overlapped"] == ["predictions"]


def test_sequential_steps_keep_their_own_peaks() -> None:
    rss = iter([100.0, 500.0, 200.0, 250.0])
    sampler = _bench()._StepSampler(rss=lambda: next(rss), start=False)
    sampler.enter("load")
    sampler.sample()
    sampler.leave("load", _census)
    sampler.enter("reports")
    sampler.sample()
    sampler.leave("reports", _census)
    assert sampler.rows["load"]["peak_mb"] == 500.0 and sampler.rows["reports"]["peak_mb"] == 250.0
    assert "overlapped" not in sampler.rows["load"] and "overlapped" not in sampler.rows["reports"]


def test_the_table_marks_overlapping_steps() -> None:
    bench = _bench()
    row = {"start_mb": 1.0, "peak_mb": 2.0, "end_mb": 1.0, "frames_mb": 0.0, "arrow_mb": 0.0}
    row |= {"malloc_used_mb": 0.0, "malloc_free_mb": 0.0, "largest_frames": []}
    text = bench.memory_markdown(10, 1.0, {"segments": {**row, "overlapped": ["forecast"]}, "load": row})
    assert "| segments (beside forecast) |" in text and "| load |" in text
    assert "one shared figure" in text
