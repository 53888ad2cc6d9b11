"""The whole run on a generated company: counts add up, reruns change nothing, failures keep good reports."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from salesbi import contract
from salesbi.params import PipelineParams
from salesbi.pipeline import run_pipeline
from salesbi.warehouse.engine import create_engine

pytestmark = pytest.mark.slow

FULL = ("ingest", "reports", "segments", "predictions", "forecast", "powerbi")


def _params(workdir: Path, source: Path, steps: tuple[str, ...] = FULL) -> PipelineParams:
    return PipelineParams(
        source=source,
        profile="canonical",
        warehouse_url=f"sqlite:///{workdir / 'var' / 'warehouse.db'}",
        out_dir=workdir / "out",
        steps=steps,  # type: ignore[arg-type]
    )


#: columns that name the run or the model version (UTC time + content hash), not the data
RUN_SPECIFIC = {"run_id", "model_version", "created_at", "generated_at"}


def _fingerprint(workdir: Path) -> dict[str, str]:
    """Return a hash of every rpt table's content and of every Parquet file."""
    out: dict[str, str] = {}
    engine = create_engine(f"sqlite:///{workdir / 'var' / 'warehouse.db'}")
    with engine.connect() as conn:
        names = [r[0] for r in conn.exec_driver_sql("SELECT name FROM rpt.sqlite_master WHERE type='table'")]
        for name in sorted(names):
            cols = [r[1] for r in conn.exec_driver_sql(f'PRAGMA rpt.table_info("{name}")')]
            keep = ", ".join(f'"{c}"' for c in cols if c not in RUN_SPECIFIC)
            rows = conn.exec_driver_sql(f'SELECT {keep} FROM rpt."{name}"').fetchall()
            out[f"rpt.{name}"] = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
    engine.dispose()
    for path in sorted((workdir / "out" / "powerbi" / "data").glob("*.parquet")):
        frame = pd.read_parquet(path)
        frame = frame.drop(columns=[c for c in frame.columns if c in RUN_SPECIFIC])
        out[path.name] = hashlib.sha256(pd.util.hash_pandas_object(frame).values.tobytes()).hexdigest()
    return out


def _runs(workdir: Path) -> list[tuple[str, str | None]]:
    engine = sa.create_engine(f"sqlite:///{workdir / 'var' / 'warehouse.audit.db'}")
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT status, failed_step FROM runs ORDER BY started_at, run_id"
        ).fetchall()
    engine.dispose()
    return [(r[0], r[1]) for r in rows]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, sample_company: Path) -> Path:
    """A workdir after one successful full run on the sample company."""
    workdir = tmp_path_factory.mktemp("baseline")
    run_pipeline(_params(workdir, sample_company))
    return workdir


@pytest.fixture
def workdir(baseline: Path, tmp_path: Path) -> Path:
    """A private copy of the baseline warehouse and outputs."""
    target = tmp_path / "w"
    shutil.copytree(baseline, target)
    return target


def test_counts_add_up_and_match_the_csv_files(baseline: Path, sample_company: Path) -> None:
    summary = json.loads((baseline / "out" / "run_summary.json").read_text())
    assert summary["status"] == "succeeded"
    engine = create_engine(f"sqlite:///{baseline / 'var' / 'warehouse.db'}")
    for spec in contract.TABLES:
        counts = summary["tables"][spec.name]
        assert counts["read"] == counts["loaded"] + counts["rejected"]
        csv_rows = len(pd.read_csv(sample_company / f"{spec.name}.csv", dtype=str, keep_default_na=False))
        assert counts["read"] == csv_rows, spec.name
        with engine.connect() as conn:
            in_core = conn.execute(sa.text(f"SELECT COUNT(*) FROM core.{spec.name}")).scalar_one()
        assert counts["warehouse_rows"] == in_core == counts["loaded"], spec.name
    engine.dispose()
    assert _runs(baseline) == [("succeeded", None)]
    for key in ("warehouse", "run_summary", "parquet", "insights", "powerbi_project", "validation_summary"):
        assert key in summary["outputs"], key


