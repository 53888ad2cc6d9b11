"""Deployable flow: segmentation, customer predictions and sales forecast, run concurrently.

The three model steps are pure functions of the core frames
(:data:`salesbi.pipeline.MODEL_FITS`), submitted as tasks whose results are
merged into the run afterwards. That keeps them independent of the process
they run in: with ``task_runner="dask"`` they go to a Dask cluster (a local
one with ``dask_workers`` processes, or ``dask_address``), otherwise to
threads of the flow's process.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.logging import get_run_logger

from flows._runs import attached, lookup
from salesbi.errors import StepSkipped
from salesbi.params import PipelineParams, RunOptions
from salesbi.pipeline import MODEL_FITS, Run, apply_model_result, model_inputs, skip

MODEL_STEPS = ("segments", "predictions", "forecast")


@task(name="fit-model", cache_policy=NO_CACHE, task_run_name="fit-{step}")
def fit_task(step: str, args: tuple[Any, ...]) -> tuple[Any, float]:
    """Return the result of model step ``step`` and the seconds it took."""
    started = time.perf_counter()
    result = MODEL_FITS[step][0](*args)
    return result, time.perf_counter() - started


@flow(name="fit-models", log_prints=True)
def fit_models_flow(run_key: str, steps: list[str]) -> list[str]:
    """Fit model ``steps`` of the active run ``run_key`` concurrently; return the steps fitted.

    ``run_key`` names the parent flow's run in this process (a subflow, never a deployment).
    A step that cannot run on the data (StepSkipped) is recorded as a warning.
    """
    run = lookup(run_key)
    futures = {s: fit_task.submit(s, model_inputs(run, s)) for s in steps}
    wait(list(futures.values()))
    fitted: list[str] = []
    for step, future in futures.items():
        try:
            result, seconds = future.result()  # re-raises the step's failure
        except StepSkipped as skipped:
            skip(run, step, skipped)
            continue
        except BaseException:
            run.summary.failed_step = run.summary.failed_step or step
            raise
        apply_model_result(run, step, result)
        run.summary.timings[step] = round(seconds, 3)
        get_run_logger().info("%s done in %.1fs", step, seconds)
        fitted.append(step)
    return fitted


def run_models(run: Run, steps: list[str] | None = None) -> None:
    """Fit model ``steps`` (default: the run's) on the task runner its parameters ask for, merging results."""
    wanted: list[str] = (
        list(steps) if steps is not None else [s for s in MODEL_STEPS if s in run.params.steps]
    )
    runner = task_runner_for(run.params)
    fit = fit_models_flow if runner is None else fit_models_flow.with_options(task_runner=runner)
    with attached(run) as key:
        fit(key, wanted)


def task_runner_for(params: PipelineParams) -> Any:
    """Return the Prefect task runner the model steps use for ``params`` (None: the flow's default)."""
    if params.task_runner != "dask":
        return None
    from prefect_dask import DaskTaskRunner

    if params.dask_address:
        return DaskTaskRunner(address=params.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": params.dask_workers,
            "threads_per_worker": 1,
            "dashboard_address": None,  # no Bokeh dashboard ...
            "scheduler_kwargs": {"dashboard_address": ":0"},  # ... and its HTTP routes on a free port
            "env": {"PREFECT_API_URL": current_api_url()},
        }
    )


def current_api_url() -> str:
    """Return the URL of the Prefect API this process reports to (its temporary server when none is set).

    Local Dask workers get it, so their task runs land beside the flow's instead of each worker
    starting a temporary API of its own (~20 s apiece, and runs nobody sees).
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    configured = get_current_settings().api.url
    if configured:
        return str(configured)
    with get_client(sync_client=True) as client:  # starts (or finds) this process's temporary server
        return str(client.api_url)


@flow(name="train-models", log_prints=True)
def models_flow(params: RunOptions) -> list[str]:
    """Refit the selected models (all three by default) on core and publish; return the rpt tables written.

    Runs the plan of reports + the model steps: the models read the fact table,
    and the insights need every table.
    """
    from flows._plan import run_plan

    chosen = tuple(s for s in params.steps if s in MODEL_STEPS) or MODEL_STEPS
    summary = run_plan(params, flow="train-models", steps=("reports", *chosen))  # type: ignore[arg-type]
    return sorted(summary["outputs"].get("rpt_tables") or {})
