"""Deployable flow: read a source, validate it and load it into the warehouse core."""

from __future__ import annotations

from prefect import flow

from salesbi.params import RunOptions


@flow(name="ingest", log_prints=True)
def ingest_flow(params: RunOptions) -> dict[str, object]:
    """Ingest ``params.source`` with ``params.profile``; return the per-table counts."""
    from flows._plan import run_plan

    return run_plan(params, flow="ingest", steps=("ingest",))["tables"]  # type: ignore[no-any-return]
