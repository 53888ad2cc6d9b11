"""The ``salesbi`` command line.

Errors a user can meet (a :class:`salesbi.errors.SalesBIError`) print one
message naming file, line, column and what to do, and exit with status 2 — no
traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from salesbi.errors import SalesBIError
from salesbi.params import DEFAULT_INGEST_SPILL_ROWS

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])
powerbi_app = typer.Typer(no_args_is_help=True, help="Build the Power BI project.")
app.add_typer(powerbi_app, name="powerbi")
console = Console(stderr=True)

DEFAULT_SAMPLE = Path("var") / "sample"
DEFAULT_OUT = Path("out")

SourceOpt = Annotated[Path, typer.Option("--source", "-s", help="folder with the company's CSV files")]
ProfileOpt = Annotated[str, typer.Option("--profile", "-p", help="profile name (profiles/) or YAML path")]
WarehouseOpt = Annotated[
    str | None,
    typer.Option(
        "--warehouse", "-w", help="SQLAlchemy URL (default $SALESBI_WAREHOUSE_URL, else SQLite in var/)"
    ),
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="output folder")]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@contextmanager
def _progress_bar(enabled: bool = True) -> Iterator[Callable[[str, int, int], None] | None]:
    if not enabled or not console.is_terminal:
        last: dict[str, str] = {}

        def plain(label: str, done: int, total: int) -> None:
            if last.get("label") != label:
                console.print(f"[{done}/{total}] {label}")
                last["label"] = label

        yield plain
        return
    with Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("starting", total=1)

        def update(label: str, done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total)

        yield update


def _fail(exc: SalesBIError) -> None:
    console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _print_outputs(doc: dict[str, Any]) -> None:
    console.print(f"\n[bold]run {doc['run_id']}[/]: {doc['status']}")
    if doc["tables"]:
        console.print("table            read   loaded  rejected  unchanged  in warehouse")
        for name, c in doc["tables"].items():
            console.print(
                f"{name:<15}{c['read']:>7}{c['loaded']:>9}{c['rejected']:>10}{c.get('unchanged') or 0:>11}"
                f"{c['warehouse_rows'] or 0:>14}"
            )
    for w in doc.get("warnings") or []:
        console.print(f"[yellow]warning[/] ({w['kind']}, {w['step']}): {w['what']}", highlight=False)
    console.print("\n[bold]outputs[/]")
    for key, value in doc["outputs"].items():
        if key == "models" and isinstance(value, dict):
            for name, folder in value.items():
                console.print(f"  {'model ' + name:<20} {folder}")
            continue
        if key == "reports_built_in" and isinstance(value, dict):  # --reports-in warehouse
            value = f"{len(value['warehouse'])} tables in the warehouse, {len(value['python'])} in Python"
        elif key == "ingest_changes" and isinstance(value, dict):
            unchanged = sum((value.get("unchanged") or {}).values())
            validated = sum((value.get("validated") or {}).values())
            value = f"{value.get('mode')}: {validated} rows validated, {unchanged} unchanged"
        elif key == "model_decisions" and isinstance(value, dict):
            value = ", ".join(f"{step} {d.get('action')} ({d.get('reason')})" for step, d in value.items())
        elif isinstance(value, dict | list):
            value = f"{len(value)} tables"
        console.print(f"  {key:<20} {value}")


WarnShareOpt = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        help="warn when a table has more than this share of its rows rejected (default 0.02, or the profile)",
    ),
]
MaxShareOpt = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        help="fail when a table has more than this share of its rows rejected (default 0.20, or the profile)",
    ),
]


@app.command()
def generate(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="folder to write the seven CSVs into")
    ] = DEFAULT_SAMPLE,
    order_lines: Annotated[int, typer.Option("--order-lines", "-n", min=100)] = 100_000,
    seed: Annotated[int, typer.Option("--seed")] = 42,
) -> None:
    """Generate a sample company: the seven canonical CSVs plus its ground truth."""
    from salesbi.generate import generate_company

    summary = generate_company(out, order_lines=order_lines, seed=seed)
    console.print(f"wrote a sample company to {out.resolve()}: {summary}")


BlockRowsOpt = Annotated[
    int,
    typer.Option(
        min=1,
        help="rows of a long table (order_items) hashed, validated and staged at a time: bounds the "
        "ingest's memory; the result is the same for any value",
    ),
]
SpillRowsOpt = Annotated[
    int,
    typer.Option(
        min=0,
        help="order_items with at least this many lines is written to the run's staging folder block by "
        "block as it is read and never held whole in memory (0: always); the result is the same",
    ),
]


@app.command()
def ingest(
    source: SourceOpt,
    profile: ProfileOpt = "canonical",
    warehouse: WarehouseOpt = None,
    out: OutOpt = DEFAULT_OUT,
    warn_rejected_share: WarnShareOpt = None,
    max_rejected_share: MaxShareOpt = None,
    block_rows: BlockRowsOpt = 500_000,
    spill_rows: SpillRowsOpt = DEFAULT_INGEST_SPILL_ROWS,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Read, validate and load a source into the warehouse (staging → core)."""
    _run(
        source=source,
        profile=profile,
        warehouse=warehouse,
        out=out,
        steps="ingest",
        verbose=verbose,
        extra={
            "warn_rejected_share": warn_rejected_share,
            "max_rejected_share": max_rejected_share,
            "ingest_block_rows": block_rows,
            "ingest_spill_rows": spill_rows,
        },
    )


