"""The whole run as plain functions: ingest → reports → models → publish.

The run plan is declared once, in :data:`STAGES`: each :class:`Stage` says
what it needs, what it produces, whether it publishes, and which ``--steps``
select it. :func:`plan` picks the stages of a step selection and
:func:`execute` runs them; ``salesbi run`` calls each stage function directly,
the Prefect flows call the task of the same name (``tasks.stages.TASKS``)
through the same :func:`execute`, so both run the same stages in the same
order. Each stage is a function of a :class:`Run` (the state flowing between
stages). Nothing here imports Prefect.

Failure contract: a failing stage marks ``audit.runs`` failed with the stage
and reason, writes ``run_summary.json`` with status ``failed``, and re-raises;
the previous ``rpt`` tables and Parquet stay in place because publishing is
the last stage and is itself atomic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from salesbi import contract
from salesbi.errors import SalesBIError, StepSkipped
from salesbi.memory import release_freed_memory  # issue-18 memory hook
from salesbi.modelrun import ModelRun
from salesbi.params import ALL_STEPS, PipelineParams
from salesbi.runlock import run_lock
from salesbi.runlog import RunSummary, mark_crashed, new_run_id, record_end, record_start, utcnow
from salesbi.types import conform
from salesbi.warehouse.engine import connect_failure, create_engine, parse_url, redact, resolve_url
from salesbi.warehouse.load import read_table, read_table_fast

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
    #: model outputs already in rpt, read for the insights when the models did not run
    stored: dict[str, pd.DataFrame] = field(default_factory=dict)
    published: bool = False
    progress: Progress | None = None
    completeness: Any = None  # salesbi.completeness.Completeness of this run's ingest

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


#: the sample company's folder on a fresh checkout, and the command that creates it
SAMPLE_SOURCE = Path("var") / "sample"


def read_stage(run: Run) -> None:
    """Read the source through its profile (structural faults raise here, before any connection)."""
    from salesbi.ingest import read_step

    source = run.params.source
    if source is None:
        raise SalesBIError("the ingest step needs a source folder", hint="pass --source DIR")
    if not Path(source).is_dir():
        run.summary.failed_step = "read"
        raise SalesBIError(
            "the source folder does not exist",
            file=source,
            hint=(
                f"generate the sample company first: salesbi generate --out {source}"
                if Path(source) == SAMPLE_SOURCE or Path(source).resolve() == SAMPLE_SOURCE.resolve()
                else "point the source parameter at the folder the CSV drop lands in"
            ),
        )
    with run.summary.timed("read"):
        run.source = read_step(source, run.params.profile)
        run.summary.notes.extend(run.source.notes)


def open_warehouse(params: PipelineParams) -> tuple[Engine, sa.MetaData]:
    """Connect, create missing schemas/tables; return engine and metadata, or raise WarehouseUnavailable.

    Nothing is left half-open: on failure the engine is disposed. The error
    names the warehouse (password hidden), the driver's reason and what to do;
    its cause is the driver's exception, so a retry policy can judge it.
    """
    from salesbi.ingest import prepare_warehouse

    engine = create_engine(params.warehouse_url, connect_timeout=params.connect_timeout)
    try:
        metadata = prepare_warehouse(engine)
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        raise connect_failure(engine.url, exc) from exc
    except BaseException:
        engine.dispose()
        raise
    return engine, metadata


def connect_stage(run: Run) -> None:
    """Open the warehouse, create missing schemas/tables, mark dead runs crashed and record this one.

    Idempotent: the run gets its engine only once everything succeeded, so a
    retry after a failure connects again from scratch.
    """
    if run.engine is not None:
        return
    with run.summary.timed("connect"):
        engine, metadata = open_warehouse(run.params)
        try:
            for gone in mark_crashed(engine):
                log.warning("run %s was left running by a process that is gone: marked crashed", gone)
            record_start(engine, run.summary)
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            raise connect_failure(engine.url, exc) from exc
        run.engine, run.metadata = engine, metadata
    from salesbi.publish import recover

    if recovered := recover(run.engine, run.params.parquet_dir):  # a publish interrupted earlier
        run.summary.notes.append(f"an interrupted earlier publish was {recovered}")


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
    with run.summary.timed("completeness"):
        from salesbi.completeness import check_run

        check_run(run)  # warns, or fails before the load when too much was rejected
    with run.summary.timed("load"):
        result = load_step(
            run.engine,
            run.metadata,
            run.source,
            run.outcome,
            run_id=run.run_id,
            keep_rejects_runs=run.params.keep_rejects_runs,
        )
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
                table = run.metadata.tables[f"core.{spec.name}"]
                core[spec.name] = conform(read_table_fast(conn, table), spec)
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
        week_start=params.week_start,
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
        from salesbi.completeness import completeness_frame

        run.stored = stored_model_outputs(run)
        tables = {**run.stored, **run.frames}
        completeness = completeness_frame(run)  # the first section of the insights
        if completeness is not None:
            tables["run_completeness"] = completeness
        run.frames["insights"] = build_insights(tables, params)


#: rpt tables the model steps write, read back for the insights when the models did not run
MODEL_TABLES: tuple[str, ...] = tuple(t for _, tables in MODEL_FITS.values() for t in tables)


def stored_model_outputs(run: Run) -> dict[str, pd.DataFrame]:
    """Return the model tables this run did not build, as last published in rpt (empty ones left out)."""
    from salesbi.rpt import rpt_tables

    missing = [name for name in MODEL_TABLES if name not in run.frames]
    if not missing or run.engine is None or run.metadata is None:
        return {}
    specs = {t.name: t for t in rpt_tables()}
    out: dict[str, pd.DataFrame] = {}
    inspector = sa.inspect(run.engine)
    with run.engine.connect() as conn:
        for name in missing:
            spec = specs.get(name)
            if spec is None or not inspector.has_table(name, schema="rpt"):
                continue
            frame = conform(read_table(conn, run.metadata.tables[spec.qualified_name]), spec)
            if len(frame):
                out[name] = frame
    return out


def publish_stage(run: Run) -> None:
    """Publish rpt tables, Parquet, model runs, models and insights.md all or nothing (salesbi.publish)."""
    from salesbi.publish import publish
    from salesbi.reports.insights import render_insights_markdown
    from salesbi.rpt import rpt_tables

    assert run.engine is not None and run.metadata is not None
    out = run.params.out_dir
    with run.summary.timed("publish"):
        if run.summary.tables:
            from salesbi.reports.data_quality import build_data_quality

            rejected = getattr(run.outcome, "rejected_rows", None)
            run.frames["data_quality"] = build_data_quality(run.summary, rejected, utcnow())
        files = {}
        if "insights" in run.frames:
            files[out / "insights.md"] = render_insights_markdown(run.frames["insights"])
        done = publish(
            run.engine,
            run.metadata,
            run_id=run.run_id,
            frames=run.frames,
            definitions=rpt_tables(),
            folder=run.params.parquet_dir,
            model_runs=run.model_runs,
            models=run.models,
            models_dir=run.params.models_dir,
            files=files,
        )
        run.summary.outputs["rpt_tables"] = done.tables
        run.summary.outputs["parquet"] = str(done.parquet)
        if done.models:
            run.summary.outputs["models"] = {name: str(path) for name, path in done.models.items()}
        if files:
            run.summary.outputs["insights"] = str(done.files[0])
        run.published = True
        run.summary.outputs["published_by"] = run.run_id


def powerbi_stage(run: Run) -> None:
    """Build a copy of the Power BI project pointing at this run's Parquet folder."""
    from salesbi.powerbi import build_powerbi_project

    with run.summary.timed("powerbi"):
        target = run.params.out_dir / "powerbi"
        project = build_powerbi_project(target, parquet_folder=str(run.params.parquet_dir.resolve()))
        run.summary.outputs["powerbi_project"] = str(Path(project).resolve())


