"""Deployable flow: segmentation, customer predictions and sales forecast, run concurrently."""

from __future__ import annotations

from prefect import flow
from prefect.futures import wait

from flows._runs import lookup
from flows._secrets import with_warehouse_secret
from salesbi.params import PipelineParams
from salesbi.pipeline import Run, recorded, start_run
from tasks.artifacts import publish_run_artifacts
from tasks.stages import (
    connect_task,
    core_task,
    forecast_task,
    predictions_task,
    publish_task,
    reports_task,
    segments_task,
)

MODEL_STEPS = ("segments", "predictions", "forecast")


def _run_models(run: Run) -> None:
    wanted = [s for s in MODEL_STEPS if s in run.params.steps]
    tasks = {"segments": segments_task, "predictions": predictions_task, "forecast": forecast_task}
    futures = [tasks[s].submit(run) for s in wanted]
    wait(futures)
    for future in futures:
        future.result()  # re-raise the first failure


@flow(name="train-models", log_prints=True)
def models_flow(params: PipelineParams, run_key: str | None = None) -> list[str]:
    """Fit the models on core and score every customer/series; return the tables they produced."""
    if run_key is not None:
        run = lookup(run_key)
        if run.core is None:
            core_task(run)
        _run_models(run)
        return sorted(run.frames)
    steps = tuple(s for s in params.steps if s in MODEL_STEPS) or MODEL_STEPS
    params = with_warehouse_secret(params)
    run = start_run(params.model_copy(update={"steps": ("reports", *steps)}), flow="train-models")
    try:
        with recorded(run):
            connect_task(run)
            core_task(run)
            reports_task(run)  # the fact table the models read, and insights need the rest
            _run_models(run)
            publish_task(run)
    finally:
        publish_run_artifacts(run)
    return sorted(run.frames)
