"""Deployable flow: read a source, validate it and load it into the warehouse core."""

from __future__ import annotations

from prefect import flow

from flows._runs import lookup
from flows._secrets import with_warehouse_secret
from salesbi.params import PipelineParams
from salesbi.pipeline import recorded, start_run
from tasks.artifacts import publish_run_artifacts
from tasks.stages import connect_task, ingest_task, read_task


@flow(name="ingest", log_prints=True)
def ingest_flow(params: PipelineParams, run_key: str | None = None) -> dict[str, object]:
    """Ingest ``params.source`` with ``params.profile``; return the per-table counts."""
    if run_key is not None:
        run = lookup(run_key)
        read_task(run)
        connect_task(run)
        ingest_task(run)
        return run.summary.as_dict()["tables"]
    params = with_warehouse_secret(params)
    run = start_run(params.model_copy(update={"steps": ("ingest",)}), flow="ingest")
    try:
        with recorded(run):
            read_task(run)
            connect_task(run)
            ingest_task(run)
    finally:
        publish_run_artifacts(run)
    return run.summary.as_dict()["tables"]
