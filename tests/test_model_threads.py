"""``salesbi run`` fits its model steps side by side in threads (at most ``fit_workers`` at a time)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from salesbi.errors import StepSkipped
from salesbi.params import PipelineParams
from salesbi.pipeline import Stage, call_models_in_threads
from salesbi.runlog import RunSummary
from salesbi.stage_results import Frames, Results, RunContext


def _ctx(tmp_path: Path, workers: int) -> RunContext:
    params = PipelineParams(source=tmp_path, out_dir=tmp_path / "out", model_workers=workers)
    return RunContext(params=params, summary=RunSummary(run_id="r1", flow="test"))


def _stage(name: str, fn: object) -> Stage:
    return Stage(name, fn, ("core frames",), (), frozenset({name}), model=True)  # type: ignore[arg-type]


def test_two_workers_run_two_model_steps_at_once(tmp_path: Path) -> None:
    both_inside = threading.Barrier(2, timeout=30)  # breaks (BrokenBarrierError) if they ran one by one

    def step(ctx: RunContext, done: Results) -> Frames:
        both_inside.wait()
        return Frames({threading.current_thread().name: None})  # type: ignore[dict-item]

    out = call_models_in_threads([_stage("a", step), _stage("b", step)], _ctx(tmp_path, 2), Results())
    assert sorted(out) == ["a", "b"]
    threads = {name for result in out.values() for name in result.frames}  # type: ignore[union-attr]
    assert len(threads) == 2 and all(t.startswith("salesbi-model") for t in threads)


def test_one_worker_runs_them_one_after_another(tmp_path: Path) -> None:
    def step(ctx: RunContext, done: Results) -> Frames:
        return Frames({threading.current_thread().name: None})  # type: ignore[dict-item]

    out = call_models_in_threads([_stage(n, step) for n in "abc"], _ctx(tmp_path, 1), Results())
    threads = {name for result in out.values() for name in result.frames}  # type: ignore[union-attr]
    assert len(threads) == 1  # one thread, so one step at a time


def test_a_skipped_step_is_returned_and_a_failed_one_fails_after_the_others_ended(tmp_path: Path) -> None:
    ended: list[str] = []

    def skipped(ctx: RunContext, done: Results) -> None:
        raise StepSkipped("too little history")

    def failing(ctx: RunContext, done: Results) -> None:
        raise ValueError("boom")

    def fine(ctx: RunContext, done: Results) -> Frames:
        ended.append("fine")
        return Frames({})

    ctx = _ctx(tmp_path, 2)
    out = call_models_in_threads([_stage("s", skipped), _stage("f", fine)], ctx, Results())
    assert isinstance(out["s"], StepSkipped) and isinstance(out["f"], Frames)
    with pytest.raises(ValueError, match="boom"):
        call_models_in_threads([_stage("x", failing), _stage("f", fine)], ctx, Results())
    assert ended == ["fine", "fine"] and ctx.summary.failed_step == "x"
