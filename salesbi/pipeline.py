"""The whole run as plain functions: ingest → reports → models → publish.

The run plan is declared once, in :data:`STAGES`: each :class:`Stage` says
what it needs, what it produces, whether it publishes, and which ``--steps``
select it. :func:`plan` picks the stages of a step selection and
:func:`execute` runs them; ``salesbi run`` calls each stage function directly,
the Prefect flows call the task of the same name (``tasks.stages.TASKS``)
through the same :func:`execute`, so both run the same stages in the same
order. Each stage is a function ``(RunContext, Results) -> StageResult``
(:mod:`salesbi.stage_results`): it reads the typed results of earlier stages
and returns its own; nothing is shared and changed between stages. Nothing
here imports Prefect.

Failure contract: a failing stage marks ``audit.runs`` failed with the stage
and reason, writes ``run_summary.json`` with status ``failed``, and re-raises;
the previous ``rpt`` tables and Parquet stay in place because publishing is
the last stage and is itself atomic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from salesbi import contract
from salesbi.errors import SalesBIError, StepSkipped
from salesbi.incremental_models import score_or_fit
from salesbi.memory import freeze_long_lived_objects, map_large_allocations, release_freed_memory
from salesbi.params import ALL_STEPS, PipelineParams
from salesbi.reading.spilled import SpilledRows
from salesbi.runlock import run_lock
from salesbi.runlog import RunSummary, TableCounts, mark_crashed, new_run_id, record_end, record_start, utcnow
from salesbi.schema import Table
from salesbi.stage_results import (
    CoreFrames,
    Frames,
    Ingested,
    ModelInputs,
    ModelOutput,
    PowerBIProject,
    Progress,
    Published,
    Results,
    RunContext,
    SourceRead,
    StageResult,
    Warehouse,
)
from salesbi.types import conform
from salesbi.warehouse.engine import connect_failure, create_engine, parse_url, redact, resolve_url
from salesbi.warehouse.load import read_table, read_table_fast

if TYPE_CHECKING:
    from salesbi.fact_spill import FactSpill, SpilledTable
    from salesbi.incremental_reports import SpliceDecision
    from salesbi.order_grain import CoreLines
    from salesbi.reports.build import MonthlyBuilder

log = logging.getLogger(__name__)

#: a stage: reads the context and earlier results, returns its own result (None: nothing to hand on)
StageFn = Callable[[RunContext, Results], StageResult | None]


def start_run(
    params: PipelineParams,
    *,
    flow: str = "sales_pipeline",
    run_id: str | None = None,
    progress: Progress | None = None,
) -> RunContext:
    """Return the context of a new run of ``params`` (nothing is read or connected yet)."""
    summary = RunSummary(
        run_id=run_id or new_run_id(),
        flow=flow,
        source=str(params.source) if params.source else None,
        profile=params.profile if "ingest" in params.steps else None,
        warehouse=redact(resolve_url(params.warehouse_url)),
    )
    return RunContext(params=params, summary=summary, progress=progress)


#: the sample company's folder on a fresh checkout, and the command that creates it
SAMPLE_SOURCE = Path("var") / "sample"


def read_stage(ctx: RunContext, done: Results) -> SourceRead:
    """Return the source read through its profile (structural faults raise here, before any connection)."""
    from salesbi.ingest import read_step

    source = ctx.params.source
    if source is None:
        raise SalesBIError("the ingest step needs a source folder", hint="pass --source DIR")
    if not Path(source).is_dir():
        ctx.summary.failed_step = "read"
        raise SalesBIError(
            "the source folder does not exist",
            file=source,
            hint=(
                f"generate the sample company first: salesbi generate --out {source}"
                if Path(source) == SAMPLE_SOURCE or Path(source).resolve() == SAMPLE_SOURCE.resolve()
                else "point the source parameter at the folder the CSV drop lands in"
            ),
        )
    from salesbi.reading.spilled import SpillPolicy, ingest_spill_folder, remove_ingest_spills

    remove_ingest_spills(ctx.params.out_dir)  # what a killed run left (runs into one folder hold its lock)
    spill = SpillPolicy(ingest_spill_folder(ctx.params.out_dir, ctx.run_id), ctx.params.ingest_spill_rows)
    with ctx.summary.timed("read"):
        data = read_step(source, ctx.params.profile, spill)
        ctx.summary.notes.extend(data.notes)
    return SourceRead(data)


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


def connect_stage(ctx: RunContext, done: Results) -> Warehouse:
    """Return the open warehouse: schemas/tables created, dead runs marked crashed, this run recorded.

    All or nothing: on failure the engine is disposed and nothing is returned, so
    a retry connects again from scratch.
    """
    with ctx.summary.timed("connect"):
        engine, metadata = open_warehouse(ctx.params)
        try:
            for gone in mark_crashed(engine):
                log.warning("run %s was left running by a process that is gone: marked crashed", gone)
            record_start(engine, ctx.summary)
            from salesbi.reports.sql.fact_build import drop_stale_builds

            for left in drop_stale_builds(engine, metadata):  # what killed push-down runs left
                log.warning("dropped staging.%s, left by a run that did not finish", left)
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            raise connect_failure(engine.url, exc) from exc
    from salesbi.publish import recover

    if recovered := recover(engine, ctx.params.parquet_dir):  # a publish interrupted earlier
        ctx.summary.notes.append(f"an interrupted earlier publish was {recovered}")
    return Warehouse(engine, metadata)


def ingest_stage(ctx: RunContext, done: Results) -> Ingested:
    """Return what validating and loading the read tables did in one transaction."""
    from salesbi.completeness import check_run
    from salesbi.incremental import hash_writer, select_drop_changes, with_unchanged
    from salesbi.incremental_reports import capture_changed_orders
    from salesbi.ingest import core_keys, load_step, validate_step
    from salesbi.runlog import last_good_counts

    wh = done.need(Warehouse, "ingest")
    source = done.need(SourceRead, "ingest").data
    with ctx.summary.timed("changes"):  # only the new and changed rows of the drop are validated and loaded
        changes = select_drop_changes(
            wh.engine,
            wh.metadata,
            source,
            mode=ctx.params.ingest_mode,
            previous_counts=last_good_counts(wh.engine),
            block_rows=ctx.params.ingest_block_rows,
            spill_rows=ctx.params.ingest_spill_rows,
        )
        ctx.summary.outputs["ingest_changes"] = changes.summary()
        ctx.summary.notes.extend(changes.notes)
        # the changed orders' state before the load: which months the monthly report tables must redo
        changed_orders = (
            capture_changed_orders(wh.engine, wh.metadata, changes) if "reports" in ctx.params.steps else None
        )
    with ctx.summary.timed("validate"):
        outcome = validate_step(
            changes.data,
            run_id=ctx.run_id,
            previous_counts=changes.previous_counts,
            known_keys=core_keys(wh.engine, wh.metadata),
            block_rows=ctx.params.ingest_block_rows,
        )
        outcome.counts = with_unchanged(outcome.counts, changes)
    with ctx.summary.timed("completeness"):
        # warns, or fails before the load when too much was rejected (shares over the whole drop)
        completeness = check_run(outcome, source, ctx.params, ctx.summary)
    with ctx.summary.timed("load"):
        result = load_step(
            wh.engine,
            wh.metadata,
            changes.data,
            outcome,
            run_id=ctx.run_id,
            keep_rejects_runs=ctx.params.keep_rejects_runs,
            after_load=hash_writer(
                wh.metadata, changes, outcome.accepted, ctx.run_id, block_rows=ctx.params.ingest_block_rows
            ),
            block_rows=ctx.params.ingest_block_rows,
        )
    ctx.summary.tables = result.counts
    out = ctx.params.out_dir
    out.mkdir(parents=True, exist_ok=True)
    with ctx.summary.timed("validation_report"):
        from salesbi.validation import report as vreport

        summary_md = vreport.render_validation_summary(outcome)
        (out / "validation.md").write_text(summary_md, encoding="utf-8")
        ctx.summary.outputs["validation_summary"] = str((out / "validation.md").resolve())
        docs = vreport.build_data_docs(outcome, out / "data_docs")
        ctx.summary.outputs["data_docs"] = str(Path(docs).resolve())
    return Ingested(
        counts=result.counts,
        rejected_rows=outcome.rejected_rows,
        completeness=completeness,
        validation_summary=summary_md,
        core=core_as_loaded(outcome.accepted, result.counts),
        core_spilled={n: a for n, a in outcome.accepted.items() if isinstance(a, SpilledRows)},
        changed_orders=changed_orders,
    )


def core_as_loaded(
    accepted: Mapping[str, pd.DataFrame | SpilledRows], counts: Mapping[str, TableCounts]
) -> dict[str, pd.DataFrame] | None:
    """Return the core tables as this run's accepted rows, when core holds exactly those rows; else None.

    After the upsert every accepted row is in core with its values; when each core
    table's row count equals its accepted rows, core holds nothing else, so the
    frames equal core read back (tested on SQLite and PostgreSQL) without the round trip.
    A table whose accepted rows are in the read's spill file (:class:`SpilledRows`) is left out:
    the core stage reads it back from there when it needs it (:func:`core_stage`).
    """
    if any(counts[s.name].warehouse_rows != len(accepted[s.name]) for s in contract.TABLES):
        return None
    return {
        s.name: conform(frame.reset_index(drop=True), s)
        for s in contract.TABLES
        if isinstance(frame := accepted[s.name], pd.DataFrame)
    }


def spilled_core(rows: SpilledRows, spec: Table) -> pd.DataFrame:
    """Return a core table's accepted rows read back from the read's spill file, as core holds them.

    Only the table's columns are read (not the lineage columns), a batch at a time, and the
    memory the batches took is given back before the next step.
    """
    frame = conform(rows.read(list(spec.column_names)), spec)
    release_freed_memory()
    return frame


def read_core(
    engine: Engine, metadata: sa.MetaData, skip: Collection[str] = frozenset()
) -> dict[str, pd.DataFrame]:
    """Return the seven core tables of the warehouse as typed frames (those named in ``skip`` left out)."""
    core: dict[str, pd.DataFrame] = {}
    with engine.connect() as conn:
        for spec in contract.TABLES:
            if spec.name in skip:
                continue
            table = metadata.tables[f"core.{spec.name}"]
            core[spec.name] = conform(read_table_fast(conn, table), spec)
    return core


def long_lines_in_core(engine: Engine, metadata: sa.MetaData, long_rows: int) -> bool:
    """Return whether core's ``order_items`` has at least ``long_rows`` lines (read in key order
    as :class:`~salesbi.reports.line_blocks.OrderLineBlocks` then, never whole).

    The rows are counted by the database; ``long_rows`` 0 means always.
    """
    if long_rows <= 0:
        return True
    items = metadata.tables["core.order_items"]
    with engine.connect() as conn:
        # at least long_rows rows: a LIMIT over the primary key, not a count of the whole table
        inner = sa.select(sa.literal(1)).select_from(items).limit(long_rows).subquery()
        found = conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one()
    return int(found) >= long_rows


def core_has_orders(wh: Warehouse) -> bool:
    """Return whether ``core.orders`` of the warehouse has a row (one row read, not the table)."""
    orders = wh.metadata.tables["core.orders"]
    with wh.engine.connect() as conn:
        return conn.execute(sa.select(sa.literal(1)).select_from(orders).limit(1)).first() is not None


def no_orders_in_core() -> SalesBIError:
    """Return the error of a step that needs core's orders on a warehouse whose core has none."""
    return SalesBIError(
        "the warehouse has no orders in core", hint="run the ingest step first (salesbi ingest ...)"
    )


