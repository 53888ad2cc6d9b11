"""The report and model stages use the rows this run loaded instead of reading core back, only when equal.

Cross-checked against the warehouse itself: the frames handed on equal core read
back (SQLite and PostgreSQL), a run that reuses them publishes the same tables as
a run that reads core back, and a drop smaller than core is read back.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from salesbi import contract
from salesbi.params import PipelineParams
from salesbi.pipeline import (
    connect_stage,
    core_stage,
    ingest_stage,
    read_core,
    read_stage,
    run_pipeline,
    start_run,
)
from salesbi.stage_results import Ingested, Results, RunContext, Warehouse

pytestmark = pytest.mark.slow


def _ingest(ctx: RunContext) -> Results:
    done = Results()
    for name, stage in (("read", read_stage), ("connect", connect_stage), ("ingest", ingest_stage)):
        done = done.add(name, stage(ctx, done))
    return done


def _params(source: Path, url: str, out: Path, steps: tuple[str, ...] = ("ingest",)) -> PipelineParams:
    return PipelineParams(source=source, warehouse_url=url, out_dir=out, steps=steps)  # type: ignore[arg-type]


def _assert_equal_to_core_read_back(done: Results) -> None:
    ingested = done.need(Ingested, "test")
    assert ingested.core is not None
    wh = done.need(Warehouse, "test")
    back = read_core(wh.engine, wh.metadata)
    for spec in contract.TABLES:
        mine, theirs = ingested.core[spec.name], back[spec.name]
        assert len(mine) == len(theirs) > 0, spec.name
        key = list(spec.key)
        pd.testing.assert_frame_equal(
            mine.sort_values(key).reset_index(drop=True),
            theirs.sort_values(key).reset_index(drop=True),
            check_exact=True,
            obj=spec.name,
        )


def test_the_rows_loaded_into_an_empty_sqlite_core_equal_core_read_back(
    sample_company: Path, tmp_path: Path
) -> None:
    ctx = start_run(_params(sample_company, f"sqlite:///{tmp_path / 'wh.db'}", tmp_path / "out"))
    done = _ingest(ctx)
    _assert_equal_to_core_read_back(done)
    assert core_stage(ctx, done).origin == "this run"


@pytest.mark.postgres
@pytest.mark.integration
def test_the_rows_loaded_into_postgres_core_equal_core_read_back(
    sample_company: Path, tmp_path: Path, pg_url: str
) -> None:
    import sqlalchemy as sa

    from salesbi.warehouse.engine import create_engine

    engine = create_engine(pg_url)
    with engine.begin() as conn:  # a fresh core: drop what earlier tests left
        for schema in ("staging", "core", "rpt", "audit", "ml"):
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()
    ctx = start_run(_params(sample_company, pg_url, tmp_path / "out"))
    done = _ingest(ctx)
    _assert_equal_to_core_read_back(done)
    done.need(Warehouse, "test").engine.dispose()


def test_core_holding_rows_of_earlier_drops_is_read_back(sample_company: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wh.db'}"
    _ingest(start_run(_params(sample_company, url, tmp_path / "out")))
    partial = tmp_path / "partial"
    shutil.copytree(sample_company, partial)
    items = pd.read_csv(partial / "order_items.csv", dtype=str, keep_default_na=False)
    items.iloc[: len(items) // 2].to_csv(partial / "order_items.csv", index=False)
    ctx = start_run(_params(partial, url, tmp_path / "out"))
    done = _ingest(ctx)
    assert done.need(Ingested, "test").core is None  # core keeps the other half from the first drop
    core = core_stage(ctx, done)
    assert core.origin == "warehouse"
    assert len(core.tables["order_items"]) == len(pd.read_csv(sample_company / "order_items.csv"))


def test_a_run_that_reuses_its_rows_publishes_what_a_run_reading_core_publishes(
    sample_company: Path, tmp_path: Path
) -> None:
    from tests.test_pipeline import _fingerprint

    steps = ("ingest", "reports", "segments", "predictions", "forecast")
    workdir = tmp_path / "w"
    url = f"sqlite:///{workdir / 'var' / 'warehouse.db'}"
    first = run_pipeline(_params(sample_company, url, workdir / "out", steps))
    assert first.timings.get("read_core") is not None
    reused = _fingerprint(workdir)
    # reads core back; refits like the first run (a daily run would score with the stored models)
    run_pipeline(
        _params(sample_company, url, workdir / "out", steps[1:]).model_copy(update={"refit": "always"})
    )
    read_back = _fingerprint(workdir)
    differ = {k for k in reused if reused[k] != read_back.get(k)}
    # data_quality describes the ingest of the run that published it: only an ingesting run has one
    assert differ <= {"rpt.data_quality", "data_quality.parquet"}, differ
    assert reused.keys() == read_back.keys()
