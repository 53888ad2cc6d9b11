"""The end-to-end flow: ingest → reports → models (concurrent) → insights → publish → Power BI."""

from __future__ import annotations

from prefect import flow

from salesbi.params import RunOptions


@flow(name="sales-pipeline", log_prints=True)
def sales_pipeline(params: RunOptions) -> dict[str, object]:
    """Run the selected steps (the same plan as ``salesbi run``) as tasks; return the run summary."""
    from flows._plan import run_plan

    return run_plan(params, flow="sales-pipeline")


if __name__ == "__main__":
    sales_pipeline.serve(name="sales-pipeline-local")
