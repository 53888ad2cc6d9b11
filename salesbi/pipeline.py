"""The whole run as plain functions: ingest → reports → models → publish.

Each stage is a function of a :class:`Run` (the state flowing between stages)
so that the CLI calls them in order and the Prefect flows wrap each one in a
task, with no logic duplicated. Nothing here imports Prefect.

Failure contract: a failing stage marks ``audit.runs`` failed with the stage
and reason, writes ``run_summary.json`` with status ``failed``, and re-raises;
the previous ``rpt`` tables and Parquet stay in place because publishing is
the last stage and is itself atomic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from salesbi import contract
from salesbi.errors import SalesBIError, StepSkipped
from salesbi.modelrun import ModelRun
from salesbi.params import PipelineParams
from salesbi.runlog import RunSummary, new_run_id, record_end, record_start, utcnow
from salesbi.types import conform
from salesbi.warehouse.engine import create_engine, redact, resolve_url
from salesbi.warehouse.load import read_table

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


@dataclass
class Run:
    """State of one pipeline run, handed from stage to stage."""

    params: PipelineParams
    summary: RunSummary
    engine: Engine | None = None
    metadata: sa.MetaData | None = None
    source: Any = None  # salesbi.reading.reader.SourceData
    outcome: Any = None  # salesbi.validation ValidationOutcome
    core: dict[str, pd.DataFrame] | None = None
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    model_runs: list[ModelRun] = field(default_factory=list)
    models: dict[str, Any] = field(default_factory=dict)
    progress: Progress | None = None

    @property
    def run_id(self) -> str:
        """Return the run id."""
        return self.summary.run_id

    def tick(self, label: str, done: int, total: int) -> None:
        """Report progress of the current stage to the CLI's progress bar, if any."""
        if self.progress:
            self.progress(label, done, total)


def start_run(params: PipelineParams, *, flow: str = "sales_pipeline", run_id: str | None = None) -> Run:
    """Return a new Run for ``params`` (nothing is read or connected yet)."""
    summary = RunSummary(
        run_id=run_id or new_run_id(),
        flow=flow,
        source=str(params.source) if params.source else None,
        profile=params.profile if "ingest" in params.steps else None,
        warehouse=redact(resolve_url(params.warehouse_url)),
    )
    return Run(params=params, summary=summary)


def read_stage(run: Run) -> None:
    """Read the source through its profile (structural faults raise here, before any connection)."""
    from salesbi.ingest import read_step

    if run.params.source is None:
        raise SalesBIError("the ingest step needs a source folder", hint="pass --source DIR")
    with run.summary.timed("read"):
        run.source = read_step(run.params.source, run.params.profile)
        run.summary.notes.extend(run.source.notes)


def connect_stage(run: Run) -> None:
    """Open the warehouse, create missing schemas/tables and record the run as started."""
    from salesbi.ingest import prepare_warehouse

    with run.summary.timed("connect"):
        run.engine = create_engine(run.params.warehouse_url)
        run.metadata = prepare_warehouse(run.engine)
        record_start(run.engine, run.summary)


def ingest_stage(run: Run) -> None:
    """Validate the read tables and load them: staging, core upsert, quarantine (one transaction)."""
    from salesbi.ingest import core_keys, load_step, validate_step
    from salesbi.runlog import last_good_counts

    assert run.engine is not None and run.metadata is not None and run.source is not None
    with run.summary.timed("validate"):
        run.outcome = validate_step(
            run.source,
            run_id=run.run_id,
            previous_counts=last_good_counts(run.engine),
            known_keys=core_keys(run.engine, run.metadata),
        )
    with run.summary.timed("load"):
        result = load_step(run.engine, run.metadata, run.source, run.outcome, run_id=run.run_id)
    run.summary.tables = result.counts
    out = run.params.out_dir
    out.mkdir(parents=True, exist_ok=True)
    with run.summary.timed("validation_report"):
        from salesbi.validation import report as vreport

        (out / "validation.md").write_text(vreport.render_validation_summary(run.outcome), encoding="utf-8")
        run.summary.outputs["validation_summary"] = str((out / "validation.md").resolve())
        docs = vreport.build_data_docs(run.outcome, out / "data_docs")
        run.summary.outputs["data_docs"] = str(Path(docs).resolve())


def core_stage(run: Run) -> None:
    """Load the seven core tables from the warehouse into typed frames."""
    assert run.engine is not None and run.metadata is not None
    with run.summary.timed("read_core"):
        core: dict[str, pd.DataFrame] = {}
        with run.engine.connect() as conn:
            for spec in contract.TABLES:
                core[spec.name] = conform(read_table(conn, run.metadata.tables[f"core.{spec.name}"]), spec)
        run.core = core
    if not len(core["orders"]):
        raise SalesBIError(
            "the warehouse has no orders in core", hint="run the ingest step first (salesbi ingest ...)"
        )


