"""The model steps give the same answers on a local two-worker Dask cluster as on threads."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pytest

from salesbi.errors import StepSkipped
from salesbi.params import PipelineParams
from salesbi.pipeline import plan, start_run
from salesbi.prediction.synthetic import synthetic_fact
from salesbi.stage_results import CoreFrames, Frames, ModelOutput, Results, RunContext, StageResult

pytestmark = [pytest.mark.integration, pytest.mark.prefect, pytest.mark.slow]


def _inputs(tmp_path: Path, **options: object) -> tuple[RunContext, Results]:
    fact, customers, employees, _ = synthetic_fact(300, seed=3)
    params = PipelineParams(out_dir=tmp_path, steps=("segments", "predictions"), **options)  # type: ignore[arg-type]
    done = (
        Results()
        .add("core", CoreFrames({"customers": customers, "employees": employees}, "warehouse"))
        .add("reports", Frames({"fact_order_lines": fact}))
    )
    return start_run(params, flow="test"), done


def _fit_in_a_flow(ctx: RunContext, done: Results) -> Mapping[str, StageResult | StepSkipped]:
    from prefect import flow

    from flows.models import fit_models

    @flow(name="test-fit-models")
    def fit() -> Mapping[str, StageResult | StepSkipped]:
        return fit_models([s for s in plan(ctx.params.steps) if s.model], ctx, done)

    return fit()


def test_dask_runner_matches_threads(prefect_api: None, tmp_path: Path) -> None:
    from flows.models import task_runner_for

    threads_ctx, done = _inputs(tmp_path / "threads")
    dask_ctx, _ = _inputs(tmp_path / "dask", task_runner="dask", dask_workers=2)
    assert task_runner_for(threads_ctx.params) is None
    runner = task_runner_for(dask_ctx.params)
    assert type(runner).__name__ == "DaskTaskRunner"
    # the local workers report to this session's API instead of starting temporary ones
    from prefect.settings import get_current_settings

    assert runner.cluster_kwargs["env"] == {"PREFECT_API_URL": str(get_current_settings().api.url)}
    assert runner.cluster_kwargs["env"]["PREFECT_API_URL"].startswith("http://")
    threads = _fit_in_a_flow(threads_ctx, done)
    dask = _fit_in_a_flow(dask_ctx, done)
    assert sorted(threads) == sorted(dask) == ["predictions", "segments"]
    outputs = {}
    for name, results in (("threads", threads), ("dask", dask)):
        segments, predictions = results["segments"], results["predictions"]
        assert isinstance(segments, ModelOutput) and isinstance(predictions, ModelOutput)
        outputs[name] = Results().add("segments", segments).add("predictions", predictions)
    frames_dask, frames_threads = outputs["dask"].frames(), outputs["threads"].frames()
    for name in ("customer_segments", "segment_summary", "customer_predictions"):
        left, right = frames_dask[name], frames_threads[name]
        if "model_version" in left:  # <UTC time>-<content hash>: same content, different second
            assert (left["model_version"].str[-8:] == right["model_version"].str[-8:]).all()
            left, right = left.drop(columns="model_version"), right.drop(columns="model_version")
        pd.testing.assert_frame_equal(left, right, check_exact=False)
    assert (
        sorted(outputs["dask"].models())
        == sorted(outputs["threads"].models())
        == [
            "customer_sales",
            "customer_segments",
        ]
    )
    assert {"segments", "predictions"} <= set(dask_ctx.summary.timings)
    assert [r.model_name for r in outputs["dask"].model_runs()] == [
        r.model_name for r in outputs["threads"].model_runs()
    ]