ReportsInOpt = Annotated[
    str,
    typer.Option(
        help="where the report tables are built: python (pandas), or warehouse (SQL inside the warehouse: "
        "SQLite, PostgreSQL or SQL Server; for histories larger than memory)"
    ),
]


@app.command()
def report(
    warehouse: WarehouseOpt = None,
    out: OutOpt = DEFAULT_OUT,
    as_of: Annotated[str | None, typer.Option(help="as-of date YYYY-MM-DD")] = None,
    reports_in: ReportsInOpt = "python",
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Rebuild the report layer (rpt tables, Parquet, insights) from core, without re-ingesting."""
    _run(
        source=None,
        profile="canonical",
        warehouse=warehouse,
        out=out,
        steps="reports",
        as_of=as_of,
        verbose=verbose,
        extra={"reports_in": reports_in},
    )


@app.command()
def run(
    source: SourceOpt,
    profile: ProfileOpt = "canonical",
    warehouse: WarehouseOpt = None,
    out: OutOpt = DEFAULT_OUT,
    steps: Annotated[
        str, typer.Option(help="comma-separated: ingest,reports,segments,predictions,forecast,powerbi")
    ] = "ingest,reports,segments,predictions,forecast,powerbi",
    as_of: Annotated[str | None, typer.Option(help="as-of date YYYY-MM-DD")] = None,
    churn_months: Annotated[int, typer.Option(min=1)] = 2,
    reports_in: ReportsInOpt = "python",
    prefect: Annotated[
        bool,
        typer.Option(
            "--prefect",
            help="run as the Prefect flow sales-pipeline ($PREFECT_API_URL, else a temporary local server)",
        ),
    ] = False,
    task_runner: Annotated[
        str, typer.Option(help="with --prefect: threads or dask (model steps)")
    ] = "threads",
    dask_address: Annotated[
        str | None, typer.Option(help="with --task-runner dask: scheduler address (default: local cluster)")
    ] = None,
    model_threads: Annotated[
        int,
        typer.Option(min=1, help="LightGBM threads per model fit (raise on a machine with idle cores)"),
    ] = 1,
    model_workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="independent model fits, and the model steps, side by side, one thread each "
            "(default: the usable cores; 1: one after another, less memory)",
        ),
    ] = None,
    forecast_frequency: Annotated[
        str | None, typer.Option(help="forecast period: D, W or M (default: from the data)")
    ] = None,
    forecast_horizon: Annotated[
        int | None, typer.Option(min=1, max=366, help="periods to forecast (default: from the data)")
    ] = None,
    prediction_horizon: Annotated[
        int, typer.Option(min=7, max=730, help="days ahead the customer predictions look")
    ] = 90,
    connect_timeout: Annotated[
        int, typer.Option(min=1, max=600, help="seconds to wait for the warehouse to accept a connection")
    ] = 15,
    lock_timeout: Annotated[
        int,
        typer.Option(
            min=0, help="seconds to wait for another run writing to the same --out folder (0: fail at once)"
        ),
    ] = 0,
    week_start: Annotated[
        str, typer.Option(help="first day of a forecast week: MON, TUE, WED, THU, FRI, SAT or SUN")
    ] = "MON",
    warn_rejected_share: WarnShareOpt = None,
    max_rejected_share: MaxShareOpt = None,
    ingest_mode: Annotated[
        str,
        typer.Option(help="auto, snapshot, new_only or full: which rows of the drop to validate and load"),
    ] = "auto",
    block_rows: BlockRowsOpt = 500_000,
    spill_rows: SpillRowsOpt = DEFAULT_INGEST_SPILL_ROWS,
    refit: Annotated[
        str, typer.Option(help="auto, always or never: refit the models, or score with the stored ones")
    ] = "auto",
    model_max_age_days: Annotated[
        int, typer.Option(min=0, help="with --refit auto: retrain stored models older than this")
    ] = 7,
    model_drift_threshold: Annotated[
        float,
        typer.Option(min=0, help="with --refit auto: retrain when the monitored error is this much worse"),
    ] = 0.25,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the whole pipeline locally (no Prefect server needed) with a progress bar."""
    _run(
        source=source,
        profile=profile,
        warehouse=warehouse,
        out=out,
        steps=steps,
        as_of=as_of,
        churn_months=churn_months,
        verbose=verbose,
        prefect=prefect,
        extra={
            "reports_in": reports_in,
            "task_runner": task_runner,
            "dask_address": dask_address,
            "model_threads": model_threads,
            "model_workers": model_workers,
            "forecast_frequency": forecast_frequency,
            "forecast_horizon": forecast_horizon,
            "prediction_horizon_days": prediction_horizon,
            "connect_timeout": connect_timeout,
            "lock_timeout": lock_timeout,
            "week_start": week_start.strip().upper(),
            "warn_rejected_share": warn_rejected_share,
            "max_rejected_share": max_rejected_share,
            "ingest_mode": ingest_mode,
            "ingest_block_rows": block_rows,
            "ingest_spill_rows": spill_rows,
            "refit": refit,
            "model_max_age_days": model_max_age_days,
            "model_drift_threshold": model_drift_threshold,
        },
    )


def _run(
    *,
    source: Path | None,
    profile: str,
    warehouse: str | None,
    out: Path,
    steps: str,
    as_of: str | None = None,
    churn_months: int = 2,
    verbose: bool = False,
    prefect: bool = False,
    extra: dict[str, Any] | None = None,
) -> None:
    from pydantic import ValidationError

    from salesbi.params import PipelineParams
    from salesbi.pipeline import run_pipeline

    _setup_logging(verbose)
    try:
        params = PipelineParams(
            source=source,
            profile=profile,
            warehouse_url=warehouse,
            out_dir=out,
            steps=steps,  # type: ignore[arg-type]
            as_of=date.fromisoformat(as_of) if as_of else None,
            churn_months=churn_months,
            **(extra or {}),
        )
    except (ValidationError, ValueError) as exc:
        _fail(SalesBIError(f"invalid parameter: {exc}", hint="see `salesbi run --help`"))
        return
    if prefect:
        _run_prefect_flow(params)
        return
    import sqlalchemy as sa

    from salesbi.warehouse.engine import resolve_url, statement_failure

    try:
        with _progress_bar() as progress:
            summary = run_pipeline(params, progress=progress)
    except SalesBIError as exc:
        _fail(exc)
        return
    except sa.exc.DBAPIError as exc:  # the warehouse failed mid-run (connection lost, server stopped)
        _fail(statement_failure(resolve_url(params.warehouse_url), exc))
        return
    doc = summary.as_dict()
    _print_outputs(doc)
    if doc["status"] == "succeeded_with_warnings":
        raise typer.Exit(code=3)


def _run_prefect_flow(params: Any) -> None:
    """Run the sales-pipeline Prefect flow in this process and print its outputs."""
    import json
    import os

    from salesbi.params import RunOptions

    if getattr(params, "warehouse_url", None):
        # a flow parameter never holds the URL (it would show in the UI): hand it over in the environment
        os.environ["SALESBI_WAREHOUSE_URL"] = params.warehouse_url
    options = (
        RunOptions(**params.model_dump(exclude={"warehouse_url"}))
        if hasattr(params, "model_dump")
        else params
    )
    if not os.environ.get("PREFECT_API_URL"):
        # the temporary API Prefect starts for this run: no telemetry (its failures offline are
        # logged as errors); a server of your own keeps its own setting
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.sales_pipeline import sales_pipeline

    state = sales_pipeline(options, return_state=True)
    summary_path = params.out_dir / "run_summary.json"
    doc: dict[str, Any] = {}
    if summary_path.exists():
        doc = json.loads(summary_path.read_text(encoding="utf-8"))
        _print_outputs(doc)
    if not state.is_completed():
        _fail(SalesBIError(f"the Prefect flow run ended {state.name}: {state.message}", file=summary_path))
    if doc.get("status") == "succeeded_with_warnings":
        raise typer.Exit(code=3)


@app.command()
def runs(
    warehouse: WarehouseOpt = None,
    last: Annotated[int, typer.Option("--last", "-n", min=1, help="how many runs to list")] = 10,
) -> None:
    """List the last runs recorded in audit.runs, newest first; runs whose process died are marked crashed."""
    import sqlalchemy as sa

    from salesbi.params import PipelineParams
    from salesbi.pipeline import open_warehouse
    from salesbi.runlog import list_runs, mark_crashed
    from salesbi.warehouse.engine import connect_failure

    try:
        engine, _ = open_warehouse(PipelineParams(warehouse_url=warehouse))
    except SalesBIError as exc:
        _fail(exc)
        return
    try:
        for gone in mark_crashed(engine):
            console.print(f"run {gone}: its process is gone, marked crashed")
        rows = list_runs(engine, last)
    except sa.exc.DBAPIError as exc:
        _fail(connect_failure(engine.url, exc))
        return
    finally:
        engine.dispose()
    typer.echo(f"{'run_id':<26} {'flow':<16} {'status':<24} {'started (UTC)':<20} {'failed step':<12} error")
    for r in rows:
        started = r["started_at"].strftime("%Y-%m-%d %H:%M:%S") if r["started_at"] else ""
        error = (r["error"] or "").splitlines()[0][:100] if r["error"] else ""
        typer.echo(
            f"{r['run_id']:<26} {r['flow'] or '':<16} {r['status']:<24} {started:<20} "
            f"{r['failed_step'] or '':<12} {error}".rstrip()
        )


@app.command()
def demo(
    out: OutOpt = DEFAULT_OUT,
    sample: Annotated[Path, typer.Option(help="where the generated sample company lives")] = DEFAULT_SAMPLE,
    order_lines: Annotated[int, typer.Option("--order-lines", "-n", min=100)] = 100_000,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Generate a sample company (if none is there yet) and run everything on the embedded warehouse."""
    if not (sample / "order_items.csv").exists():
        from salesbi.generate import generate_company

        console.print(f"generating a sample company ({order_lines:,} order lines) in {sample} ...")
        generate_company(sample, order_lines=order_lines, seed=seed)
    _run(
        source=sample,
        profile="canonical",
        warehouse=None,
        out=out,
        steps="ingest,reports,segments,predictions,forecast,powerbi",
        verbose=verbose,
    )
    _draw_previews(out / "powerbi")


def _draw_previews(project: Path) -> None:
    """Draw the report pages of ``project`` to ``<project>/preview/*.png`` (a note if it cannot)."""
    from salesbi.powerbi.evaluate import DaxUnavailable
    from salesbi.powerbi.preview import PreviewUnavailable, render_previews

    if not (project / "SalesBI.pbip").is_file():
        _fail(
            SalesBIError(
                "no Power BI project here", file=project, hint="run `salesbi demo` or pass --project"
            )
        )
    parquet = project / "data"
    try:
        pngs = render_previews(project, parquet, project / "preview")
    except (DaxUnavailable, PreviewUnavailable) as exc:
        console.print(f"no page previews: {exc.message}")
        return
    console.print(f"drew {len(pngs)} Power BI page previews in {(project / 'preview').resolve()}")


@powerbi_app.command("preview")
def powerbi_preview(
    project: Annotated[
        Path, typer.Option("--project", "-p", help="a run's Power BI folder (<out>/powerbi, data/ inside)")
    ] = DEFAULT_OUT / "powerbi",
) -> None:
    """Draw every report page to PNG in <project>/preview/ with the run's numbers (no Desktop needed)."""
    _draw_previews(project)


@powerbi_app.command("build")
def powerbi_build(
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for the PBIP project")] = Path("powerbi"),
    parquet_folder: Annotated[
        str | None,
        typer.Option(help="absolute folder of the Parquet files (default: C:\\salesbi\\out\\powerbi\\data)"),
    ] = None,
) -> None:
    """Write the Power BI project (PBIP: TMDL model + PBIR report) generated from the rpt tables.

    ``make run`` writes its own copy to out/powerbi/ already pointing at this machine's Parquet.
    """
    from salesbi.powerbi import DEFAULT_PARQUET_FOLDER, build_powerbi_project

    folder = parquet_folder or DEFAULT_PARQUET_FOLDER
    try:
        path = build_powerbi_project(out, parquet_folder=folder)
    except SalesBIError as exc:
        _fail(exc)
    console.print(f"wrote the Power BI project to {Path(path).resolve()}")


@app.command()
def api(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port", min=1, max=65535)] = 8000,
) -> None:
    """Serve the segmentation, prediction and forecast API (keys from $SALESBI_API_KEYS; see docs/api.md)."""
    from salesbi.api import ApiSettings, serve

    serve(host=host, port=port, settings=ApiSettings.from_env())


@app.command("sql-server")
def sql_server(
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for the T-SQL scripts")] = Path(
        "sql_server"
    ),
) -> None:
    """Write the T-SQL scripts for a SQL Server DBA (schemas, tables, Power BI read-only role)."""
    from salesbi.warehouse.tsql import write_scripts

    for path in write_scripts(out):
        console.print(f"wrote {path}")


rejects_app = typer.Typer(no_args_is_help=True, help="Export rejected rows for fixing, and replay the fixes.")
app.add_typer(rejects_app, name="rejects")


@rejects_app.command("export")
def rejects_export(
    run_id: Annotated[str, typer.Option("--run", help="run id (run_summary.json, audit.runs)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write")],
    warehouse: WarehouseOpt = None,
) -> None:
    """Write one CSV row per rejected record of a run: every reason, the raw line and an editable copy."""
    from salesbi.rejects import export_rejects
    from salesbi.warehouse.engine import create_engine

    try:
        engine = create_engine(warehouse)
        rows = export_rejects(engine, run_id, out)
        engine.dispose()
    except SalesBIError as exc:
        _fail(exc)
        return
    console.print(f"wrote {rows} rejected records of run {run_id} to {out.resolve()}")


@rejects_app.command("replay")
def rejects_replay(
    file: Annotated[Path, typer.Argument(help="an edited export (corrected_line changed; empty removes)")],
    warehouse: WarehouseOpt = None,
    out: OutOpt = DEFAULT_OUT,
    source: Annotated[
        Path | None, typer.Option("--source", "-s", help="default: the run's source folder")
    ] = None,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="default: the run's profile")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Re-ingest the corrected records through the same read and validation as any run."""
    from salesbi.rejects import replay
    from salesbi.warehouse.engine import create_engine

    _setup_logging(verbose)
    try:
        engine = create_engine(warehouse)
        summary, skipped = replay(
            engine, file, warehouse_url=warehouse, out_dir=out, source=source, profile=profile
        )
        engine.dispose()
    except SalesBIError as exc:
        _fail(exc)
        return
    for note in skipped:
        console.print(f"not replayed: {note}")
    _print_outputs(summary.as_dict())
    if summary.status == "succeeded_with_warnings":
        raise typer.Exit(code=3)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI (console script entry point)."""
    try:
        app(args=argv, standalone_mode=True)
    except SalesBIError as exc:  # raised outside a command's own handling
        console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