def needs_no_core(params: PipelineParams) -> bool:
    """Return whether no selected step reads core as frames: reports built inside the warehouse
    (``reports_in="warehouse"``) and no model step (the models read the run's core frames)."""
    return params.reports_in == "warehouse" and not set(params.steps) & set(MODEL_FITS)


def core_stage(ctx: RunContext, done: Results) -> CoreFrames | None:
    """Return the seven core tables: this run's loaded rows when they are all of core, else read back.

    Returns None (nothing read) when :func:`needs_no_core` and the run holds no core frames.
    """
    ingested = done.find(Ingested)
    if needs_no_core(ctx.params) and (ingested is None or ingested.core is None):
        return None
    # in warehouse mode the order lines stay in the database: reports, publish and the model
    # steps read them there (model_fact), so core's orders and order_items are not held (whether
    # core has orders is asked of the database: the same message as when they are read)
    skip = ORDER_LINES if fact_in_warehouse(ctx.params) else frozenset()
    from salesbi.reports.line_blocks import warehouse_lines

    with ctx.summary.timed("read_core"):
        lines = None
        if ingested is not None and ingested.core is not None:
            has_orders = "orders" not in ingested.core or len(ingested.core["orders"]) > 0
            tables = {k: v for k, v in ingested.core.items() if k not in skip}
            # the accepted rows the ingest left in its spill file, read back now that the ingest's
            # peak is over (never in warehouse mode: the order lines stay in the database); the
            # order lines are not: core holds exactly them, and the reports read them from core in
            # key order a batch at a time (OrderLineBlocks: the same blocks, never a whole frame)
            for name, rows in ingested.core_spilled.items():
                if name in skip:
                    continue
                if name == "order_items":
                    wh = done.need(Warehouse, "core")
                    lines = warehouse_lines(wh.engine, wh.metadata)
                else:
                    tables[name] = spilled_core(rows, contract.table(name))
            core = CoreFrames(
                {name: tables[name] for name in contract.TABLES_BY_NAME if name in tables}, "this run", lines
            )
        else:
            wh = done.need(Warehouse, "core")
            # a long order_items stays in the database: read in key order by the report build
            if "order_items" not in skip and long_lines_in_core(
                wh.engine, wh.metadata, ctx.params.ingest_spill_rows
            ):
                lines = warehouse_lines(wh.engine, wh.metadata)
                skip = skip | {"order_items"}
            core = CoreFrames(read_core(wh.engine, wh.metadata, skip), "warehouse", lines)
            has_orders = len(core.tables["orders"]) > 0 if "orders" in core.tables else core_has_orders(wh)
    if not has_orders:
        raise no_orders_in_core()
    return core


