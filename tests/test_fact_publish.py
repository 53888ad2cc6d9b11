"""``rpt.fact_order_lines`` published inside the warehouse (``reports_in="warehouse"``).

The ``INSERT … SELECT`` fills the table with the pandas fact's rows (columns, types, values),
its Parquet file is streamed from it in batches and reads back equal to the pandas path's file.
On SQLite and PostgreSQL with the generator and classicmodels; for SQL Server the statements
compile with their literals inline and parse as T-SQL (sqlglot).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import sqlglot

from salesbi import contract
from salesbi.params import PipelineParams
from salesbi.pipeline import run_pipeline
from salesbi.publish import InDatabase, publish
from salesbi.reports.fact import FACT_ORDER_LINES, build_fact_order_lines
from salesbi.reports.sql.fact_publish import (
    _key_order,
    export_parquet,
    fact_insert,
    fact_table,
    insert_fact,
)
from salesbi.reports.sql.render import dialect_named
from salesbi.rpt import rpt_tables
from salesbi.types import conform, to_arrow
from salesbi.warehouse.ddl import warehouse_metadata
from salesbi.warehouse.engine import create_engine
from salesbi.warehouse.load import read_table
from tests.test_reports_sql import _ingest


def _core(conn: sa.Connection, metadata: sa.MetaData) -> dict[str, pd.DataFrame]:
    return {s.name: conform(read_table(conn, metadata.tables[f"core.{s.name}"]), s) for s in contract.TABLES}


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(FACT_ORDER_LINES.key), kind="stable").reset_index(drop=True)


def _published_fact(url: str) -> pd.DataFrame:
    """Return rpt.fact_order_lines as stored in the warehouse at ``url``, typed and in key order."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return _sorted(conform(read_table(conn, fact_table(warehouse_metadata())), FACT_ORDER_LINES))
    finally:
        engine.dispose()


def _check_fact_in_database(url: str, tmp_path: Path, batch_rows: int = 3_000) -> pd.DataFrame:
    """Fill rpt.fact_order_lines by INSERT … SELECT, export it in batches; compare with pandas."""
    engine = create_engine(url)
    metadata = warehouse_metadata()
    try:
        with engine.begin() as conn:
            expected = conform(build_fact_order_lines(_core(conn, metadata)), FACT_ORDER_LINES)
            table = fact_table(metadata)
            table.create(conn, checkfirst=True)
            conn.execute(table.delete())
            assert insert_fact(conn, metadata) == len(expected)
            stored = conform(read_table(conn, table), FACT_ORDER_LINES)
            pd.testing.assert_frame_equal(_sorted(stored), _sorted(expected), check_exact=False, rtol=1e-12)
            # the Parquet file, in batches of batch_rows, against the pandas path's file
            ours, theirs = tmp_path / "ours.parquet", tmp_path / "theirs.parquet"
            assert export_parquet(conn, table, FACT_ORDER_LINES, ours, batch_rows=batch_rows) == len(expected)
            pq.write_table(to_arrow(expected, FACT_ORDER_LINES), theirs, compression="zstd")
            got, want = pq.read_table(ours), pq.read_table(theirs)
            assert got.schema.equals(want.schema, check_metadata=True)
            assert got.equals(want)
            assert pq.ParquetFile(ours).metadata.num_row_groups == -(-len(expected) // batch_rows) or (
                url.startswith("postgresql")  # COPY's batches are cut by bytes
            )
            pd.testing.assert_frame_equal(pd.read_parquet(ours), pd.read_parquet(theirs))
            conn.execute(table.delete())
    finally:
        engine.dispose()
    return expected


@pytest.mark.integration
def test_the_fact_built_in_the_warehouse_equals_pandas_on_the_generator(
    sample_company: Path, warehouse: str, tmp_path: Path
) -> None:
    _ingest(sample_company, "canonical", warehouse, tmp_path / "out")
    expected = _check_fact_in_database(warehouse, tmp_path)
    assert len(expected) > 15_000 and expected["is_cancelled"].any() and expected["cost"].notna().all()


@pytest.mark.integration
@pytest.mark.realdata
def test_the_fact_built_in_the_warehouse_equals_pandas_on_classicmodels(
    classicmodels_dir: Path, warehouse: str, tmp_path: Path
) -> None:
    _ingest(classicmodels_dir, "classicmodels", warehouse, tmp_path / "out")
    expected = _check_fact_in_database(warehouse, tmp_path, batch_rows=500)
    assert len(expected) == 2996
    # cross-check with the source: the lines' revenue adds up to classicmodels' quantity × price
    items = pd.read_csv(classicmodels_dir / "orderdetails.csv", sep=";")
    assert expected["revenue"].sum() == pytest.approx((items["quantityOrdered"] * items["priceEach"]).sum())


