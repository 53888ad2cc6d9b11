"""What flows between the stages of a run: a read-only context and one typed, immutable result per stage.

A stage is a function ``(RunContext, Results) -> StageResult | None``: it reads
the results of the stages before it (never changes them) and returns its own.
The executor (:func:`salesbi.pipeline.execute`) adds each result to a new
:class:`Results`; nothing else is handed from stage to stage. The run's
:class:`~salesbi.runlog.RunSummary` in the context is its journal (timings,
counts, warnings, output paths), written by the stages and read only by the
run's record (``audit.runs``, ``run_summary.json``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from salesbi.errors import SalesBIError
from salesbi.modelrun import ModelRun
from salesbi.params import PipelineParams
from salesbi.runlog import RunSummary, TableCounts

if TYPE_CHECKING:
    from salesbi.completeness import Completeness
    from salesbi.fact_spill import SpilledTable
    from salesbi.incremental_reports import ChangedOrders
    from salesbi.reading.reader import SourceData
    from salesbi.reports.line_blocks import OrderLineBlocks
    from salesbi.segmentation.history import OrderHistory

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunContext:
    """What every stage of one run may read: its parameters, its journal and the progress callback."""

    params: PipelineParams
    summary: RunSummary
    progress: Progress | None = None

    @property
    def run_id(self) -> str:
        """Return the run id."""
        return self.summary.run_id

    def tick(self, label: str, done: int, total: int) -> None:
        """Report progress to the CLI's progress bar, if any."""
        if self.progress:
            self.progress(label, done, total)


class StageResult:
    """Base of every stage's result (each is a frozen dataclass)."""


@dataclass(frozen=True)
class SourceRead(StageResult):
    """The ``read`` stage's result: the source's tables as read through the profile."""

    data: SourceData


@dataclass(frozen=True)
class Warehouse(StageResult):
    """The ``connect`` stage's result: the open warehouse and its metadata."""

    engine: Engine
    metadata: sa.MetaData


@dataclass(frozen=True)
class Ingested(StageResult):
    """The ``ingest`` stage's result: per-table counts, quarantined rows, completeness, validation summary.

    ``core`` holds the seven core tables as frames when the load left core holding
    exactly the rows validated in this run (every core table's row count equals the
    accepted rows loaded into it); the core stage then hands them on instead of
    reading core back. ``None`` when core holds other rows too (earlier drops), and
    once the core stage has taken them (:func:`salesbi.pipeline.release`).
    """

    counts: Mapping[str, TableCounts]
    rejected_rows: pd.DataFrame
    completeness: Completeness | None
    #: ``validation.md`` as written (the Prefect artifact shows it)
    validation_summary: str
    core: Mapping[str, pd.DataFrame] | None = None
    #: with ``core``: the core tables whose accepted rows stayed in the read's spill file
    #: (:class:`salesbi.reading.spilled.SpilledRows`), read back by the core stage when it needs them
    core_spilled: Mapping[str, Any] = field(default_factory=dict)
    #: the orders validated in this run and their state before the load (the monthly report tables
    #: splice the affected months: ``salesbi.incremental_reports``); None when reports are not built
    changed_orders: ChangedOrders | None = None


@dataclass(frozen=True)
class CoreFrames(StageResult):
    """The ``core`` stage's result: the seven core tables as typed frames, and where they came from.

    ``lines``: core's ``order_items`` read in key order a batch at a time
    (:class:`~salesbi.reports.line_blocks.OrderLineBlocks`) when it is long: then ``tables`` has
    no ``order_items`` frame (the table is never whole in memory).
    """

    tables: Mapping[str, pd.DataFrame]
    origin: Literal["this run", "warehouse"]
    lines: OrderLineBlocks | None = None


@dataclass(frozen=True)
class Frames(StageResult):
    """The result of a stage that builds rpt tables (reports, insights): rpt name → frame.

    ``spilled``: rpt tables of the stage written to Parquet instead of held as frames (the
    report step's ``fact_order_lines``: :mod:`salesbi.fact_spill`), rpt name → file.
    ``fact_build``: push-down (``reports_in="warehouse"``): the run's build table of the fact's
    lines in the warehouse (:mod:`salesbi.reports.sql.fact_build`), which the model steps, the
    insights and the publish read instead of computing the lines from core again.
    """

    frames: Mapping[str, pd.DataFrame]
    spilled: Mapping[str, SpilledTable] = field(default_factory=dict)
    fact_build: sa.Table | None = None


