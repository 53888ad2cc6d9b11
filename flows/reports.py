"""Deployable flow: rebuild the report layer (rpt tables, Parquet, insights) from core."""

from __future__ import annotations

from prefect import flow

from flows._runs import lookup
from flows._secrets import with_warehouse_secret
from salesbi.params import PipelineParams
from salesbi.pipeline import recorded, start_run
from tasks.artifacts import publish_run_artifacts
from tasks.stages import connect_task, core_task, insights_task, publish_task, reports_task


@flow(name="rebuild-reports", log_prints=True)
def reports_flow(params: PipelineParams, run_key: str | None = None) -> list[str]:
    """Build the report tables from core; standalone, also publish them. Return the table names built."""
    if run_key is not None:
        run = lookup(run_key)
        if run.core is None:
            core_task(run)
        reports_task(run)
        return sorted(run.frames)
    params = with_warehouse_secret(params)
    run = start_run(params.model_copy(update={"steps": ("reports",)}), flow="rebuild-reports")
    try:
        with recorded(run):
            connect_task(run)
            core_task(run)
            reports_task(run)
            insights_task(run)
            publish_task(run)
    finally:
        publish_run_artifacts(run)
    return sorted(run.frames)