def test_models_are_stored_where_the_api_loads_them(baseline: Path) -> None:
    from salesbi.modelstore import load_latest, versions

    models = baseline / "out" / "models"
    for name in ("customer_segments", "customer_sales"):
        assert len(versions(models, name)) == 1, name
        assert load_latest(models, name).model_name == name


def test_net_sales_in_reports_match_a_direct_sum_of_the_csv(baseline: Path, sample_company: Path) -> None:
    items = pd.read_csv(sample_company / "order_items.csv", dtype={"order_id": str})
    orders = pd.read_csv(sample_company / "orders.csv", dtype={"order_id": str})
    lines = items.merge(orders[["order_id", "status"]], on="order_id")
    live = lines[lines["status"] != "cancelled"]
    expected = (live["quantity"] * live["unit_price"] * (1 - live["discount"].fillna(0))).sum()
    fact = pd.read_parquet(baseline / "out" / "powerbi" / "data" / "fact_order_lines.parquet")
    assert fact["net_sales"].sum() == pytest.approx(expected, rel=1e-9, abs=0.5)


def test_rerun_with_same_input_changes_nothing(workdir: Path, sample_company: Path) -> None:
    before = _fingerprint(workdir)
    core_before = _core_snapshot(workdir)
    insights_file = workdir / "out" / "powerbi" / "data" / "insights.parquet"
    insights_before = pd.read_parquet(insights_file)
    summary = run_pipeline(_params(workdir, sample_company))
    assert _core_snapshot(workdir) == core_before
    # the same drop again: every row is unchanged (content hash), none validated or loaded again
    assert all(c.loaded == 0 and c.unchanged == c.read for c in summary.tables.values())
    after = _fingerprint(workdir)
    # apart from run ids and model versions, every rpt table and Parquet file is identical, except
    # data_quality, the per-run counts (this run: 0 loaded, every row unchanged), the insight
    # saying that the stored models scored (the models are not refitted: refit=auto), and the
    # forecast_accuracy notes saying its scores are the stored model's backtest (not re-run)
    assert before.keys() == after.keys()
    changed = {k for k in before if before[k] != after[k]}
    per_run = {"rpt.data_quality", "data_quality.parquet", "rpt.insights", "insights.parquet"}
    assert changed <= per_run | {"rpt.forecast_accuracy", "forecast_accuracy.parquet"}, changed
    assert {d["action"] for d in summary.outputs["model_decisions"].values()} == {"reuse"}
    accuracy = pd.read_parquet(workdir / "out" / "powerbi" / "data" / "forecast_accuracy.parquet")
    assert accuracy["note"].str.contains("stored backtest of forecast model").all()
    insights_after = pd.read_parquet(insights_file)
    reused = insights_after["insight_id"] == "data.models_reused"
    assert reused.sum() == 1
    pd.testing.assert_frame_equal(
        insights_after[~reused].drop(columns="rank").reset_index(drop=True),
        insights_before.drop(columns="rank").reset_index(drop=True),
    )


def _core_snapshot(workdir: Path) -> dict[str, str]:
    engine = create_engine(f"sqlite:///{workdir / 'var' / 'warehouse.db'}")
    out = {}
    with engine.connect() as conn:
        for spec in contract.TABLES:
            rows = conn.exec_driver_sql(f"SELECT * FROM core.{spec.name}").fetchall()
            out[spec.name] = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
    engine.dispose()
    return out


