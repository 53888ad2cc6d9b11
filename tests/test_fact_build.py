"""The push-down computes the fact's lines once per run (``salesbi.reports.sql.fact_build``).

A run with ``reports_in="warehouse"`` fills one build table ``staging.fact_build_<run>`` from
core; the report build, the model inputs, the insights and the publish read it (on SQLite every
statement the run executes is traced: one joins ``order_items`` to ``orders``). What they read
from it equals what they computed from core (exactly: the same rows, sums in cents). The
table is gone when the run ends, failed or not, and a killed run's is dropped by the next run;
a failed publish leaves ``rpt`` as it was. SQL Server: the statements compile and parse as T-SQL.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
import sqlglot

from salesbi import publish as publish_module
from salesbi.params import PipelineParams
from salesbi.pipeline import run_pipeline
from salesbi.reports.fact import FACT_ORDER_LINES
from salesbi.reports.sql import model_inputs
from salesbi.reports.sql.fact_build import (
    PREFIX,
    build_table,
    build_table_name,
    build_tables,
    create_fact_build,
    drop_fact_build,
    drop_stale_builds,
    fill_statement,
)
from salesbi.reports.sql.fact_publish import fact_insert
from salesbi.reports.sql.render import dialect_named
from salesbi.warehouse.ddl import warehouse_metadata
from salesbi.warehouse.engine import create_engine
from tests.test_fact_publish import _published_fact
from tests.test_reports_sql import _edge_core, _edge_warehouse

STEPS = ("reports", "segments", "forecast")  # the insights come with the reports


def _run(url: str, out: Path, steps: tuple[str, ...] = STEPS) -> dict[str, Any]:
    run_pipeline(PipelineParams(warehouse_url=url, out_dir=out, steps=steps, reports_in="warehouse"))
    doc: dict[str, Any] = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
    return doc


def _builds(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        return build_tables(engine)
    finally:
        engine.dispose()


def test_a_run_joins_the_order_lines_once_and_leaves_no_build_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every statement of a push-down run on SQLite, traced: one computes the fact's joins."""
    url = f"sqlite:///{tmp_path / 'wh.db'}"
    _edge_warehouse(url)
    statements: list[str] = []
    lock = threading.Lock()
    real_create_engine = sa.create_engine

    def traced_engine(*args: Any, **kwargs: Any) -> sa.Engine:
        engine = real_create_engine(*args, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _trace(dbapi_conn: Any, _record: Any) -> None:
            def keep(sql: str) -> None:
                with lock:
                    statements.append(sql)

            dbapi_conn.set_trace_callback(keep)

        return engine

    monkeypatch.setattr("salesbi.warehouse.engine.sa.create_engine", traced_engine)
    doc = _run(url, tmp_path / "out")
    assert doc["status"] in ("succeeded", "succeeded_with_warnings"), doc
    assert "fact_build" in doc["timings"]
    joins = [s for s in statements if "core.order_items JOIN core.orders" in " ".join(s.split())]
    assert len(joins) == 1, [j[:120] for j in joins]
    assert joins[0].lstrip().startswith(("INSERT INTO staging.fact_build_", "WITH"))
    assert "INSERT INTO staging.fact_build_" in joins[0]
    build = joins[0].split("INSERT INTO staging.", 1)[1].split()[0]
    own = ("CREATE", "DROP", "WITH", "INSERT INTO staging")  # the build table's create, fill, drop
    readers = [
        " ".join(s.split()) for s in statements if f"staging.{build}" in s and not s.lstrip().startswith(own)
    ]
    # read by: the order sums, the model inputs (orders, first uses, days), the insights, the publish
    assert any(s.startswith("INSERT INTO report_order_sums") for s in readers)
    assert any(s.startswith("INSERT INTO rpt.fact_order_lines") for s in readers)
    assert len(readers) >= 6, readers
    assert _builds(url) == []  # dropped when the run ended
    # cross-check: the published fact holds every line of a known order, each once
    core = _edge_core()
    items = core["order_items"]
    known = items[items["order_id"].isin(core["orders"]["order_id"])]
    fact = _published_fact(url)
    assert sorted(zip(fact["order_id"], fact["line_number"], strict=True)) == sorted(
        zip(known["order_id"], known["line_number"], strict=True)
    )


@pytest.mark.integration
def test_a_failed_publish_leaves_the_previous_rpt_and_no_build_table(warehouse: str, tmp_path: Path) -> None:
    _edge_warehouse(warehouse)
    assert _run(warehouse, tmp_path / "first", ("reports",))["status"] == "succeeded"
    before = _published_fact(warehouse)
    assert len(before) > 0
    engine = create_engine(warehouse)
    try:
        with engine.begin() as conn:  # core changes: a line's quantity; the next run would publish it
            conn.exec_driver_sql("UPDATE core.order_items SET quantity = quantity + 1")
    finally:
        engine.dispose()

    def fail(name: str) -> None:
        if name == "before_commit":
            raise RuntimeError("injected failure before the publish commits")

    publish_module.set_checkpoint_hook(fail)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            _run(warehouse, tmp_path / "second", ("reports",))
    finally:
        publish_module.set_checkpoint_hook(None)
    pd.testing.assert_frame_equal(_published_fact(warehouse), before)  # rpt as it was
    assert _builds(warehouse) == []
    # the next run publishes the change (the quantities moved: revenue differs)
    assert _run(warehouse, tmp_path / "third", ("reports",))["status"] == "succeeded"
    after = _published_fact(warehouse)
    assert (after["quantity"] == before["quantity"] + 1).all()
    assert _builds(warehouse) == []


@pytest.mark.integration
def test_what_a_killed_run_left_is_dropped_by_the_next_run(warehouse: str, tmp_path: Path) -> None:
    _edge_warehouse(warehouse)
    engine = create_engine(warehouse)
    metadata = warehouse_metadata()
    try:
        killed = create_fact_build(engine, metadata, "20261201T000000Z-deadbeef")  # no run is going on
        live = create_fact_build(engine, metadata, "20261201T000001Z-0000live")
        assert killed.rows == live.rows > 0
        # a run still going keeps its table, the others go
        assert drop_stale_builds(engine, metadata, ["20261201T000001Z-0000live"]) == [killed.table.name]
        assert build_tables(engine) == [live.table.name]
        create_fact_build(engine, metadata, "20261201T000000Z-deadbeef")
    finally:
        engine.dispose()
    # a run: neither is in audit.runs as running, both go when it connects; its own goes at its end
    assert _run(warehouse, tmp_path / "out", ("reports",))["status"] == "succeeded"
    assert _builds(warehouse) == []


@pytest.mark.integration
def test_what_reads_the_build_table_equals_what_computes_from_core(warehouse: str) -> None:
    """The model inputs and the insights' aggregate from the build table: exactly the same frames."""
    _edge_warehouse(warehouse)
    engine = create_engine(warehouse)
    metadata = warehouse_metadata()
    try:
        build = create_fact_build(engine, metadata, "test-inputs")
        with engine.connect() as conn:
            for read in (model_inputs.read_forecast_days, model_inputs.read_insight_facts):
                pd.testing.assert_frame_equal(read(conn, metadata, build.table), read(conn, metadata))
            got = model_inputs.read_order_history(conn, metadata, build.table)
            want = model_inputs.read_order_history(conn, metadata)
            pd.testing.assert_frame_equal(got.orders, want.orders)
            pd.testing.assert_frame_equal(got.first_uses, want.first_uses)
        assert drop_fact_build(engine, "test-inputs") and not drop_fact_build(engine, "test-inputs")
    finally:
        engine.dispose()


def test_the_names_are_identifiers_of_the_run() -> None:
    assert build_table_name("20261201T023739Z-1a2b3c4d") == "fact_build_20261201t023739z_1a2b3c4d"
    assert build_table_name("x; DROP TABLE y") == PREFIX + "x__drop_table_y"


@pytest.mark.parametrize("dialect", ["mssql", "postgresql", "sqlite"])
def test_the_build_statements_compile_per_dialect_and_parse_as_tsql(dialect: str) -> None:
    d = dialect_named(dialect)
    metadata = warehouse_metadata()
    table = build_table(d, metadata, "20261201T023739Z-1a2b3c4d")
    assert table.schema == "staging" and [c.name for c in table.columns] == FACT_ORDER_LINES.column_names
    create = str(sa.schema.CreateTable(table).compile(dialect=d))
    fill = str(fill_statement(table, metadata).compile(dialect=d, compile_kwargs={"literal_binds": True}))
    copy = str(fact_insert(metadata, lines=table).compile(dialect=d, compile_kwargs={"literal_binds": True}))
    drop = str(sa.schema.DropTable(table).compile(dialect=d))
    assert ("UNLOGGED" in create) == (dialect == "postgresql")
    assert "fact_build_20261201t023739z_1a2b3c4d" in create and "staging." in create
    assert "core.order_items" in fill and "core.order_items" not in copy
    assert copy.startswith("INSERT INTO rpt.fact_order_lines (order_id, line_number,")
    assert "FROM staging.fact_build_20261201t023739z_1a2b3c4d" in copy
    if dialect == "mssql":
        assert fill.startswith("WITH ")  # SQL Server takes the fact's WITH before the INSERT
        for sql in (create, fill, copy, drop):
            assert sqlglot.parse_one(sql, read="tsql") is not None


def test_the_step_benchmark_times_every_group_and_leaves_no_build_table(tmp_path: Path) -> None:
    """bench/pushdown_steps.py on a small warehouse: each group timed, the build table dropped."""
    spec = importlib.util.spec_from_file_location(
        "bench_pushdown_steps", Path(__file__).resolve().parents[1] / "bench" / "pushdown_steps.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    url = f"sqlite:///{tmp_path / 'wh.db'}"
    _edge_warehouse(url)
    results: dict[str, list[tuple[float, float]]] = {}
    bench.one_pass(url, results)
    assert list(results) == ["fact_build", "reports", "model_inputs", "insights", "publish_fact"]
    assert all(len(runs) == 1 and runs[0][0] >= 0 and runs[0][1] > 0 for runs in results.values())
    table = bench.table(results)
    assert table.splitlines()[0] == "| step | CPU s | wall s |" and "| **total** |" in table
    assert _builds(url) == []
    assert len(_published_fact(url)) == 0  # the publish's insert was rolled back: rpt is as it was