def reports_stage(ctx: RunContext, done: Results) -> Frames:
    """Return the star schema and analytic tables built from core."""
    from salesbi.reports.build import ReportParams, build_reports
    from salesbi.run_report import record_order_dates

    with ctx.summary.timed("reports"):
        params = ReportParams(
            as_of=ctx.params.as_of,
            churn_months=ctx.params.churn_months,
            fiscal_year_start_month=ctx.params.fiscal_year_start_month,
        )
        if ctx.params.reports_in == "warehouse":  # push-down (docs/scaling.md)
            from salesbi.reports.sql.build import build_reports_in_warehouse
            from salesbi.reports.sql.fact_build import create_fact_build

            wh = done.need(Warehouse, "reports")
            if done.find(CoreFrames) is None and not core_has_orders(wh):  # as the core stage says
                raise no_orders_in_core()
            # the fact's lines computed once, into the run's build table (salesbi.reports.sql.fact_build):
            # the summaries, the model inputs, the insights and the publish (INSERT … SELECT into
            # rpt.fact_order_lines, its Parquet file) read it; dropped when the run ends
            started = time.perf_counter()
            fact = create_fact_build(wh.engine, wh.metadata, ctx.run_id)
            ctx.summary.timings["fact_build"] = time.perf_counter() - started  # part of "reports"
            built = build_reports_in_warehouse(
                wh.engine, wh.metadata, params, with_fact=False, fact=fact.table
            )
            ctx.summary.outputs["reports_built_in"] = built.summary(fact_in_database=True)
            if built.bounds is not None:
                record_order_dates(ctx.summary.kpis, built.bounds.first_order, built.bounds.last_order)
            return Frames(built.frames, fact_build=fact.table)
        from salesbi.incremental_reports import SUMMARY_KEY, SpliceDecision

        decision = SpliceDecision()
        core_frames = done.need(CoreFrames, "reports")
        core = dict(core_frames.tables)
        sink = fact_sink(ctx)
        try:
            frames = build_reports(
                core,
                params,
                monthly_builder(ctx, done, params.churn_months, decision),
                fact_sink=sink,
                on_context=lambda built: record_order_dates(
                    ctx.summary.kpis, built.first_order_date, built.last_order_date
                ),
                order_lines=core_frames.lines,
            )
        except BaseException:
            sink.abort()  # the partly written file; the run's spill folder goes when execute ends
            raise
        ctx.summary.outputs[SUMMARY_KEY] = decision.summary()
    return spill_fact(ctx, frames, sink)


def fact_sink(ctx: RunContext) -> FactSpill:
    """Return where the report step puts the fact's blocks (:class:`salesbi.fact_spill.FactSpill`).

    Each block is appended to the fact's spill file in the run's staging folder as it is built
    (the fact is never whole in memory), unless the fact stays under ``params.fact_spill_lines``
    lines: then its blocks are kept and joined into the frame. What a killed run left in the
    output folder is removed first (runs into one folder hold its lock).
    """
    from salesbi.fact_spill import FactSpill, remove_spills, spill_folder
    from salesbi.reports.fact import FACT_ORDER_LINES

    remove_spills(ctx.params.out_dir)
    folder = spill_folder(ctx.params.out_dir, ctx.run_id)
    return FactSpill(FACT_ORDER_LINES, folder, keep_below=ctx.params.fact_spill_lines)