@dataclass(frozen=True)
class ModelInputs(StageResult):
    """The model steps' and the insights' inputs at order grain, computed once for all of them.

    Computed from the fact's lines batch by batch (:func:`salesbi.pipeline.shared_model_inputs`,
    :mod:`salesbi.order_grain`), each equal to what the warehouse sends in push-down mode:
    ``history``: the orders and the (customer, product line) first uses
    (``salesbi.segmentation.history.OrderHistory``: segments, predictions); ``days``: the
    forecast's rows per day, country, product line and office; ``insights``: the fact per
    status and cancelled flag. None: not needed by any remaining step. Released once no model
    step (nor the insights) remains.
    """

    history: OrderHistory | None = None
    days: pd.DataFrame | None = None
    insights: pd.DataFrame | None = None


@dataclass(frozen=True)
class ModelOutput(StageResult):
    """A model stage's result: its rpt frames, its ``ml.model_runs`` records and the models to store."""

    step: str
    frames: Mapping[str, pd.DataFrame]
    model_runs: tuple[ModelRun, ...] = ()
    models: Mapping[str, Any] = field(default_factory=dict)
    #: refitted or scored with the stored model, and why (``salesbi.incremental_models``); None: always fitted
    decision: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Published(StageResult):
    """The ``publish`` stage's result: the rpt tables written (with row counts) and the files."""

    tables: Mapping[str, int]
    parquet: Path
    models: Mapping[str, Path]
    files: tuple[Path, ...]
    #: the frames exactly as published (what artifacts may show)
    frames: Mapping[str, pd.DataFrame]


@dataclass(frozen=True)
class PowerBIProject(StageResult):
    """The ``powerbi`` stage's result: the folder of the generated Power BI project."""

    path: Path


R = TypeVar("R", bound=StageResult)


class MissingStageResult(SalesBIError):
    """A stage needs the result of a stage that did not run in this plan."""


@dataclass(frozen=True)
class Results:
    """The results of the stages run so far, by stage name, in run order (immutable)."""

    by_stage: Mapping[str, StageResult] = field(default_factory=lambda: MappingProxyType({}))

    def add(self, stage: str, result: StageResult | None) -> Results:
        """Return new results with ``stage``'s result added (unchanged when it returned nothing)."""
        if result is None:
            return self
        return Results(MappingProxyType({**self.by_stage, stage: result}))

    def replace(self, stage: str, result: StageResult | None) -> Results:
        """Return new results with ``stage``'s result replaced (removed when ``result`` is None)."""
        items = ((k, result if k == stage else v) for k, v in self.by_stage.items())
        return Results(MappingProxyType({k: v for k, v in items if v is not None}))

    def __iter__(self) -> Iterator[StageResult]:
        return iter(self.by_stage.values())

    def find(self, kind: type[R]) -> R | None:
        """Return the latest result of type ``kind``, None when no stage produced one."""
        found = [r for r in self if isinstance(r, kind)]
        return found[-1] if found else None

    def need(self, kind: type[R], by: str) -> R:
        """Return the latest result of type ``kind``; raise a clear error naming stage ``by`` when absent."""
        found = self.find(kind)
        if found is None:
            raise MissingStageResult(
                f"stage {by!r} needs a {kind.__name__} result that no earlier stage of this run produced",
                hint="run the plan from salesbi.pipeline.plan(...) (it orders the stages)",
            )
        return found

    def frames(self) -> dict[str, pd.DataFrame]:
        """Return every rpt frame built so far (reports, models, insights); later stages win."""
        out: dict[str, pd.DataFrame] = {}
        for r in self:
            if isinstance(r, Frames | ModelOutput):
                out.update(r.frames)
        return out

    def spilled(self) -> dict[str, SpilledTable]:
        """Return every rpt table spilled to Parquet so far (:mod:`salesbi.fact_spill`), by name."""
        out: dict[str, SpilledTable] = {}
        for r in self:
            if isinstance(r, Frames):
                out.update(r.spilled)
        return out

    def model_runs(self) -> list[ModelRun]:
        """Return the ``ml.model_runs`` records of every model stage that ran."""
        return [m for r in self if isinstance(r, ModelOutput) for m in r.model_runs]

    def models(self) -> dict[str, Any]:
        """Return the fitted models to store, by model name."""
        return {k: v for r in self if isinstance(r, ModelOutput) for k, v in r.models.items()}