#: outputs that only a successful publish changes; a run that did not publish carries them forward
PUBLISHED_OUTPUTS: tuple[str, ...] = (
    "rpt_tables",
    "parquet",
    "models",
    "insights",
    "powerbi_project",
    "published_by",
)


def previous_summary(out_dir: Path) -> dict[str, Any]:
    """Return the last ``run_summary.json`` in ``out_dir`` as a dict ({} when none or unreadable)."""
    import json

    try:
        doc = json.loads((out_dir / "run_summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def keep_last_good(run: Run, previous: dict[str, Any]) -> None:
    """Carry the last published outputs forward into this run's summary where it published nothing.

    Only a publish changes what Power BI and the API read; a failed (or an
    ingest-only) run's summary still names the last good Parquet, models and
    insights, and ``published_by`` the run that made them.
    """
    before = previous.get("outputs") or {}
    for key in PUBLISHED_OUTPUTS:
        if key not in run.summary.outputs and key in before:
            run.summary.outputs[key] = before[key]
    if not run.published and run.summary.status == "failed" and before.get("published_by"):
        run.summary.notes.append(
            f"nothing was published; the reports, Parquet and models of run {before['published_by']} "
            "stay in place"
        )


def _record_failure_without_connection(run: Run) -> None:
    """Record a run that failed before connecting (e.g. reading the source) in audit.runs, if reachable.

    An embedded SQLite warehouse that does not exist yet is not created just for that record.
    """
    try:
        url = parse_url(run.params.warehouse_url)
    except SalesBIError:
        return
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").expanduser().exists():
        log.info("run %s not recorded: the SQLite warehouse %s does not exist yet", run.run_id, url.database)
        return
    try:
        engine, _ = open_warehouse(run.params)
    except SalesBIError as exc:
        log.warning("run %s not recorded in audit.runs: %s", run.run_id, exc.message)
        return
    try:
        record_start(engine, run.summary)
        record_end(engine, run.summary)
    except sa.exc.SQLAlchemyError as exc:
        log.error("could not record run %s in audit.runs: %s", run.run_id, exc)
    finally:
        engine.dispose()


def describe_failure(exc: BaseException) -> str:
    """Return the one-paragraph reason a run failed: the user-facing message, else type and text."""
    return getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"


@contextmanager
def recorded(run: Run) -> Iterator[Run]:
    """Finish the run's record whatever happens: audit.runs row and run_summary.json.

    On error the run is marked failed with the failing step and reason, then the
    error propagates. A run that failed before it reached the warehouse (the
    source could not be read) is still recorded there when the warehouse answers.
    The last published outputs are carried forward when this run published nothing.
    """
    previous = previous_summary(run.params.out_dir)
    try:
        yield run
        run.summary.status = run.summary.final_status()
    except BaseException as exc:
        run.summary.status = "failed"
        run.summary.error = describe_failure(exc)
        raise
    finally:
        run.summary.finished_at = utcnow()
        path = run.params.out_dir / "run_summary.json"
        run.summary.outputs.setdefault("run_summary", str(path.resolve()))
        run.summary.outputs.setdefault("warehouse", run.summary.warehouse)
        keep_last_good(run, previous)
        if run.engine is not None:
            try:
                record_end(run.engine, run.summary)
            except sa.exc.SQLAlchemyError as db_exc:  # the database itself may be what failed
                log.error("could not record the end of run %s in audit.runs: %s", run.run_id, db_exc)
        elif run.summary.status == "failed" and run.summary.failed_step not in (None, "connect"):
            _record_failure_without_connection(run)
        try:
            run.summary.write_json(run.params.out_dir)
        except OSError as os_exc:
            log.error("could not write %s: %s", path, os_exc)


@dataclass(frozen=True)
class Stage:
    """One stage of the run plan: what it needs and produces, whether it publishes, which steps select it."""

    name: str
    run: Callable[[Run], None]
    needs: tuple[str, ...]
    produces: tuple[str, ...]
    selected_by: frozenset[str]
    publishes: bool = False
    #: talks to the warehouse: transient database errors are worth a retry
    database: bool = False
    #: fits a model: independent of the other model stages, may run concurrently with them
    model: bool = False


_ANALYTIC = frozenset({"reports", "segments", "predictions", "forecast"})

#: the run plan, in execution order (a stage runs when one of its ``selected_by`` steps is selected)
STAGES: tuple[Stage, ...] = (
    Stage("read", read_stage, ("source folder",), ("source tables",), frozenset({"ingest"})),
    Stage("connect", connect_stage, ("warehouse URL",), ("warehouse",), frozenset(ALL_STEPS), database=True),
    Stage(
        "ingest",
        ingest_stage,
        ("source tables", "warehouse"),
        ("core", "staging", "audit.rejected_rows", "validation.md", "data_docs"),
        frozenset({"ingest"}),
        database=True,
    ),
    Stage("core", core_stage, ("warehouse",), ("core frames",), _ANALYTIC, database=True),
    Stage("reports", reports_stage, ("core frames",), ("report frames",), frozenset({"reports"})),
    *(
        Stage(step, fn, ("core frames",), MODEL_FITS[step][1], frozenset({step}), model=True)
        for step, fn in (
            ("segments", segments_stage),
            ("predictions", predictions_stage),
            ("forecast", forecast_stage),
        )
    ),
    Stage(
        "insights",
        insights_stage,
        ("report frames", "rpt model tables"),
        ("insights",),
        frozenset({"reports"}),
    ),
    Stage(
        "publish",
        publish_stage,
        ("warehouse", "frames"),
        ("rpt tables", "Parquet", "models", "insights.md"),
        _ANALYTIC,
        publishes=True,
        database=True,
    ),
    Stage("powerbi", powerbi_stage, ("Parquet",), ("Power BI project",), frozenset({"powerbi"})),
)

#: kept for callers of the old plan (stage name → function)
STAGES_AFTER_CORE: tuple[tuple[str, Callable[[Run], None]], ...] = tuple(
    (s.name, s.run) for s in STAGES if s.name in _ANALYTIC
)


def plan(steps: Iterable[str]) -> tuple[Stage, ...]:
    """Return the stages that the step selection ``steps`` runs, in order."""
    wanted = set(steps)
    return tuple(s for s in STAGES if s.selected_by & wanted)


def call_directly(stage: Stage, run: Run) -> None:
    """Run ``stage`` in this thread: how ``salesbi run`` executes a plan."""
    stage.run(run)


def execute(
    run: Run,
    stages: Sequence[Stage],
    call: Callable[[Stage, Run], None] = call_directly,
    call_models: Callable[[Sequence[Stage], Run], None] | None = None,
) -> None:
    """Run ``stages`` in order through ``call``; consecutive model stages through ``call_models`` if given.

    A stage that raises :class:`StepSkipped` is recorded as a warning and the
    run goes on; any other error propagates.
    """
    groups: list[list[Stage]] = []
    for stage in stages:
        if call_models is not None and stage.model and groups and groups[-1][0].model:
            groups[-1].append(stage)
        else:
            groups.append([stage])
    done = 0
    for group in groups:
        run.tick(group[0].name, done, len(stages))
        log.info("run %s: %s", run.run_id, ", ".join(s.name for s in group))
        try:
            if call_models is not None and group[0].model:
                call_models(group, run)
            else:
                call(group[0], run)
        except StepSkipped as skipped:
            skip(run, group[0].name, skipped)
        done += len(group)
        release_freed_memory()  # issue-18 memory hook: freed pages back to the OS between stages
    run.tick("done", len(stages), len(stages))


def skip(run: Run, step: str, skipped: StepSkipped) -> None:
    """Record that ``step`` could not run on this data (a warning); the run goes on."""
    run.summary.failed_step = None
    run.summary.warn(step, skipped.message, kind="skipped")
    log.warning("run %s: step %s skipped: %s", run.run_id, step, skipped.message)


def run_pipeline(
    params: PipelineParams,
    *,
    progress: Progress | None = None,
    flow: str = "sales_pipeline",
    run_id: str | None = None,
) -> RunSummary:
    """Run the selected steps end to end and return the run summary (also written to disk).

    Holds the output folder's run lock throughout (a second run waits
    ``params.lock_timeout`` seconds, then fails with a message naming the first).
    """
    run = start_run(params, flow=flow, run_id=run_id)
    run.progress = progress
    with run_lock(params.out_dir, run.run_id, timeout=params.lock_timeout), recorded(run):
        execute(run, plan(params.steps))
    return run.summary
