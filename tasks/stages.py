"""One Prefect task per stage of the run plan (:data:`salesbi.pipeline.STAGES`), same name.

Each task takes the run's context and the typed results of the stages before it
(:mod:`salesbi.stage_results`) and returns its stage's result; the flow hands
that result to the next tasks. Results hold live objects (an engine, frames),
so they stay in the flow's process and caching is off. Database stages
(``Stage.database``) retry with backoff on transient errors only
(:mod:`tasks.retry`); a stage returns its result only when it succeeded, so a
retry starts clean.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from salesbi import pipeline
from salesbi.stage_results import (
    CoreFrames,
    Frames,
    Ingested,
    PowerBIProject,
    Published,
    Results,
    RunContext,
    SourceRead,
    Warehouse,
)
from tasks.retry import DB_RETRY_DELAYS, retry_on_transient

DB: dict[str, Any] = {
    "retries": len(DB_RETRY_DELAYS),
    "retry_delay_seconds": DB_RETRY_DELAYS,
    "retry_condition_fn": retry_on_transient,
}


def _log_done(ctx: RunContext, step: str) -> None:
    seconds = ctx.summary.timings.get(step)
    get_run_logger().info("%s done%s", step, f" in {seconds:.1f}s" if seconds is not None else "")


@task(name="read-source", cache_policy=NO_CACHE)
def read_task(ctx: RunContext, done: Results) -> SourceRead:
    """Read the source through its profile (no retry: structural faults are the data's)."""
    result = pipeline.read_stage(ctx, done)
    for name, t in result.data.tables.items():
        get_run_logger().info("read %s: %d rows", name, t.read)
    return result


@task(name="connect-warehouse", cache_policy=NO_CACHE, **DB)
def connect_task(ctx: RunContext, done: Results) -> Warehouse:
    """Open the warehouse (bounded by ``connect_timeout``), create what is missing and record the run."""
    result = pipeline.connect_stage(ctx, done)
    _log_done(ctx, "connect")
    return result


@task(name="validate-and-load", cache_policy=NO_CACHE, **DB)
def ingest_task(ctx: RunContext, done: Results) -> Ingested:
    """Validate the read tables, then stage, upsert into core and quarantine in one transaction."""
    result = pipeline.ingest_stage(ctx, done)
    for name, c in result.counts.items():
        get_run_logger().info("%s: read %d, loaded %d, rejected %d", name, c.read, c.loaded, c.rejected)
    return result


@task(name="read-core", cache_policy=NO_CACHE, **DB)
def core_task(ctx: RunContext, done: Results) -> CoreFrames | None:
    """Return core as frames for the report and model stages (this run's rows when they are all of core).

    None when no selected step needs them (reports built inside the warehouse, no model step).
    """
    result = pipeline.core_stage(ctx, done)
    if result is None:
        get_run_logger().info("core not read: the report tables are built inside the warehouse")
        return None
    get_run_logger().info("core frames from %s", result.origin)
    _log_done(ctx, "read_core")
    return result


@task(name="build-reports", cache_policy=NO_CACHE)
def reports_task(ctx: RunContext, done: Results) -> Frames:
    """Build the star schema and analytic tables."""
    result = pipeline.reports_stage(ctx, done)
    _log_done(ctx, "reports")
    return result


@task(name="write-insights", cache_policy=NO_CACHE)
def insights_task(ctx: RunContext, done: Results) -> Frames | None:
    """Write the ranked commentary."""
    return pipeline.insights_stage(ctx, done)


@task(name="publish-reports", cache_policy=NO_CACHE, **DB)
def publish_task(ctx: RunContext, done: Results) -> Published:
    """Replace rpt tables atomically, store model runs, export Parquet, write insights.md."""
    result = pipeline.publish_stage(ctx, done)
    _log_done(ctx, "publish")
    return result


@task(name="build-powerbi", cache_policy=NO_CACHE)
def powerbi_task(ctx: RunContext, done: Results) -> PowerBIProject:
    """Build the Power BI project pointing at this run's Parquet."""
    return pipeline.powerbi_stage(ctx, done)


#: stage name → its task; model stages run as fit-model tasks (flows/models.py)
TASKS: dict[str, Any] = {
    "read": read_task,
    "connect": connect_task,
    "ingest": ingest_task,
    "core": core_task,
    "reports": reports_task,
    "insights": insights_task,
    "publish": publish_task,
    "powerbi": powerbi_task,
}


def _check_plan() -> None:
    """Fail at import when the plan and the tasks disagree (a stage without a task, or a retry mismatch)."""
    for stage in pipeline.STAGES:
        if stage.model:
            continue
        task_ = TASKS[stage.name]
        if stage.database != bool(task_.retries):
            raise RuntimeError(f"task of stage {stage.name} must retry iff it is a database stage")


_check_plan()
