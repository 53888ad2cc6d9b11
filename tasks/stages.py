"""One Prefect task per stage of the run plan (:data:`salesbi.pipeline.STAGES`), same name.

The :class:`salesbi.pipeline.Run` state is passed in-process (thread task
runner), so caching is off: a stage's result is its side effect on the run.
Database stages (``Stage.database``) retry with backoff on transient errors only
(:mod:`tasks.retry`); a stage function leaves nothing half-set when it fails, so
a retry starts clean.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from salesbi import pipeline
from salesbi.pipeline import Run
from tasks.retry import DB_RETRY_DELAYS, retry_on_transient

DB: dict[str, Any] = {
    "retries": len(DB_RETRY_DELAYS),
    "retry_delay_seconds": DB_RETRY_DELAYS,
    "retry_condition_fn": retry_on_transient,
}


def _log_done(run: Run, step: str) -> None:
    seconds = run.summary.timings.get(step)
    get_run_logger().info("%s done%s", step, f" in {seconds:.1f}s" if seconds is not None else "")


@task(name="read-source", cache_policy=NO_CACHE)
def read_task(run: Run) -> None:
    """Read the source through its profile (no retry: structural faults are the data's)."""
    pipeline.read_stage(run)
    for name, t in run.source.tables.items():
        get_run_logger().info("read %s: %d rows", name, t.read)


@task(name="connect-warehouse", cache_policy=NO_CACHE, **DB)
def connect_task(run: Run) -> None:
    """Open the warehouse (bounded by ``connect_timeout``), create what is missing and record the run."""
    pipeline.connect_stage(run)
    _log_done(run, "connect")


@task(name="validate-and-load", cache_policy=NO_CACHE, **DB)
def ingest_task(run: Run) -> None:
    """Validate the read tables, then stage, upsert into core and quarantine in one transaction."""
    pipeline.ingest_stage(run)
    for name, c in run.summary.tables.items():
        get_run_logger().info("%s: read %d, loaded %d, rejected %d", name, c.read, c.loaded, c.rejected)


@task(name="read-core", cache_policy=NO_CACHE, **DB)
def core_task(run: Run) -> None:
    """Load core into frames for the report and model stages."""
    pipeline.core_stage(run)
    _log_done(run, "read_core")


@task(name="build-reports", cache_policy=NO_CACHE)
def reports_task(run: Run) -> None:
    """Build the star schema and analytic tables."""
    pipeline.reports_stage(run)
    _log_done(run, "reports")


@task(name="write-insights", cache_policy=NO_CACHE)
def insights_task(run: Run) -> None:
    """Write the ranked commentary."""
    pipeline.insights_stage(run)


@task(name="publish-reports", cache_policy=NO_CACHE, **DB)
def publish_task(run: Run) -> None:
    """Replace rpt tables atomically, store model runs, export Parquet, write insights.md."""
    pipeline.publish_stage(run)
    _log_done(run, "publish")


@task(name="build-powerbi", cache_policy=NO_CACHE)
def powerbi_task(run: Run) -> None:
    """Build the Power BI project pointing at this run's Parquet."""
    pipeline.powerbi_stage(run)


#: stage name → its task; model stages run in the fit-models subflow (flows/models.py)
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
