"""Deployable flow train-models, and how the three model stages are fitted together.

The model steps are pure functions of the core frames
(:data:`salesbi.pipeline.MODEL_FITS`): :func:`fit_models` submits one
``fit-model`` task per step to the task runner the parameters ask for and turns
each result into the stage's typed output. With ``task_runner="dask"`` they go
to a Dask cluster (a local one with ``dask_workers`` processes, or
``dask_address``): their inputs are plain frames and parameters, pickled to the
workers. Otherwise they run in threads of the flow's process.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.logging import get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from salesbi.errors import StepSkipped
from salesbi.params import PipelineParams, RunOptions
from salesbi.pipeline import MODEL_FITS, Stage, model_inputs, model_output
from salesbi.stage_results import Results, RunContext, StageResult

MODEL_STEPS = ("segments", "predictions", "forecast")


@task(name="fit-model", cache_policy=NO_CACHE, task_run_name="fit-{step}")
def fit_task(step: str, args: tuple[Any, ...]) -> tuple[Any, float]:
    """Return the result of model step ``step`` and the seconds it took."""
    started = time.perf_counter()
    result = MODEL_FITS[step][0](*args)
    return result, time.perf_counter() - started


def fit_models(
    stages: Sequence[Stage], ctx: RunContext, done: Results
) -> Mapping[str, StageResult | StepSkipped]:
    """Return each model stage's output (or the StepSkipped it raised), fitted concurrently.

    The fits run as ``fit-model`` tasks of the calling flow on the task runner
    ``ctx.params`` asks for; a fit that fails fails the run (its step is recorded).
    """
    steps = [s.name for s in stages]
    runner = task_runner_for(ctx.params) or ThreadPoolTaskRunner(max_workers=len(steps))
    out: dict[str, StageResult | StepSkipped] = {}
    with runner:
        futures = {s: runner.submit(fit_task, {"step": s, "args": model_inputs(ctx, done, s)}) for s in steps}
        wait(list(futures.values()))
        for step, future in futures.items():
            try:
                result, seconds = future.result()  # re-raises the step's failure
            except StepSkipped as skipped:
                out[step] = skipped
                continue
            except BaseException:
                ctx.summary.failed_step = ctx.summary.failed_step or step
                raise
            out[step] = model_output(step, result)
            ctx.summary.timings[step] = round(seconds, 3)
            get_run_logger().info("%s done in %.1fs", step, seconds)
    return out


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