def test_the_statements_compile_for_sql_server_and_parse_as_tsql() -> None:
    mssql = dialect_named("mssql")
    metadata = warehouse_metadata()
    insert = str(fact_insert(metadata).compile(dialect=mssql, compile_kwargs={"literal_binds": True}))
    assert insert.startswith("WITH ") and "INSERT INTO rpt.fact_order_lines (order_id, line_number," in insert
    assert "%(" not in insert and " || " not in insert
    table = fact_table(metadata)
    export = sa.select(table).order_by(*_key_order(table, FACT_ORDER_LINES))
    statements = [insert, str(export.compile(dialect=mssql, compile_kwargs={"literal_binds": True}))]
    assert "ORDER BY (rpt.fact_order_lines.order_id) COLLATE Latin1_General_100_BIN2" in statements[1]
    for sql in statements:
        assert sqlglot.parse_one(sql, read="tsql") is not None


def test_publish_fills_a_table_in_the_database_and_rolls_back_with_the_rest(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wh.db'}"
    engine = create_engine(url)
    metadata = warehouse_metadata()
    from salesbi.ingest import prepare_warehouse

    prepare_warehouse(engine)
    calls: list[str] = []

    def fill(conn: sa.Connection, table: sa.Table) -> int:
        calls.append("fill")
        frame = build_fact_order_lines({s.name: conform(pd.DataFrame(), s) for s in contract.TABLES})
        assert frame.empty
        return 0

    def boom(conn: sa.Connection, table: sa.Table, path: Path) -> None:
        calls.append("export")
        raise RuntimeError("disk full")

    folder = tmp_path / "parquet"
    with pytest.raises(RuntimeError, match="disk full"):
        publish(
            engine,
            metadata,
            run_id="r1",
            frames={},
            definitions=rpt_tables(),
            folder=folder,
            in_database=[InDatabase(FACT_ORDER_LINES, fill, boom)],
        )
    assert calls == ["fill", "export"] and not folder.exists()
    assert not folder.with_name("parquet.new").exists()

    def export(conn: sa.Connection, table: sa.Table, path: Path) -> int:
        return export_parquet(conn, table, FACT_ORDER_LINES, path)

    published = publish(
        engine,
        metadata,
        run_id="r2",
        frames={},
        definitions=rpt_tables(),
        folder=folder,
        in_database=[InDatabase(FACT_ORDER_LINES, fill, export)],
    )
    engine.dispose()
    assert published.tables == {"fact_order_lines": 0}
    back = pq.read_table(folder / "fact_order_lines.parquet")
    assert back.num_rows == 0 and back.schema.names == FACT_ORDER_LINES.column_names


#: columns that name the run (its id, its clock) rather than the data
RUN_COLUMNS = ("run_id", "created_at", "generated_at", "published_at", "trained_at")


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` without the columns that name the run; model versions without their time stamp."""
    out = frame.drop(columns=[c for c in RUN_COLUMNS if c in frame.columns])
    if "model_version" in out.columns:  # '<UTC time>-<content hash>': the hash names the model
        out["model_version"] = out["model_version"].str.split("-").str[-1]
    return out


#: the model steps' tables: fitted on the same order-grain inputs in both modes (the pandas path
#: aggregates the fact's lines as the database does, sums of cents: salesbi.order_grain), so equal
#: exactly, the content hash naming each model (model_version) included
MODEL_FILES = frozenset(
    {
        "customer_segments.parquet",
        "segment_summary.parquet",
        "customer_predictions.parquet",
        "sales_forecast.parquet",
        "sales_forecast_monthly.parquet",
        "forecast_accuracy.parquet",
    }
)


@pytest.mark.integration
@pytest.mark.slow
def test_a_warehouse_run_publishes_what_the_pandas_run_publishes(
    sample_company: Path, warehouse: str, tmp_path: Path
) -> None:
    """``salesbi run`` steps, pandas vs push-down: every Parquet file and rpt table the same."""
    pg_warehouse = warehouse  # SQLite and PostgreSQL
    _ingest(sample_company, "canonical", pg_warehouse, tmp_path / "ingest")
    steps = ("reports", "segments", "predictions", "forecast")
    outs = {}
    for way in ("python", "warehouse"):
        out = tmp_path / way
        run_pipeline(
            PipelineParams(
                warehouse_url=pg_warehouse, out_dir=out, steps=steps, reports_in=way, refit="always"
            )
        )
        doc = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
        assert doc["status"] in ("succeeded", "succeeded_with_warnings"), doc
        outs[way] = out / "powerbi" / "data"
    names = sorted(p.name for p in outs["python"].glob("*.parquet"))
    assert names == sorted(p.name for p in outs["warehouse"].glob("*.parquet"))
    for model_table in ("customer_segments", "customer_predictions", "sales_forecast", "insights"):
        assert f"{model_table}.parquet" in names
    differ = []
    for name in names:
        want, got = (_comparable(pd.read_parquet(outs[way] / name)) for way in ("python", "warehouse"))
        try:
            if name in MODEL_FILES:
                pd.testing.assert_frame_equal(got, want, check_exact=True, obj=name)
            else:
                pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, obj=name)
        except AssertionError as exc:
            differ.append(f"{name}: {str(exc)[:300]}")
    assert not differ, differ
    exported = pd.read_parquet(outs["warehouse"] / "fact_order_lines.parquet")
    pd.testing.assert_frame_equal(_published_fact(pg_warehouse), conform(exported, FACT_ORDER_LINES))
