"""The one run plan (:data:`salesbi.pipeline.STAGES`) executed as Prefect tasks.

Every deployable flow is this executor with a step selection: each stage runs
as the task of the same name (``tasks.stages.TASKS``) and returns its typed
result, the model stages together on the task runner the parameters ask for.
Same plan, same order and same published tables as ``salesbi run``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flows._secrets import pipeline_params
from flows.models import fit_models
from salesbi.params import RunOptions, Step
from salesbi.pipeline import Execution, Stage, describe_failure, execute, plan, recorded, start_run
from salesbi.runlock import run_lock
from salesbi.stage_results import Results, RunContext, StageResult
from tasks.artifacts import publish_run_artifacts
from tasks.stages import TASKS


def call_task(stage: Stage, ctx: RunContext, done: Results) -> StageResult | None:
    """Return ``stage``'s result, run as its Prefect task."""
    result: StageResult | None = TASKS[stage.name](ctx, done)
    return result


def run_plan(options: RunOptions, *, flow: str, steps: Sequence[Step] | None = None) -> dict[str, Any]:
    """Run the plan of ``steps`` (default: ``options.steps``) as tasks; return the run summary.

    The output folder's run lock is held throughout; the run is recorded in
    audit.runs and run_summary.json, and its artifacts are published, whatever happens.
    """
    params = pipeline_params(options)
    if steps is not None:
        params = params.model_copy(update={"steps": tuple(steps)})
    execution = Execution(start_run(params, flow=flow))
    summary = execution.summary
    try:
        with run_lock(params.out_dir, execution.run_id, timeout=params.lock_timeout), recorded(execution):
            execute(execution, plan(params.steps), call=call_task, call_models=fit_models)
    except BaseException as exc:
        if summary.status == "running":  # failed before the run began (the lock)
            summary.status, summary.error = "failed", describe_failure(exc)
        raise
    finally:
        publish_run_artifacts(execution)
    return summary.as_dict()
