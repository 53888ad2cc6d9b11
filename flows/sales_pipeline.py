"""The end-to-end flow: ingest → reports → models (concurrent) → insights → publish → Power BI."""

from __future__ import annotations

from prefect import flow

from flows._runs import attached
from flows._secrets import with_warehouse_secret
from flows.ingest import ingest_flow
from flows.models import MODEL_STEPS, models_flow
from flows.reports import reports_flow
from salesbi.params import PipelineParams
from salesbi.pipeline import recorded, start_run
from tasks.artifacts import publish_run_artifacts
from tasks.stages import connect_task, insights_task, powerbi_task, publish_task


@flow(name="sales-pipeline", log_prints=True)
def sales_pipeline(params: PipelineParams) -> dict[str, object]:
    """Run the selected steps as subflows and publish everything in one atomic step; return the summary."""
    params = with_warehouse_secret(params)
    run = start_run(params, flow="sales-pipeline")
    steps = set(params.steps)
    try:
        with recorded(run), attached(run) as key:
            if "ingest" in steps:
                ingest_flow(params, run_key=key)
            else:
                connect_task(run)
            if steps & {"reports", *MODEL_STEPS}:
                reports_flow(params, run_key=key)
            if steps & set(MODEL_STEPS):
                models_flow(params, run_key=key)
            if steps & {"reports", *MODEL_STEPS}:
                insights_task(run)
                publish_task(run)
            if "powerbi" in steps:
                powerbi_task(run)
    finally:
        publish_run_artifacts(run)
    return run.summary.as_dict()


if __name__ == "__main__":
    sales_pipeline.serve(name="sales-pipeline-local")
