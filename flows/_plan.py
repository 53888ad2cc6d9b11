"""The one run plan (:data:`salesbi.pipeline.STAGES`) executed as Prefect tasks.

Every deployable flow is this executor with a step selection: each stage runs
as the task of the same name (``tasks.stages.TASKS``), the model stages
together on the task runner the parameters ask for. Same plan, same order and
same published tables as ``salesbi run``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flows._secrets import pipeline_params
from flows.models import run_models
from salesbi.params import RunOptions, Step
from salesbi.pipeline import Run, Stage, describe_failure, execute, plan, recorded, start_run
from salesbi.runlock import run_lock
from tasks.artifacts import publish_run_artifacts
from tasks.stages import TASKS


def call_task(stage: Stage, run: Run) -> None:
    """Run ``stage`` as its Prefect task."""
    TASKS[stage.name](run)


def call_models(stages: Sequence[Stage], run: Run) -> None:
    """Fit the model stages ``stages`` concurrently (subflow fit-models)."""
    run_models(run, [s.name for s in stages])


def run_plan(options: RunOptions, *, flow: str, steps: Sequence[Step] | None = None) -> dict[str, Any]:
    """Run the plan of ``steps`` (default: ``options.steps``) as tasks; return the run summary.

    The output folder's run lock is held throughout; the run is recorded in
    audit.runs and run_summary.json, and its artifacts are published, whatever happens.
    """
    params = pipeline_params(options)
    if steps is not None:
        params = params.model_copy(update={"steps": tuple(steps)})
    run = start_run(params, flow=flow)
    try:
        with run_lock(params.out_dir, run.run_id, timeout=params.lock_timeout), recorded(run):
            execute(run, plan(params.steps), call=call_task, call_models=call_models)
    except BaseException as exc:
        if run.summary.status == "running":  # failed before the run began (the lock)
            run.summary.status, run.summary.error = "failed", describe_failure(exc)
        raise
    finally:
        publish_run_artifacts(run)
    return run.summary.as_dict()
