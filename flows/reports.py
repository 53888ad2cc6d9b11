"""Deployable flow: rebuild the report layer (rpt tables, Parquet, insights) from core."""

from __future__ import annotations

from prefect import flow

from salesbi.params import RunOptions


@flow(name="rebuild-reports", log_prints=True)
def reports_flow(params: RunOptions) -> list[str]:
    """Build the report tables and insights from core and publish them; return the rpt tables written.

    The model insights come from the model tables already published in rpt,
    so the insight set stays complete.
    """
    from flows._plan import run_plan

    summary = run_plan(params, flow="rebuild-reports", steps=("reports",))
    return sorted(summary["outputs"].get("rpt_tables") or {})