def reports_stage(run: Run) -> None:
    """Build the star schema and analytic tables from core."""
    from salesbi.reports.build import ReportParams, build_reports

    assert run.core is not None
    with run.summary.timed("reports"):
        params = ReportParams(
            as_of=run.params.as_of,
            churn_months=run.params.churn_months,
            fiscal_year_start_month=run.params.fiscal_year_start_month,
        )
        run.frames.update(build_reports(run.core, params))


def fact_of(run: Run) -> pd.DataFrame:
    """Return the run's fact_order_lines frame (built from core when reports did not run)."""
    if "fact_order_lines" in run.frames:
        return run.frames["fact_order_lines"]
    from salesbi.reports.fact import build_fact_order_lines

    assert run.core is not None
    return build_fact_order_lines(run.core)


def fit_segments(fact: pd.DataFrame, core: dict[str, pd.DataFrame], params: PipelineParams) -> Any:
    """Return the SegmentationResult for ``fact`` (pure: safe to run in another process)."""
    from salesbi.segmentation import segment_customers

    return segment_customers(
        fact, core["customers"], core["employees"], as_of=params.as_of, random_state=params.random_state
    )


def fit_predictions(fact: pd.DataFrame, core: dict[str, pd.DataFrame], params: PipelineParams) -> Any:
    """Return the PredictionResult for ``fact`` (pure: safe to run in another process)."""
    from salesbi.prediction import predict_customer_sales

    return predict_customer_sales(
        fact,
        core["customers"],
        employees=core["employees"],
        as_of=params.as_of,
        horizon_days=params.prediction_horizon_days,
        random_state=params.random_state,
        threads=params.model_threads,
    )


def fit_forecast(
    fact: pd.DataFrame, core: dict[str, pd.DataFrame], params: PipelineParams, run_id: str
) -> Any:
    """Return the ForecastResult for ``fact`` (pure: safe to run in another process)."""
    from salesbi.forecasting import forecast_sales
    from salesbi.forecasting.lgbm import LightGBMConfig

    return forecast_sales(
        fact,
        core["customers"],
        core["product_lines"],
        core["offices"],
        run_id=run_id,
        frequency=params.forecast_frequency,
        horizon=params.forecast_horizon,
        random_state=params.random_state,
        lgbm_config=LightGBMConfig(random_state=params.random_state, num_threads=params.model_threads),
    )


#: model step → (fit function, the result attributes that are rpt tables)
MODEL_FITS: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "segments": (fit_segments, ("customer_segments", "segment_summary")),
    "predictions": (fit_predictions, ("customer_predictions",)),
    "forecast": (fit_forecast, ("sales_forecast", "forecast_accuracy")),
}


def model_inputs(run: Run, step: str) -> tuple[Any, ...]:
    """Return the arguments of the fit function of model ``step`` for this run."""
    assert run.core is not None
    args: tuple[Any, ...] = (fact_of(run), run.core, run.params)
    return (*args, run.run_id) if step == "forecast" else args


def apply_model_result(run: Run, step: str, result: Any) -> None:
    """Merge a fit function's result into the run: rpt frames, model runs, models to store."""
    for name in MODEL_FITS[step][1]:
        run.frames[name] = getattr(result, name)
    if step == "forecast":
        _forecast_calendar(run)
    run.model_runs.extend(result.model_runs)
    run.models.update(getattr(result, "models", None) or {})


def _forecast_calendar(run: Run) -> None:
    """Add the month-grain forecast and stretch ``dim_date`` over the whole forecast horizon."""
    from salesbi.forecasting.monthly import build_monthly_forecast
    from salesbi.reports.dims import extend_dim_date

    forecast = run.frames["sales_forecast"]
    run.frames["sales_forecast_monthly"] = build_monthly_forecast(forecast)
    if "dim_date" in run.frames and not forecast.empty:
        last = pd.Timestamp(forecast["date"].max()) + pd.offsets.MonthEnd(0)
        run.frames["dim_date"] = extend_dim_date(
            run.frames["dim_date"], last.date(), run.params.fiscal_year_start_month
        )


def _model_stage(run: Run, step: str) -> None:
    with run.summary.timed(step):
        apply_model_result(run, step, MODEL_FITS[step][0](*model_inputs(run, step)))


def segments_stage(run: Run) -> None:
    """Segment customers (RFM + clusters) and recommend an action per customer."""
    _model_stage(run, "segments")


def predictions_stage(run: Run) -> None:
    """Predict each customer's sales and order probability over the next horizon."""
    _model_stage(run, "predictions")


def forecast_stage(run: Run) -> None:
    """Forecast net sales per series with LightGBM and baselines, champion per series."""
    _model_stage(run, "forecast")


def insights_stage(run: Run) -> None:
    """Write the ranked commentary from every table built so far."""
    from salesbi.reports.build import ReportParams
    from salesbi.reports.insights import build_insights

    if "fact_order_lines" not in run.frames:
        return
    with run.summary.timed("insights"):
        params = ReportParams(as_of=run.params.as_of, churn_months=run.params.churn_months)
        run.frames["insights"] = build_insights(run.frames, params)