def _boom(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("injected failure")


# stage that fails → (what to patch, the failed_step recorded, steps to run)
FAILURES: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], str, tuple[str, ...]]] = {
    "read": (lambda mp: mp.setattr("salesbi.ingest.read_source", _boom), "read", ("ingest", "reports")),
    "validate": (
        lambda mp: mp.setattr("salesbi.ingest.validate_staged", _boom),
        "validate",
        ("ingest", "reports"),
    ),
    "load": (lambda mp: mp.setattr("salesbi.ingest.upsert_statement", _boom), "load", ("ingest", "reports")),
    "reports": (lambda mp: mp.setattr("salesbi.reports.build.build_reports", _boom), "reports", ("reports",)),
    "segments": (
        lambda mp: mp.setattr("salesbi.segmentation.segment_customers", _boom),
        "segments",
        ("reports", "segments"),
    ),
    "predictions": (
        lambda mp: mp.setattr("salesbi.prediction.predict_customer_sales", _boom),
        "predictions",
        ("reports", "predictions"),
    ),
    "forecast": (
        lambda mp: mp.setattr("salesbi.forecasting.forecast_sales", _boom),
        "forecast",
        ("reports", "forecast"),
    ),
    "insights": (
        lambda mp: mp.setattr("salesbi.reports.insights.build_insights", _boom),
        "insights",
        ("reports",),
    ),
    "publish-parquet": (
        lambda mp: mp.setattr("salesbi.publish.stage_parquet", _boom),
        "publish",
        ("reports",),
    ),
    "publish-warehouse": (
        lambda mp: mp.setattr("salesbi.publish.bulk_insert", _boom),
        "publish",
        ("reports",),
    ),
}


