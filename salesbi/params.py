"""Typed parameters of a pipeline run, shared by the CLI, the library and the Prefect flows."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Step = Literal["ingest", "reports", "segments", "predictions", "forecast", "powerbi"]
ALL_STEPS: tuple[Step, ...] = ("ingest", "reports", "segments", "predictions", "forecast", "powerbi")


def available_cores() -> int:
    """Return the CPU cores this process may run on (its affinity mask; the machine's count elsewhere)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


#: order lines from which the ingest spills order_items and the report build streams core's lines:
#: measured on this machine, below it the whole frames do not set a run's peak (1M and 3M lines: the
#: streamed path took 7–13 % more time for no lower peak), at 10M lines it saves ~0.5 GB (docs/scaling.md)
DEFAULT_INGEST_SPILL_ROWS = 5_000_000


class RunOptions(BaseModel):
    """What a run does, without saying how to reach the warehouse: the Prefect flows' parameter form.

    Every field is described (the descriptions are the form's help texts) and
    has a default that works on a fresh checkout, except that the sample source
    has to be generated first (``salesbi generate --out var/sample``).
    """

    model_config = ConfigDict(extra="forbid")

    source: Path | None = Field(
        default=None,
        description=(
            "folder holding the company's CSV files (needed by the ingest step); "
            "for the sample company run `salesbi generate --out var/sample` once"
        ),
    )
    profile: str = Field(
        default="canonical", description="how to read the source: a profile name in profiles/, or a YAML path"
    )
    warehouse_secret: str | None = Field(
        default=None,
        description="name of a Prefect Secret block holding the warehouse's SQLAlchemy URL",
    )
    warehouse_env: str | None = Field(
        default=None,
        description=(
            "name of an environment variable (on the worker) holding the warehouse URL; "
            "with neither this nor a secret: $SALESBI_WAREHOUSE_URL, else SQLite under ./var/"
        ),
    )
    out_dir: Path = Field(
        default=Path("out"), description="folder for run_summary.json, Parquet, models and Power BI"
    )
    as_of: date | None = Field(
        default=None, description="report date YYYY-MM-DD; default: the day after the last order"
    )
    churn_months: int = Field(
        default=2, ge=1, le=24, description="months without an order that count as churn"
    )
    fiscal_year_start_month: int = Field(
        default=1, ge=1, le=12, description="first month of the fiscal year (1 = January)"
    )
    prediction_horizon_days: int = Field(
        default=90, ge=7, le=730, description="days ahead the customer predictions look"
    )
    forecast_frequency: Literal["D", "W", "M"] | None = Field(
        default=None, description="forecast period: D day, W week, M month; default: from the data"
    )
    forecast_horizon: int | None = Field(
        default=None, ge=1, le=366, description="periods to forecast; default: from the data"
    )
    steps: tuple[Step, ...] = Field(
        default=ALL_STEPS,
        description="which steps to run: ingest, reports, segments, predictions, forecast, powerbi",
    )
    random_state: int = Field(default=0, description="seed of the models (same seed, same results)")
    keep_rejects_runs: int = Field(
        default=30, ge=1, description="audit.rejected_rows keeps the rejects of this many newest runs"
    )
    week_start: Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"] = Field(
        default="MON", description="first day of a week in weekly forecasts"
    )
    warn_rejected_share: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="warn when a table has more than this share of its rows rejected "
        "(default: the profile's completeness.warn, else 0.02)",
    )
    max_rejected_share: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="fail the run when a table has more than this share of its rows rejected "
        "(default: the profile's completeness.fail, else 0.20)",
    )
    reports_in: Literal["python", "warehouse"] = Field(
        default="python",
        description=(
            "where the report tables are built: python (pandas, any warehouse) or warehouse "
            "(as SQL inside the warehouse: SQLite, PostgreSQL or SQL Server; see docs/scaling.md)"
        ),
    )
    task_runner: Literal["threads", "dask"] = Field(
        default="threads",
        description="how the Prefect flows run the model steps: threads in the flow's process, or Dask",
    )
    dask_address: str | None = Field(
        default=None,
        description="scheduler of an existing Dask cluster (tcp://host:8786); default: a local cluster",
    )
    dask_workers: int = Field(default=2, ge=1, le=256, description="workers of the local Dask cluster")
    model_threads: int = Field(
        default=1,
        ge=1,
        le=256,
        description=(
            "LightGBM threads per model fit; raise it only where the fits have cores to themselves "
            "(threads that share busy cores make fits several times slower)"
        ),
    )
    model_workers: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description=(
            "independent LightGBM fits of a model step trained side by side, each in its own thread "
            "with model_threads threads, and in `salesbi run` the model steps themselves (segments, "
            "predictions, forecast: at most this many at once; 1 runs them one after another, which "
            "holds less memory); the models do not depend on it; default: the cores this process may use"
        ),
    )
    connect_timeout: int = Field(
        default=15,
        ge=1,
        le=600,
        description="seconds to wait for the warehouse to accept a connection (SQLite: for its lock)",
    )
    lock_timeout: int = Field(
        default=0,
        ge=0,
        le=86_400,
        description=(
            "seconds a run waits for another run writing to the same output folder before failing "
            "(0: fail at once)"
        ),
    )

    ingest_mode: Literal["auto", "snapshot", "new_only", "full"] = Field(
        default="auto",
        description=(
            "how the ingest step treats a drop: snapshot (everything again: rows unchanged since the last "
            "load, by content hash, are counted unchanged and neither validated nor loaded), new_only (only "
            "orders on or after the newest order date in core), full (validate and load every row), auto "
            "(full into an empty core, new_only when every order is on or after that date, else snapshot)"
        ),
    )
    ingest_block_rows: int = Field(
        default=500_000,
        ge=1,
        description=(
            "rows of a table hashed, checked by Great Expectations and written to staging at a time: "
            "bounds the ingest's memory for long tables (order_items); the result does not depend on it"
        ),
    )
    ingest_spill_rows: int = Field(
        default=DEFAULT_INGEST_SPILL_ROWS,
        ge=0,
        description=(
            "order_items with at least this many lines is written to an Arrow file in the run's staging "
            "folder block by block as it is read, and validated, hashed and staged from there (never whole "
            "in memory; 0: always; under it the table stays a frame); the pandas report build then reads "
            "core's order lines in key order a batch at a time (so does salesbi report alone when core's "
            "order_items is this long). The outputs do not depend on it"
        ),
    )
    fact_spill_lines: int = Field(
        default=0,
        ge=0,
        description=(
            "the report step writes fact_order_lines to its Parquet file block by block as it builds it "
            "(never whole in memory) when it has at least this many lines (0: always; under it, the fact "
            "is kept as a frame); the model steps, insights and publish then read it from the file "
            "(docs/scaling.md). The outputs do not depend on it"
        ),
    )
    refit: Literal["auto", "always", "never"] = Field(
        default="auto",
        description=(
            "when the model steps train their models: always (the weekly retrain), never (score with the "
            "stored models; train only where none is stored), auto (score with a stored model unless it "
            "is older than model_max_age_days or its monitored error drifted past model_drift_threshold)"
        ),
    )
    model_max_age_days: int = Field(
        default=7,
        ge=0,
        le=3650,
        description="with refit=auto, a stored model older than this many days is retrained",
    )
    model_drift_threshold: float = Field(
        default=0.25,
        ge=0,
        le=100,
        description=(
            "with refit=auto, a stored model is retrained when its monitored error on the data since it "
            "was trained exceeds its error at training by more than this fraction (0.25: 25 % worse)"
        ),
    )

    @field_validator("steps", mode="before")
    @classmethod
    def _split_steps(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(s.strip() for s in value.split(",") if s.strip())
        return value

    @property
    def parquet_dir(self) -> Path:
        """Return the folder of the Parquet export Power BI reads: ``<out>/powerbi/data``."""
        return self.out_dir / "powerbi" / "data"

    @property
    def models_dir(self) -> Path:
        """Return the model store folder: ``<out>/models``."""
        return self.out_dir / "models"

    @property
    def fit_workers(self) -> int:
        """Return how many independent model fits run side by side: ``model_workers``, else the cores."""
        if self.model_workers is not None:
            return self.model_workers
        return available_cores()


class PipelineParams(RunOptions):
    """Everything a run needs, including the warehouse URL (CLI and library; never a flow parameter)."""

    warehouse_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default $SALESBI_WAREHOUSE_URL, else SQLite under ./var/",
        repr=False,
    )

    @model_validator(mode="after")
    def _reports_in_can_run_here(self) -> PipelineParams:
        from salesbi.warehouse.engine import resolve_url

        # the URL as the run will resolve it: given, else $SALESBI_WAREHOUSE_URL, else SQLite;
        # on SQLite the linked library must have window functions (refused before anything runs)
        if self.reports_in == "warehouse" and resolve_url(self.warehouse_url).strip().lower().startswith(
            "sqlite"
        ):
            from salesbi.reports.sql.sqlite import MIN_VERSION, library_problem

            problem = library_problem()
            if problem:
                need = ".".join(map(str, MIN_VERSION))
                raise ValueError(
                    f"reports_in='warehouse' cannot run on this SQLite: {problem}; it needs SQLite {need} "
                    "or later: use reports_in='python' (the default) or a PostgreSQL / SQL Server warehouse"
                )
        return self
