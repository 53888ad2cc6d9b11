"""The model steps give the same answers on a local two-worker Dask cluster as on threads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from salesbi.params import PipelineParams
from salesbi.pipeline import Run, start_run
from salesbi.prediction.synthetic import synthetic_fact

pytestmark = [pytest.mark.integration, pytest.mark.prefect, pytest.mark.slow]


def _run(tmp_path: Path, **options: object) -> Run:
    fact, customers, employees, _ = synthetic_fact(300, seed=3)
    params = PipelineParams(out_dir=tmp_path, steps=("segments", "predictions"), **options)  # type: ignore[arg-type]
    run = start_run(params, flow="test")
    run.core = {"customers": customers, "employees": employees}
    run.frames["fact_order_lines"] = fact
    return run


def test_dask_runner_matches_threads(prefect_api: None, tmp_path: Path) -> None:
    from flows.models import run_models, task_runner_for

    threads = _run(tmp_path / "threads")
    dask = _run(tmp_path / "dask", task_runner="dask", dask_workers=2)
    assert task_runner_for(threads.params) is None
    runner = task_runner_for(dask.params)
    assert type(runner).__name__ == "DaskTaskRunner"
    # the local workers report to this session's API instead of starting temporary ones
    from prefect.settings import get_current_settings

    assert runner.cluster_kwargs["env"] == {"PREFECT_API_URL": str(get_current_settings().api.url)}
    assert runner.cluster_kwargs["env"]["PREFECT_API_URL"].startswith("http://")
    run_models(threads)
    run_models(dask)
    for name in ("customer_segments", "segment_summary", "customer_predictions"):
        left, right = dask.frames[name], threads.frames[name]
        if "model_version" in left:  # <UTC time>-<content hash>: same content, different second
            assert (left["model_version"].str[-8:] == right["model_version"].str[-8:]).all()
            left, right = left.drop(columns="model_version"), right.drop(columns="model_version")
        pd.testing.assert_frame_equal(left, right, check_exact=False)
    assert sorted(dask.models) == sorted(threads.models) == ["customer_sales", "customer_segments"]
    assert {"segments", "predictions"} <= set(dask.summary.timings)
    assert [r.model_name for r in dask.model_runs] == [r.model_name for r in threads.model_runs]