@pytest.mark.parametrize("stage", sorted(FAILURES))
def test_a_failure_in_any_stage_keeps_the_last_good_reports(
    stage: str, workdir: Path, sample_company: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch, failed_step, steps = FAILURES[stage]
    before = _fingerprint(workdir)
    good = json.loads((workdir / "out" / "run_summary.json").read_text())["outputs"]
    insights_md = (workdir / "out" / "insights.md").read_text()
    # refit: the baseline stored its models, which a daily run would score with instead of fitting
    failing = _params(workdir, sample_company, steps).model_copy(update={"refit": "always"})
    with monkeypatch.context() as mp:
        patch(mp)
        with pytest.raises(RuntimeError, match="injected failure"):
            run_pipeline(failing)
    assert _fingerprint(workdir) == before
    assert (workdir / "out" / "insights.md").read_text() == insights_md
    # every failure is recorded, a read failure too (the warehouse answers)
    assert _runs(workdir)[-1] == ("failed", failed_step)
    summary = json.loads((workdir / "out" / "run_summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["failed_step"] == failed_step
    assert "injected failure" in summary["error"]
    # the last good outputs are still the ones named, by the run that published them
    for key in ("rpt_tables", "parquet", "models", "insights", "powerbi_project", "published_by"):
        assert summary["outputs"][key] == good[key], key
    assert any("nothing was published" in note for note in summary["notes"])
    # the next run succeeds with no clean-up
    run_pipeline(_params(workdir, sample_company, steps))
    assert _runs(workdir)[-1] == ("succeeded", None)


def test_model_threads_reach_the_lightgbm_fits(tmp_path: Path) -> None:
    from salesbi.pipeline import model_inputs, start_run
    from salesbi.stage_results import CoreFrames, Frames, Results

    done = (
        Results()
        .add("core", CoreFrames({}, "warehouse"))
        .add("reports", Frames({"fact_order_lines": pd.DataFrame()}))
    )

    def params(threads: int | None, step: str) -> PipelineParams:
        options = {} if threads is None else {"model_threads": threads}
        ctx = start_run(PipelineParams(out_dir=tmp_path, **options), flow="test")  # type: ignore[arg-type]
        return model_inputs(ctx, done, step)[2]  # type: ignore[no-any-return]

    assert params(None, "predictions").model_threads == 1  # the safe default on shared cores
    assert params(3, "predictions").model_threads == params(3, "forecast").model_threads == 3


def test_rebuilding_reports_keeps_the_model_insights(workdir: Path) -> None:
    before = pd.read_parquet(workdir / "out" / "powerbi" / "data" / "insights.parquet")
    summary = run_pipeline(_params(workdir, workdir / "unused", ("reports",)))
    after = pd.read_parquet(workdir / "out" / "powerbi" / "data" / "insights.parquet")
    assert len(after) == len(before) and set(after["topic"]) == set(before["topic"])
    assert summary.outputs["published_by"] == summary.run_id
    assert "insights" in summary.outputs["rpt_tables"]


def test_a_missing_default_source_names_the_command_that_creates_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salesbi.errors import SalesBIError

    monkeypatch.chdir(tmp_path)
    params = PipelineParams(source=Path("var/sample"), out_dir=Path("out"), steps=("ingest",))
    with pytest.raises(SalesBIError, match="salesbi generate --out var/sample"):
        run_pipeline(params)
    assert json.loads(Path("out/run_summary.json").read_text())["failed_step"] == "read"


def test_the_plan_is_declared_once() -> None:
    from salesbi.pipeline import STAGES, plan

    names = [s.name for s in STAGES]
    assert names == [
        "read", "connect", "ingest", "core", "reports", "segments", "predictions", "forecast",
        "insights", "publish", "powerbi",
    ]  # fmt: skip
    assert [s.name for s in plan(("forecast",))] == ["connect", "core", "forecast", "publish"]
    assert [s.name for s in plan(("ingest",))] == ["read", "connect", "ingest"]
    assert [s.name for s in plan(("powerbi",))] == ["connect", "powerbi"]
    assert [s.name for s in STAGES if s.publishes] == ["publish"]
    produced = {p for s in STAGES for p in s.produces}
    for stage in STAGES:  # every need is produced by an earlier stage or given from outside
        earlier = {p for s in STAGES[: STAGES.index(stage)] for p in s.produces}
        outside = {"source folder", "warehouse URL", "rpt model tables", "frames", "Parquet"}
        assert set(stage.needs) <= earlier | outside | produced, stage.name


#: step selections run by both the CLI and the flow
SELECTIONS: tuple[tuple[str, ...], ...] = (
    ("ingest",),
    ("reports",),
    ("segments",),
    ("predictions",),
    ("forecast",),
    ("reports", "forecast"),
    ("segments", "predictions", "forecast"),
    FULL,
)


@pytest.fixture
def stored_fits(baseline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace each model fit by the baseline's published result (the same object for CLI and flow).

    The models themselves are tested elsewhere; here only which stages run and what they publish matters.
    """
    from types import SimpleNamespace

    from salesbi.pipeline import MODEL_FITS

    data = baseline / "out" / "powerbi" / "data"
    for step, (_, tables) in list(MODEL_FITS.items()):
        result = SimpleNamespace(
            **{t: pd.read_parquet(data / f"{t}.parquet") for t in tables}, model_runs=[], models={}
        )
        monkeypatch.setitem(MODEL_FITS, step, (lambda *_a, _r=result: _r, tables))


@pytest.mark.integration
@pytest.mark.prefect
def test_cli_and_flow_publish_the_same_tables_for_every_selection(
    prefect_api: None, workdir: Path, sample_company: Path, stored_fits: None, tmp_path: Path
) -> None:
    from flows.sales_pipeline import sales_pipeline
    from salesbi.params import RunOptions

    flow_dir = tmp_path / "flow"
    shutil.copytree(workdir, flow_dir)
    for steps in SELECTIONS:
        cli = run_pipeline(_params(workdir, sample_company, steps)).as_dict()
        flow_params = _params(flow_dir, sample_company, steps)
        options = RunOptions(
            **flow_params.model_dump(exclude={"warehouse_url", "warehouse_env"}), warehouse_env="SALESBI_T_WH"
        )
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SALESBI_T_WH", str(flow_params.warehouse_url))
            flow: dict[str, Any] = sales_pipeline(options)  # type: ignore[assignment]
        assert isinstance(flow, dict)
        assert flow["status"] == cli["status"], steps
        assert (flow["outputs"]["published_by"] == flow["run_id"]) == (
            cli["outputs"]["published_by"] == cli["run_id"]
        ), steps
        assert flow["outputs"]["rpt_tables"] == cli["outputs"]["rpt_tables"], steps
        assert set(flow["timings"]) == set(cli["timings"]), steps
        assert flow["tables"] == cli["tables"], steps