def spill_fact(ctx: RunContext, frames: dict[str, pd.DataFrame], sink: FactSpill) -> Frames:
    """Return the report frames with the fact the report step put into ``sink`` (:func:`fact_sink`).

    The fact's file is closed and named in the result (``Frames.spilled``, step ``spill``); the
    later stages read it: the model steps' and the insights' inputs are aggregated from it
    batch by batch (:func:`shared_model_inputs`), publish publishes the file itself and fills
    ``rpt`` from it in batches. A fact kept under ``params.fact_spill_lines`` lines is the
    ``fact_order_lines`` frame instead.
    """
    if not sink.spilling:
        frames["fact_order_lines"] = cast(pd.DataFrame, sink.finish())
        return Frames(frames)
    with ctx.summary.timed("spill"):
        spilled = cast("SpilledTable", sink.finish())
    return Frames(frames, spilled={spilled.name: spilled})


def monthly_builder(
    ctx: RunContext, done: Results, churn_months: int, decision: SpliceDecision
) -> MonthlyBuilder:
    """Return the monthly tables' builder: spliced into the last run's on an incremental run, else full.

    ``decision`` records which tables were spliced or rebuilt, and why; the
    reports stage puts it into ``outputs.report_tables`` (``salesbi.incremental_reports``).
    """
    from salesbi.incremental_reports import monthly_tables, previous_tables

    ingested, wh = done.find(Ingested), done.find(Warehouse)

    def previous() -> tuple[dict[str, pd.DataFrame], str | None]:
        if wh is None:
            return {}, "no warehouse"
        p = ctx.params
        return previous_tables(wh.engine, p.out_dir, p.parquet_dir, ctx.run_id, churn_months)

    return monthly_tables(ingested.changed_orders if ingested else None, previous, decision)


def fact_lines(done: Results) -> pd.DataFrame | SpilledTable | CoreLines:
    """Return the run's fact lines as :func:`salesbi.order_grain.line_batches` reads them: the fact
    frame, the spilled fact's file (:func:`spill_fact`), or when reports did not run core's frames
    (``--steps segments`` alone: the fact is built a batch of whole orders at a time)."""
    fact = done.frames().get("fact_order_lines")
    if fact is not None:
        return fact
    spilled = done.spilled().get("fact_order_lines")
    if spilled is not None:
        return spilled
    from salesbi.order_grain import CoreLines

    core = done.need(CoreFrames, "models")
    return CoreLines(core.tables, core.lines)


#: the key under which :func:`shared_model_inputs` adds the model steps' inputs to the results
MODEL_INPUTS = "model_inputs"
#: the order-grain input (salesbi.order_grain) each step reads
STEP_INPUTS: dict[str, str] = {
    "segments": "history",
    "predictions": "history",
    "forecast": "days",
    "insights": "insights",
}


def shared_model_inputs(ctx: RunContext, done: Results, steps: Collection[str]) -> Results:
    """Return ``done`` with the order-grain inputs that ``steps`` (the stages left) read, computed once.

    In the default (pandas) path the inputs of the model steps and the insights
    (:data:`STEP_INPUTS`) are aggregated in one pass over the fact's lines, batch by batch
    (:func:`salesbi.order_grain.model_inputs_from_lines`: the spilled file row group by row
    group, or slices of the fact frame), into a :class:`ModelInputs` result: no per-line
    frame of the whole fact exists in the model steps. ``done`` unchanged when there is nothing
    to compute or the fact is in the warehouse (push-down: the database sends the inputs).
    """
    wanted = {STEP_INPUTS[s] for s in steps if s in STEP_INPUTS}
    if not wanted or MODEL_INPUTS in done.by_stage:
        return done
    if fact_in_warehouse(ctx.params) and not ("fact_order_lines" in done.frames() or done.spilled()):
        return done
    from salesbi.order_grain import model_inputs_from_lines

    with ctx.summary.timed("model_inputs"):
        customers = done.need(CoreFrames, "models").tables.get("customers") if "days" in wanted else None
        inputs = model_inputs_from_lines(fact_lines(done), customers, wanted)
        release_freed_memory()  # the decoded batches, back to the OS before the fits
    return done.add(MODEL_INPUTS, ModelInputs(inputs.history, inputs.days, inputs.insights))


def fact_in_warehouse(params: PipelineParams) -> bool:
    """Return whether the fact's lines stay in the warehouse (``reports_in="warehouse"``): reports,
    publish and the model steps read them there, never as a whole frame (docs/scaling.md)."""
    return params.reports_in == "warehouse"


def fact_build(done: Results) -> sa.Table | None:
    """Return the run's build table of the fact's lines in the warehouse (push-down), if the report
    step made one (:mod:`salesbi.reports.sql.fact_build`)."""
    reports = done.by_stage.get("reports")
    return reports.fact_build if isinstance(reports, Frames) else None


def model_fact(ctx: RunContext, done: Results, step: str) -> Any:
    """Return the input model ``step`` reads, at order grain: for segments and predictions the orders
    and the (customer, product line) first uses (``salesbi.segmentation.history.OrderHistory``),
    for the forecast a frame of one row per day, customer
    country, product line and office (``DAY_COLUMNS``). Computed from the fact's lines in batches
    (:func:`shared_model_inputs`), or in warehouse mode by the database from core
    (:mod:`salesbi.reports.sql.model_inputs`): the same frames either way."""
    from salesbi.reports.sql.model_inputs import ORDER_GRAIN_STEPS, read_forecast_days, read_order_history

    if fact_in_warehouse(ctx.params) and "fact_order_lines" not in done.frames():
        from salesbi.reports.sql import sqlite

        wh = done.need(Warehouse, step)
        with wh.engine.connect() as conn:
            sqlite.bounded(conn)  # SQLite: the GROUP BY's sort spills to files, caches capped
            if step in ORDER_GRAIN_STEPS:  # from the build table when the report step made it
                return read_order_history(conn, wh.metadata, fact_build(done))
            return read_forecast_days(conn, wh.metadata, fact_build(done))
    shared = done.find(ModelInputs)
    if shared is None or getattr(shared, STEP_INPUTS[step]) is None:
        shared = shared_model_inputs(ctx, done.replace(MODEL_INPUTS, None), [step]).need(ModelInputs, step)
    return getattr(shared, STEP_INPUTS[step])