def publish_stage(run: Run) -> None:
    """Replace the rpt tables atomically, store model runs, export Parquet and write insights.md."""
    import shutil

    from salesbi.modelstore import save_all
    from salesbi.publish import record_model_runs, replace_tables, stage_parquet, swap_in
    from salesbi.reports.insights import render_insights_markdown
    from salesbi.rpt import rpt_tables

    assert run.engine is not None and run.metadata is not None
    out = run.params.out_dir
    with run.summary.timed("publish"):
        if run.summary.tables:
            from salesbi.reports.data_quality import build_data_quality

            rejected = getattr(run.outcome, "rejected_rows", None)
            run.frames["data_quality"] = build_data_quality(run.summary, rejected, utcnow())
        tables = rpt_tables()
        # Parquet first, aside; then the one warehouse transaction; then the folder swap
        staged = stage_parquet(run.frames, tables, run.params.parquet_dir)
        try:
            written = replace_tables(run.engine, run.metadata, run.frames, tables)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        folder = swap_in(staged, run.params.parquet_dir)
        run.summary.outputs["rpt_tables"] = written
        run.summary.outputs["parquet"] = str(folder.resolve())
        if run.model_runs:
            record_model_runs(run.engine, run.metadata, run.run_id, run.model_runs)
        if run.models:
            # only after the tables landed: a failed run never replaces the models the API serves
            saved = save_all(run.models, run.params.models_dir)
            run.summary.outputs["models"] = {name: str(path.resolve()) for name, path in saved.items()}
        if "insights" in run.frames:
            path = out / "insights.md"
            path.write_text(render_insights_markdown(run.frames["insights"]), encoding="utf-8")
            run.summary.outputs["insights"] = str(path.resolve())


def powerbi_stage(run: Run) -> None:
    """Build a copy of the Power BI project pointing at this run's Parquet folder."""
    from salesbi.powerbi import build_powerbi_project

    with run.summary.timed("powerbi"):
        target = run.params.out_dir / "powerbi"
        project = build_powerbi_project(target, parquet_folder=str(run.params.parquet_dir.resolve()))
        run.summary.outputs["powerbi_project"] = str(Path(project).resolve())


@contextmanager
def recorded(run: Run) -> Iterator[Run]:
    """Finish the run's record whatever happens: audit.runs row and run_summary.json.

    On error the run is marked failed with the failing step and reason, then the
    error propagates.
    """
    try:
        yield run
        run.summary.status = run.summary.final_status()
    except BaseException as exc:
        run.summary.status = "failed"
        run.summary.error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        raise
    finally:
        run.summary.finished_at = utcnow()
        path = run.params.out_dir / "run_summary.json"
        run.summary.outputs.setdefault("run_summary", str(path.resolve()))
        run.summary.outputs.setdefault("warehouse", run.summary.warehouse)
        if run.engine is not None:
            try:
                record_end(run.engine, run.summary)
            except sa.exc.SQLAlchemyError as db_exc:  # the database itself may be what failed
                log.error("could not record the end of run %s in audit.runs: %s", run.run_id, db_exc)
        run.summary.write_json(run.params.out_dir)


STAGES_AFTER_CORE: tuple[tuple[str, Callable[[Run], None]], ...] = (
    ("reports", reports_stage),
    ("segments", segments_stage),
    ("predictions", predictions_stage),
    ("forecast", forecast_stage),
)


def run_pipeline(
    params: PipelineParams,
    *,
    progress: Progress | None = None,
    flow: str = "sales_pipeline",
    run_id: str | None = None,
) -> RunSummary:
    """Run the selected steps end to end and return the run summary (also written to disk)."""
    run = start_run(params, flow=flow, run_id=run_id)
    run.progress = progress
    steps = set(params.steps)
    plan: list[tuple[str, Callable[[Run], None]]] = []
    if "ingest" in steps:
        plan += [("read", read_stage), ("connect", connect_stage), ("ingest", ingest_stage)]
    else:
        plan += [("connect", connect_stage)]
    needs_core = steps & {"reports", "segments", "predictions", "forecast"}
    if needs_core:
        plan.append(("core", core_stage))
    plan += [(name, fn) for name, fn in STAGES_AFTER_CORE if name in steps]
    if needs_core:
        plan += [("insights", insights_stage), ("publish", publish_stage)]
    if "powerbi" in steps:
        plan.append(("powerbi", powerbi_stage))
    with recorded(run):
        for i, (name, fn) in enumerate(plan):
            run.tick(name, i, len(plan))
            log.info("run %s: %s", run.run_id, name)
            try:
                fn(run)
            except StepSkipped as skipped:
                # the step cannot run on this data: the run goes on and its status says so
                run.summary.failed_step = None
                run.summary.warn(name, skipped.message, kind="skipped")
                log.warning("run %s: step %s skipped: %s", run.run_id, name, skipped.message)
        run.tick("done", len(plan), len(plan))
    return run.summary
