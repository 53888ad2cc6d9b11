"""Typed parameters of a pipeline run, shared by the CLI, the library and the Prefect flows."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Step = Literal["ingest", "reports", "segments", "predictions", "forecast", "powerbi"]
ALL_STEPS: tuple[Step, ...] = ("ingest", "reports", "segments", "predictions", "forecast", "powerbi")


class PipelineParams(BaseModel):
    """Everything a run needs; every field has a safe default except the source folder."""

    model_config = ConfigDict(extra="forbid")

    source: Path | None = Field(
        default=None, description="folder holding the company's CSV files (needed by the ingest step)"
    )
    profile: str = Field(default="canonical", description="profile name in profiles/, or a path to a YAML")
    warehouse_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default $SALESBI_WAREHOUSE_URL, else SQLite under ./var/",
        repr=False,
    )
    warehouse_secret: str | None = Field(
        default=None,
        description="name of a Prefect Secret block holding the warehouse URL (used by the Prefect flows)",
    )
    out_dir: Path = Field(default=Path("out"), description="where summaries, Parquet and Power BI go")
    as_of: date | None = Field(default=None, description="as-of date; default: the day after the last order")
    churn_months: int = Field(
        default=2, ge=1, le=24, description="months without an order that count as churn"
    )
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    prediction_horizon_days: int = Field(default=90, ge=7, le=730)
    forecast_frequency: Literal["D", "W", "M"] | None = Field(
        default=None, description="default: from the data"
    )
    forecast_horizon: int | None = Field(
        default=None, ge=1, le=366, description="periods; default: from the data"
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
    steps: tuple[Step, ...] = Field(default=ALL_STEPS, description="which steps to run")
    random_state: int = 0
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