def fit_segments(fact: Any, core: Mapping[str, pd.DataFrame], params: PipelineParams) -> Any:
    """Return the SegmentationResult for ``fact`` (pure: safe to run in another process)."""
    from salesbi.segmentation import segment_customers

    return segment_customers(
        fact, core["customers"], core["employees"], as_of=params.as_of, random_state=params.random_state
    )


def fit_predictions(fact: Any, core: Mapping[str, pd.DataFrame], params: PipelineParams) -> Any:
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
        workers=params.fit_workers,
    )


def fit_forecast(
    fact: pd.DataFrame, core: Mapping[str, pd.DataFrame], params: PipelineParams, run_id: str
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
        lgbm_config=LightGBMConfig(
            random_state=params.random_state, num_threads=params.model_threads, workers=params.fit_workers
        ),
    )


#: model step → (fit function, the result attributes that are rpt tables)
# each step scores with its stored model unless params.refit (and the model's age and
# drift) say fit; salesbi.incremental_models.score_or_fit takes the fit function's arguments
MODEL_FITS: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "segments": (partial(score_or_fit, "segments", fit_segments), ("customer_segments", "segment_summary")),
    "predictions": (partial(score_or_fit, "predictions", fit_predictions), ("customer_predictions",)),
    "forecast": (partial(score_or_fit, "forecast", fit_forecast), ("sales_forecast", "forecast_accuracy")),
}

#: rpt tables a model stage adds beside its fit's own (derived from them)
DERIVED_MODEL_TABLES: dict[str, tuple[str, ...]] = {"forecast": ("sales_forecast_monthly",)}


def model_inputs(ctx: RunContext, done: Results, step: str) -> tuple[Any, ...]:
    """Return the arguments of the fit function of model ``step`` for this run (plain values, picklable)."""
    core = dict(done.need(CoreFrames, step).tables)
    args: tuple[Any, ...] = (model_fact(ctx, done, step), core, ctx.params)
    return (*args, ctx.run_id) if step == "forecast" else args


def model_output(step: str, result: Any) -> ModelOutput:
    """Return a fit function's result as the model stage's typed output (rpt frames, model runs, models)."""
    frames = {name: getattr(result, name) for name in MODEL_FITS[step][1]}
    if step == "forecast":
        from salesbi.forecasting.monthly import build_monthly_forecast

        frames["sales_forecast_monthly"] = build_monthly_forecast(frames["sales_forecast"])
    decision = getattr(result, "model_decision", None)  # refit or stored model (salesbi.incremental_models)
    return ModelOutput(
        step=step,
        frames=frames,
        model_runs=tuple(result.model_runs),
        models=dict(getattr(result, "models", None) or {}),
        decision=decision.as_dict() if decision is not None else None,
    )


def with_forecast_calendar(
    frames: dict[str, pd.DataFrame], fiscal_year_start_month: int
) -> dict[str, pd.DataFrame]:
    """Return ``frames`` with ``dim_date`` stretched over the whole forecast horizon (when both are there)."""
    from salesbi.reports.dims import extend_dim_date

    forecast = frames.get("sales_forecast")
    if "dim_date" not in frames or forecast is None or forecast.empty:
        return frames
    last = pd.Timestamp(forecast["date"].max()) + pd.offsets.MonthEnd(0)
    return {**frames, "dim_date": extend_dim_date(frames["dim_date"], last.date(), fiscal_year_start_month)}


def _model_stage(ctx: RunContext, done: Results, step: str) -> ModelOutput:
    inputs = model_inputs(ctx, done, step)
    with ctx.summary.timed(step):
        return model_output(step, MODEL_FITS[step][0](*inputs))


def segments_stage(ctx: RunContext, done: Results) -> ModelOutput:
    """Return customer segments (RFM + clusters) with a recommended action per customer."""
    return _model_stage(ctx, done, "segments")


def predictions_stage(ctx: RunContext, done: Results) -> ModelOutput:
    """Return each customer's predicted sales and order probability over the next horizon."""
    return _model_stage(ctx, done, "predictions")


def forecast_stage(ctx: RunContext, done: Results) -> ModelOutput:
    """Return the net-sales forecast per series (LightGBM and baselines, champion per series)."""
    return _model_stage(ctx, done, "forecast")


#: rpt tables the model steps write, read back for the insights when the models did not run
MODEL_TABLES: tuple[str, ...] = tuple(t for _, tables in MODEL_FITS.values() for t in tables)


def insights_stage(ctx: RunContext, done: Results) -> Frames | None:
    """Return the ranked commentary from this run's tables (and the last published model tables)."""
    from salesbi.completeness import completeness_frame
    from salesbi.reports.build import ReportParams
    from salesbi.reports.insights import build_insights

    frames = done.frames()
    spilled = done.spilled().get("fact_order_lines")
    in_warehouse = fact_in_warehouse(ctx.params) and "customer_summary" in frames
    if "fact_order_lines" not in frames and spilled is None and not in_warehouse:
        return None
    with ctx.summary.timed("insights"):
        params = ReportParams(as_of=ctx.params.as_of, churn_months=ctx.params.churn_months)
        wh = done.find(Warehouse)
        tables = {**stored_model_outputs(wh, frames), **frames}
        if not in_warehouse:  # what the insights read of the fact, aggregated (salesbi.order_grain)
            shared = done.find(ModelInputs)
            if shared is None or shared.insights is None:
                shared = shared_model_inputs(ctx, done.replace(MODEL_INPUTS, None), ["insights"]).need(
                    ModelInputs, "insights"
                )
            tables["fact_order_lines"] = shared.insights
        elif "fact_order_lines" not in tables and wh is not None:  # what the insights read, aggregated
            from salesbi.reports.sql import sqlite
            from salesbi.reports.sql.model_inputs import read_insight_facts

            with wh.engine.connect() as conn:
                sqlite.bounded(conn)
                tables["fact_order_lines"] = read_insight_facts(conn, wh.metadata, fact_build(done))
        ingested = done.find(Ingested)
        completeness = completeness_frame(  # the first section of the insights
            ingested.completeness if ingested else None, wh.engine if wh else None
        )
        if completeness is not None:
            tables["run_completeness"] = completeness
        if decisions := [r.decision for r in done if isinstance(r, ModelOutput) and r.decision]:
            tables["run_model_freshness"] = pd.DataFrame(decisions)  # which models were reused, how old
        return Frames({"insights": build_insights(tables, params)})


#: the fact's columns the insights read (returns, the as-of fallback), aggregated per status and
#: cancelled flag (salesbi.order_grain.InsightFacts; in warehouse mode by the database)
INSIGHT_FACT_COLUMNS: tuple[str, ...] = ("order_date", "status", "is_cancelled", "net_sales")


def stored_model_outputs(wh: Warehouse | None, frames: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Return the model tables not in ``frames``, as last published in rpt (empty ones left out)."""
    from salesbi.rpt import rpt_tables

    missing = [name for name in MODEL_TABLES if name not in frames]
    if not missing or wh is None:
        return {}
    specs = {t.name: t for t in rpt_tables()}
    out: dict[str, pd.DataFrame] = {}
    inspector = sa.inspect(wh.engine)
    with wh.engine.connect() as conn:
        for name in missing:
            spec = specs.get(name)
            if spec is None or not inspector.has_table(name, schema="rpt"):
                continue
            frame = conform(read_table(conn, wh.metadata.tables[spec.qualified_name]), spec)
            if len(frame):
                out[name] = frame
    return out


def publish_stage(ctx: RunContext, done: Results) -> Published:
    """Return what was published: rpt tables, Parquet, model runs, models and insights.md, all or nothing."""
    from salesbi.publish import publish
    from salesbi.reports.insights import render_insights_markdown
    from salesbi.rpt import rpt_tables

    wh = done.need(Warehouse, "publish")
    out = ctx.params.out_dir
    with ctx.summary.timed("publish"):
        frames = with_forecast_calendar(done.frames(), ctx.params.fiscal_year_start_month)
        if ctx.summary.tables:
            from salesbi.reports.data_quality import build_data_quality

            ingested = done.find(Ingested)
            rejected = ingested.rejected_rows if ingested else None
            frames["data_quality"] = build_data_quality(ctx.summary, rejected, utcnow())
        in_database = fact_publish_in_database(ctx, done, frames)
        files = {}
        if "insights" in frames:
            files[out / "insights.md"] = render_insights_markdown(frames["insights"])
        result = publish(
            wh.engine,
            wh.metadata,
            run_id=ctx.run_id,
            frames=frames,
            definitions=rpt_tables(),
            folder=ctx.params.parquet_dir,
            model_runs=done.model_runs(),
            models=done.models(),
            models_dir=ctx.params.models_dir,
            files=files,
            in_database=in_database,
            spilled=tuple(done.spilled().values()),  # the spilled fact's file, published as is
        )
        ctx.summary.outputs["rpt_tables"] = result.tables
        ctx.summary.outputs["parquet"] = str(result.parquet)
        if result.models:
            ctx.summary.outputs["models"] = {name: str(path) for name, path in result.models.items()}
        if files:
            ctx.summary.outputs["insights"] = str(result.files[0])
        ctx.summary.outputs["published_by"] = ctx.run_id
    return Published(
        tables=dict(result.tables),
        parquet=Path(result.parquet),
        models=dict(result.models or {}),
        files=tuple(result.files),
        frames=frames,
    )


def fact_publish_in_database(ctx: RunContext, done: Results, frames: Mapping[str, pd.DataFrame]) -> list[Any]:
    """Return the :class:`salesbi.publish.InDatabase` of ``rpt.fact_order_lines`` when the reports
    were built in the warehouse without it (filled by ``INSERT … SELECT`` from the run's build
    table of the fact's lines, its Parquet file streamed from it), else nothing."""
    if not fact_in_warehouse(ctx.params) or "fact_order_lines" in frames or "reports" not in done.by_stage:
        return []
    from salesbi.publish import InDatabase
    from salesbi.reports.fact import FACT_ORDER_LINES
    from salesbi.reports.sql.fact_publish import export_parquet, insert_fact

    wh = done.need(Warehouse, "publish")
    lines = fact_build(done)  # copied from the run's build table (else computed from core)
    return [
        InDatabase(
            spec=FACT_ORDER_LINES,
            fill=lambda conn, table: insert_fact(conn, wh.metadata, table, lines),
            export=lambda conn, table, path: export_parquet(conn, table, FACT_ORDER_LINES, path),
        )
    ]


def powerbi_stage(ctx: RunContext, done: Results) -> PowerBIProject:
    """Return the copy of the Power BI project built to point at this run's Parquet folder."""
    from salesbi.powerbi import build_powerbi_project

    with ctx.summary.timed("powerbi"):
        target = ctx.params.out_dir / "powerbi"
        project = Path(build_powerbi_project(target, parquet_folder=str(ctx.params.parquet_dir.resolve())))
        ctx.summary.outputs["powerbi_project"] = str(project.resolve())
    return PowerBIProject(project)


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


def keep_last_good(summary: RunSummary, published: bool, previous: dict[str, Any]) -> None:
    """Carry the last published outputs forward into ``summary`` where this run published nothing.

    Only a publish changes what Power BI and the API read; a failed (or an
    ingest-only) run's summary still names the last good Parquet, models and
    insights, and ``published_by`` the run that made them.
    """
    before = previous.get("outputs") or {}
    for key in PUBLISHED_OUTPUTS:
        if key not in summary.outputs and key in before:
            summary.outputs[key] = before[key]
    if not published and summary.status == "failed" and before.get("published_by"):
        summary.notes.append(
            f"nothing was published; the reports, Parquet and models of run {before['published_by']} "
            "stay in place"
        )


def _record_failure_without_connection(ctx: RunContext) -> None:
    """Record a run that failed before connecting (e.g. reading the source) in audit.runs, if reachable.

    An embedded SQLite warehouse that does not exist yet is not created just for that record.
    """
    try:
        url = parse_url(ctx.params.warehouse_url)
    except SalesBIError:
        return
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").expanduser().exists():
        log.info("run %s not recorded: the SQLite warehouse %s does not exist yet", ctx.run_id, url.database)
        return
    try:
        engine, _ = open_warehouse(ctx.params)
    except SalesBIError as exc:
        log.warning("run %s not recorded in audit.runs: %s", ctx.run_id, exc.message)
        return
    try:
        record_start(engine, ctx.summary)
        record_end(engine, ctx.summary)
    except sa.exc.SQLAlchemyError as exc:
        log.error("could not record run %s in audit.runs: %s", ctx.run_id, exc)
    finally:
        engine.dispose()


def describe_failure(exc: BaseException) -> str:
    """Return the one-paragraph reason a run failed: the user-facing message, else type and text."""
    return getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"


@dataclass
class Execution:
    """The executor's own view of a run: the results so far (replaced, never changed, after each stage).

    Only :func:`execute` writes it; :func:`recorded` and the Prefect artifacts read it
    after the run, including a failed one (what was connected, validated, published).
    """

    context: RunContext
    results: Results = field(default_factory=Results)

    @property
    def run_id(self) -> str:
        """Return the run id."""
        return self.context.run_id

    @property
    def summary(self) -> RunSummary:
        """Return the run's journal."""
        return self.context.summary

    @property
    def published(self) -> Published | None:
        """Return what this run published, None when it published nothing."""
        return self.results.find(Published)


@contextmanager
def recorded(execution: Execution) -> Iterator[Execution]:
    """Finish the run's record whatever happens: audit.runs row and run_summary.json.

    On error the run is marked failed with the failing step and reason, then the
    error propagates. A run that failed before it reached the warehouse (the
    source could not be read) is still recorded there when the warehouse answers.
    The last published outputs are carried forward when this run published nothing.
    """
    ctx = execution.context
    summary = ctx.summary
    previous = previous_summary(ctx.params.out_dir)
    try:
        yield execution
        summary.status = summary.final_status()
    except BaseException as exc:
        summary.status = "failed"
        summary.error = describe_failure(exc)
        raise
    finally:
        summary.finished_at = utcnow()
        path = ctx.params.out_dir / "run_summary.json"
        summary.outputs.setdefault("run_summary", str(path.resolve()))
        summary.outputs.setdefault("warehouse", summary.warehouse)
        keep_last_good(summary, execution.published is not None, previous)
        wh = execution.results.find(Warehouse)
        if wh is not None:
            try:
                record_end(wh.engine, summary)
            except sa.exc.SQLAlchemyError as db_exc:  # the database itself may be what failed
                log.error("could not record the end of run %s in audit.runs: %s", ctx.run_id, db_exc)
        elif summary.status == "failed" and summary.failed_step not in (None, "connect"):
            _record_failure_without_connection(ctx)
        try:
            summary.write_json(ctx.params.out_dir)
        except OSError as os_exc:
            log.error("could not write %s: %s", path, os_exc)


@dataclass(frozen=True)
class Stage:
    """One stage of the run plan: what it needs and produces, whether it publishes, which steps select it."""

    name: str
    run: StageFn
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
        Stage(
            step,
            fn,
            ("core frames",),
            MODEL_FITS[step][1] + DERIVED_MODEL_TABLES.get(step, ()),
            frozenset({step}),
            model=True,
        )
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


def plan(steps: Iterable[str]) -> tuple[Stage, ...]:
    """Return the stages that the step selection ``steps`` runs, in order."""
    wanted = set(steps)
    return tuple(s for s in STAGES if s.selected_by & wanted)


#: how one stage is called: returns its result
CallStage = Callable[[Stage, RunContext, Results], StageResult | None]
#: how a group of model stages is called together: each stage's result, or the StepSkipped it raised
CallModels = Callable[[Sequence[Stage], RunContext, Results], Mapping[str, StageResult | StepSkipped]]


def call_directly(stage: Stage, ctx: RunContext, done: Results) -> StageResult | None:
    """Return ``stage``'s result, run in this thread: how ``salesbi run`` executes a plan."""
    return stage.run(ctx, done)


def call_models_in_threads(
    stages: Sequence[Stage], ctx: RunContext, done: Results
) -> Mapping[str, StageResult | StepSkipped]:
    """Return each model stage's result (or the StepSkipped it raised), run side by side in threads.

    The model steps are independent of each other and spend most of their time where the GIL
    is released (LightGBM, numpy): on a machine with more than one core they overlap, at most
    ``params.fit_workers`` at a time (each holds its own working memory). A failure of one step
    fails the run once every step has ended (its step is recorded).
    """
    out: dict[str, StageResult | StepSkipped] = {}
    workers = max(1, min(len(stages), ctx.params.fit_workers))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="salesbi-model") as pool:
        futures = {stage.name: pool.submit(stage.run, ctx, done) for stage in stages}
    for name, future in futures.items():
        try:
            result = future.result()
        except StepSkipped as skipped:
            out[name] = skipped
            continue
        except BaseException:
            ctx.summary.failed_step = ctx.summary.failed_step or name
            raise
        if result is not None:
            out[name] = result
    return out


def execute(
    execution: Execution,
    stages: Sequence[Stage],
    call: CallStage = call_directly,
    call_models: CallModels | None = None,
) -> Results:
    """Run ``stages`` in order via ``call`` (model stages together via ``call_models``); return the results.

    Each stage gets the results of the stages before it. A stage that raises
    :class:`StepSkipped` is recorded as a warning and the run goes on; any other
    error propagates (``execution.results`` then holds what finished).
    """
    ctx = execution.context
    map_large_allocations()  # large blocks freed inside a step go back to the OS (salesbi.memory)
    freeze_long_lived_objects()  # the libraries' objects are not walked by every step's GC again
    try:
        return _execute(execution, stages, call, call_models)
    finally:  # the fact spilled by this run's report step (salesbi.fact_spill), whatever happened
        from salesbi.fact_spill import remove_spills
        from salesbi.reading.spilled import remove_ingest_spills

        remove_spills(ctx.params.out_dir, ctx.run_id)
        remove_ingest_spills(ctx.params.out_dir, ctx.run_id)  # the source tables the read spilled
        drop_fact_build(execution.results)  # the push-down's build table in the warehouse


def drop_fact_build(done: Results) -> None:
    """Drop the run's build table of the fact's lines from the warehouse, if the report step made one.

    A failure to drop is logged, not raised (the run's own error, if any, is the one to report):
    the next run drops what is left (:func:`salesbi.reports.sql.fact_build.drop_stale_builds`).
    """
    table, wh = fact_build(done), done.find(Warehouse)
    if table is None or wh is None:
        return
    from salesbi.reports.sql.fact_build import drop_tables

    try:
        drop_tables(wh.engine, [table.name])
    except sa.exc.SQLAlchemyError as exc:
        log.warning("staging.%s could not be dropped (%s): the next run drops it", table.name, exc)


def _execute(
    execution: Execution, stages: Sequence[Stage], call: CallStage, call_models: CallModels | None
) -> Results:
    ctx = execution.context
    groups: list[list[Stage]] = []
    for stage in stages:
        if call_models is not None and stage.model and groups and groups[-1][0].model:
            groups[-1].append(stage)
        else:
            groups.append([stage])
    finished = 0
    for group in groups:
        ctx.tick(group[0].name, finished, len(stages))
        log.info("run %s: %s", ctx.run_id, ", ".join(s.name for s in group))
        if group[0].model:  # the order-grain inputs of every model step left (and the insights)
            execution.results = release(  # what the inputs replace (core's lines without reports)
                shared_model_inputs(ctx, execution.results, [s.name for s in stages[finished:]]),
                stages[finished:],
            )
        if call_models is not None and group[0].model:
            for name, outcome in call_models(group, ctx, execution.results).items():
                if isinstance(outcome, StepSkipped):
                    skip(ctx, name, outcome)
                else:
                    execution.results = _added(ctx, execution.results, name, outcome)
        else:
            try:
                result = call(group[0], ctx, execution.results)
            except StepSkipped as skipped:
                skip(ctx, group[0].name, skipped)
            else:
                execution.results = _added(ctx, execution.results, group[0].name, result)
                del result  # the results hold it: this local would keep alive what release drops
        finished += len(group)
        execution.results = release(execution.results, stages[finished:])
        release_freed_memory()  # what the released results and the stage's temporaries freed, back to the OS
    ctx.tick("done", len(stages), len(stages))
    return execution.results


def _added(ctx: RunContext, done: Results, stage: str, result: StageResult | None) -> Results:
    """Return ``done`` with ``stage``'s result; a model stage's refit decision goes into the run summary."""
    if isinstance(result, ModelOutput) and result.decision:
        ctx.summary.outputs.setdefault("model_decisions", {})[stage] = dict(result.decision)
    return done.add(stage, result)


#: the core tables with a row per order or order line: the fact table holds them once it is built
ORDER_LINES = frozenset({"orders", "order_items"})


def release(done: Results, remaining: Sequence[Stage]) -> Results:
    """Return ``done`` without the large results no remaining stage needs (memory stays one copy of the data).

    The source tables go once ingested; the core frames once the report and model
    stages have run, and their order lines (``orders``, ``order_items``) as soon as the
    fact table holds every line (the model stages read the lines from the fact) or the model
    stages' order-grain inputs are computed (a run without the report step); the
    validated rows handed to the core stage once it has them; the order-grain inputs computed
    for the model stages (:func:`shared_model_inputs`) once no model stage remains (the
    insights' small aggregate until the insights have run). What the
    run's record and artifacts read (warehouse, counts, published frames) stays.
    """
    needed = {n for stage in remaining for n in stage.needs}
    if "source tables" not in needed and "read" in done.by_stage:
        done = done.replace("read", None)
    if "core frames" not in needed and "core" in done.by_stage:
        done = done.replace("core", None)
    core = done.by_stage.get("core")
    # the model steps' inputs at order grain hold what they read of the lines (shared_model_inputs)
    inputs_held = MODEL_INPUTS in done.by_stage and not any(stage.name == "reports" for stage in remaining)
    if (
        isinstance(core, CoreFrames)
        and (ORDER_LINES & set(core.tables) or core.lines is not None)
        and ("fact_order_lines" in done.frames() or "fact_order_lines" in done.spilled() or inputs_held)
    ):
        kept = {name: frame for name, frame in core.tables.items() if name not in ORDER_LINES}
        done = done.replace("core", dataclass_replace(core, tables=kept, lines=None))
    shared = done.by_stage.get(MODEL_INPUTS)
    if isinstance(shared, ModelInputs) and not any(stage.model for stage in remaining):
        keep = any(stage.name == "insights" for stage in remaining)
        left = ModelInputs(insights=shared.insights) if keep and shared.insights is not None else None
        done = done.replace(MODEL_INPUTS, left)
    ingested = done.by_stage.get("ingest")
    if isinstance(ingested, Ingested) and ingested.core is not None and "core" in done.by_stage:
        done = done.replace("ingest", dataclass_replace(ingested, core=None, core_spilled={}))
    return done


def skip(ctx: RunContext, step: str, skipped: StepSkipped) -> None:
    """Record that ``step`` could not run on this data (a warning); the run goes on."""
    ctx.summary.failed_step = None
    ctx.summary.warn(step, skipped.message, kind="skipped")
    log.warning("run %s: step %s skipped: %s", ctx.run_id, step, skipped.message)


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
    execution = Execution(start_run(params, flow=flow, run_id=run_id, progress=progress))
    # the model steps overlap where cores allow (params.model_workers; 1 runs them one after another)
    side_by_side = call_models_in_threads if params.fit_workers > 1 else None
    with run_lock(params.out_dir, execution.run_id, timeout=params.lock_timeout), recorded(execution):
        execute(execution, plan(params.steps), call_models=side_by_side)
    return execution.summary
