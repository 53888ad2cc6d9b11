"""Bulk warehouse I/O per dialect: core reads as Arrow, first loads with constraints after the rows.

PostgreSQL tests run on the server named by SALESBI_TEST_PG_URL; the SQL Server route (arrow-odbc)
cannot run here: its query, connection string and route choice are tested without a server.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from salesbi import contract
from salesbi.types import conform
from salesbi.warehouse.ddl import warehouse_metadata
from salesbi.warehouse.engine import create_engine
from salesbi.warehouse.load import (
    arrow_schema_of,
    deferred_constraints,
    mssql_read_query,
    odbc_connection_string,
    postgres_copy_out_sql,
    read_route,
    read_table,
    read_table_fast,
)
from tests.conftest import drop_pg_schemas

# text that CSV must carry unchanged: an empty string (not NULL), quotes, commas, a newline, non-ASCII
AWKWARD_OFFICES = pd.DataFrame(
    {
        "office_id": ["1", "2", "3", "4"],
        "city": ["", 'Say "hi", then go', "Line\nbreak", "Zürich ∑ 東京"],
        "state": [None, "", "\\N", "NULL"],
        "country": ["France", "Japan", "USA", "CH"],
        "territory": [None, None, "a,b", " padded "],
        "postal_code": ["75017", None, "", "8001"],
    }
)


def _load(url: str, source: Path, run_id: str) -> None:
    from salesbi.ingest import load_step, prepare_warehouse, read_step, validate_step

    engine = create_engine(url)
    md = prepare_warehouse(engine)
    data = read_step(source, "canonical")
    load_step(engine, md, data, validate_step(data, run_id=run_id), run_id=run_id)
    engine.dispose()


def _assert_bulk_read_equals_sqlalchemy_read(url: str) -> None:
    engine = create_engine(url)
    md = warehouse_metadata()
    with engine.connect() as conn:
        for spec in contract.TABLES:
            table = md.tables[f"core.{spec.name}"]
            old = conform(read_table(conn, table), spec)
            pd.testing.assert_frame_equal(conform(read_table_fast(conn, table), spec), old)
            assert len(old) > 0, spec.name
    engine.dispose()


@pytest.mark.integration
@pytest.mark.postgres
def test_postgres_bulk_core_read_equals_the_sqlalchemy_read(pg_warehouse: str, sample_company: Path) -> None:
    """COPY → Arrow gives, after conform, exactly the SQLAlchemy frames of every core table."""
    _load(pg_warehouse, sample_company, "t")
    _assert_bulk_read_equals_sqlalchemy_read(pg_warehouse)


@pytest.mark.integration
@pytest.mark.postgres
def test_postgres_bulk_read_keeps_empty_strings_nulls_and_awkward_text(pg_warehouse: str) -> None:
    from salesbi.ingest import prepare_warehouse
    from salesbi.warehouse.load import bulk_insert

    engine = create_engine(pg_warehouse)
    md = prepare_warehouse(engine)
    table = md.tables["core.offices"]
    spec = contract.table("offices")
    with engine.begin() as conn:
        bulk_insert(conn, table, AWKWARD_OFFICES)
    with engine.connect() as conn:
        raw = read_table_fast(conn, table)
        old = conform(read_table(conn, table), spec).sort_values("office_id", ignore_index=True)
        empty = read_table_fast(conn, md.tables["core.order_items"])
    engine.dispose()
    new = conform(raw, spec).sort_values("office_id", ignore_index=True)
    pd.testing.assert_frame_equal(new, old)
    assert new["city"].tolist() == AWKWARD_OFFICES["city"].tolist()
    assert new["state"].tolist()[1:] == ["", "\\N", "NULL"] and pd.isna(new["state"][0])
    assert new["postal_code"].tolist()[2] == "" and pd.isna(new["postal_code"][1])
    assert len(empty) == 0 and list(empty.columns) == [c.name for c in md.tables["core.order_items"].columns]


def test_postgres_copy_out_statement_lists_every_column() -> None:
    md = warehouse_metadata()
    sql = postgres_copy_out_sql(md.tables["core.order_items"])
    assert sql == (
        "COPY core.order_items (order_id, line_number, product_id, quantity, unit_price, discount) "
        "TO STDOUT WITH (FORMAT csv)"
    )


def test_bulk_read_schema_follows_the_column_types() -> None:
    md = warehouse_metadata()
    schema = arrow_schema_of(md.tables["core.order_items"])
    assert [str(t) for t in schema.types] == ["string", "int64", "string", "int64", "double", "double"]
    assert arrow_schema_of(md.tables["core.orders"]).field("order_date").type == pa.date32()


def test_each_dialect_gets_its_bulk_read_route() -> None:
    assert [read_route(d) for d in ("sqlite", "postgresql", "mssql", "oracle")] == [
        "sqlite-cursor",
        "postgresql-copy",
        "arrow-odbc",
        "sqlalchemy",
    ]
    assert read_route("postgresql", "psycopg") == "postgresql-copy"
    assert read_route("mssql", "pyodbc") == "arrow-odbc"
    assert read_route("sqlite", "pysqlite") == "sqlite-cursor"
    # drivers the bulk routes cannot use (no psycopg 3 COPY API; no ODBC connection string)
    assert read_route("postgresql", "psycopg2") == read_route("mssql", "pymssql") == "sqlalchemy"


MSSQL_URL = "mssql+pyodbc://sa:S3cret!@db.example.com:1433/sales?driver=ODBC+Driver+18+for+SQL+Server"


def _mssql_pyodbc() -> sa.Dialect:
    from sqlalchemy.dialects.mssql import pyodbc

    d = pyodbc.dialect()
    d.server_version_info = (16, 0)
    return d


def test_mssql_read_query_casts_decimals_to_float_and_parses_as_tsql() -> None:
    import sqlglot

    md = warehouse_metadata()
    sql = mssql_read_query(md.tables["core.order_items"], mssql.dialect())
    expected = (
        "SELECT core.order_items.order_id, core.order_items.line_number, core.order_items.product_id, "
        "core.order_items.quantity, CAST(core.order_items.unit_price AS FLOAT(53)) AS unit_price, "
        "CAST(core.order_items.discount AS FLOAT(53)) AS discount FROM core.order_items"
    )
    assert " ".join(sql.split()) == expected
    sqlglot.parse_one(sql, read="tsql")


def test_odbc_connection_string_is_the_one_pyodbc_would_open() -> None:
    conn_str = odbc_connection_string(sa.make_url(MSSQL_URL), _mssql_pyodbc())
    parts = dict(p.split("=", 1) for p in conn_str.split(";") if p)
    assert parts["DRIVER"] == "{ODBC Driver 18 for SQL Server}"
    assert parts["Server"] == "db.example.com,1433" and parts["Database"] == "sales"
    assert parts["UID"] == "sa" and parts["PWD"] == "S3cret!"


def test_sql_server_core_read_goes_through_arrow_odbc(monkeypatch: pytest.MonkeyPatch) -> None:
    """On mssql, read_table_fast hands arrow-odbc the T-SQL query and the URL's connection string."""
    md = warehouse_metadata()
    table = md.tables["core.order_items"]
    calls: list[dict[str, Any]] = []
    batch = pa.record_batch(
        [
            pa.array(["o1", "o2"]),
            pa.array([1, 2]),
            pa.array(["p1", "p2"]),
            pa.array([3, 4]),
            pa.array([9.99, 10.5]),
            pa.array([0.0, None]),
        ],
        names=[c.name for c in table.columns],
    )

    class Reader:
        schema = batch.schema

        def __iter__(self) -> Iterator[pa.RecordBatch]:
            return iter([batch, batch])

    def fake_read(**kwargs: Any) -> Reader:
        calls.append(kwargs)
        return Reader()

    fake = ModuleType("arrow_odbc")
    fake.read_arrow_batches_from_odbc = fake_read  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "arrow_odbc", fake)
    dialect = _mssql_pyodbc()
    conn = SimpleNamespace(dialect=dialect, engine=SimpleNamespace(url=sa.make_url(MSSQL_URL)))
    frame = conform(read_table_fast(conn, table), contract.table("order_items"))  # type: ignore[arg-type]
    (call,) = calls
    assert call["query"] == mssql_read_query(table, dialect)
    assert call["connection_string"] == odbc_connection_string(sa.make_url(MSSQL_URL), dialect)
    assert frame["order_id"].tolist() == ["o1", "o2", "o1", "o2"]
    assert frame["unit_price"].tolist() == [9.99, 10.5, 9.99, 10.5]
    assert frame["discount"].isna().tolist() == [False, True, False, True]


# --- first loads: foreign keys and secondary indexes after the rows ------------------------------


def test_only_servers_defer_foreign_keys() -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    table = warehouse_metadata().tables["core.order_items"]
    fks, indexes = deferred_constraints(postgresql.dialect(), table)
    assert [fk.name for fk in fks] == ["fk_order_items_order_id", "fk_order_items_product_id"]
    assert [i.name for i in indexes] == ["ix_order_items_product_id"]
    assert deferred_constraints(sqlite.dialect(), table)[0] == []
    assert [fk.name for fk in deferred_constraints(mssql.dialect(), table)[0]] == [fk.name for fk in fks]


def test_foreign_key_drop_and_add_compile_for_sql_server() -> None:
    import sqlglot
    from sqlalchemy.schema import AddConstraint, DropConstraint

    dialect = mssql.dialect()
    dialect.server_version_info = (16, 0)
    fks, _ = deferred_constraints(dialect, warehouse_metadata().tables["core.order_items"])
    drop = str(DropConstraint(fks[0]).compile(dialect=dialect)).strip()
    add = " ".join(str(AddConstraint(fks[1]).compile(dialect=dialect)).split())
    assert drop == "ALTER TABLE core.order_items DROP CONSTRAINT fk_order_items_order_id"
    assert add == (
        "ALTER TABLE core.order_items ADD CONSTRAINT fk_order_items_product_id "
        "FOREIGN KEY(product_id) REFERENCES core.products (product_id)"
    )
    for sql in (drop, add):
        sqlglot.parse_one(sql, read="tsql")


CHECKSUM_SQL = {
    # every column of every row, in key order: two loads gave the same core iff these match
    name: (
        f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY {', '.join(spec.key)}), '')) "
        f"FROM core.{name} AS t"
    )
    for name, spec in ((s.name, s) for s in contract.TABLES)
}


def _core_state(url: str) -> dict[str, tuple[int, str]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        state = {name: tuple(conn.exec_driver_sql(sql).one()) for name, sql in CHECKSUM_SQL.items()}
    engine.dispose()
    return state  # type: ignore[return-value]


def _constraints(url: str) -> list[tuple[str, str, bool]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT conname, contype::text, convalidated FROM pg_constraint "
            "WHERE connamespace = 'core'::regnamespace ORDER BY conname"
        ).fetchall()
        rows += conn.exec_driver_sql(
            "SELECT indexname, 'i', true FROM pg_indexes WHERE schemaname = 'core' ORDER BY indexname"
        ).fetchall()
    engine.dispose()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _second_drop(first: Path, out: Path) -> Path:
    """Return a copy of ``first`` with a seventh of the quantities and a third of the list prices changed."""
    shutil.copytree(first, out)
    items = pd.read_csv(out / "order_items.csv", dtype=str, keep_default_na=False)
    items.loc[items.index % 7 == 0, "quantity"] = "99"
    items.to_csv(out / "order_items.csv", index=False)
    products = pd.read_csv(out / "products.csv", dtype=str, keep_default_na=False)
    products.loc[products.index % 3 == 0, "list_price"] = "123.45"
    products.to_csv(out / "products.csv", index=False)
    return out


@pytest.mark.integration
@pytest.mark.postgres
def test_first_load_with_constraints_after_rows_gives_the_same_core(
    pg_warehouse: str, sample_company: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty warehouse loaded then a second drop upserted: the same core, FKs and indexes as before."""
    import salesbi.ingest as ingest

    second = _second_drop(sample_company, tmp_path / "second")
    results = {}
    for label, threshold in (("row by row", 10**12), ("after the rows", ingest.REBUILD_INDEXES_ABOVE)):
        drop_pg_schemas(pg_warehouse)
        monkeypatch.setattr(ingest, "REBUILD_INDEXES_ABOVE", threshold)
        _load(pg_warehouse, sample_company, "first")
        first = _core_state(pg_warehouse)
        _load(pg_warehouse, second, "second")
        results[label] = (first, _core_state(pg_warehouse), _constraints(pg_warehouse))
    before, after = results["row by row"], results["after the rows"]
    assert after == before
    first, second_state, constraints = after
    assert first["order_items"][0] == 20_000 and second_state["order_items"][0] == 20_000
    assert first["order_items"][1] != second_state["order_items"][1]  # the second drop changed rows
    assert first["products"][1] != second_state["products"][1]
    names = {name for name, _kind, _valid in constraints}
    assert {"fk_order_items_order_id", "fk_order_items_product_id", "fk_orders_customer_id"} <= names
    assert {"ix_order_items_product_id", "ix_orders_customer_id", "ix_orders_order_date"} <= names
    assert all(valid for _name, _kind, valid in constraints)


@pytest.mark.integration
@pytest.mark.postgres
def test_a_first_load_violating_a_foreign_key_changes_nothing(pg_warehouse: str) -> None:
    """The set-wise check after the rows refuses what a row check would: the transaction rolls back."""
    from salesbi.ingest import prepare_warehouse
    from salesbi.warehouse.load import bulk_insert, constraints_after_rows, count_rows

    engine = create_engine(pg_warehouse)
    md = prepare_warehouse(engine)
    items = md.tables["core.order_items"]
    orphan = pd.DataFrame(
        {"order_id": ["nope"], "line_number": [1], "product_id": ["x"], "quantity": [1], "unit_price": [1.0]}
    )
    with (
        pytest.raises(sa.exc.IntegrityError, match="fk_order_items"),
        engine.begin() as conn,
        constraints_after_rows(conn, items),
    ):
        bulk_insert(conn, items, orphan)
    with engine.connect() as conn:
        assert count_rows(conn, items) == 0
    assert {"fk_order_items_order_id", "fk_order_items_product_id"} <= {
        n for n, _k, _v in _constraints(pg_warehouse)
    }
    engine.dispose()


# --- publish: the Parquet set is written once ----------------------------------------------------


def test_parquet_staging_writes_rebuilt_tables_once_and_links_the_rest(tmp_path: Path) -> None:
    """A table not rebuilt keeps its very file (same inode, not a copy); a rebuilt one is new."""
    from salesbi.publish import export_parquet, stage_parquet
    from salesbi.schema import Column, Table

    kept = Table(name="kept", schema="rpt", key=("k",), columns=(Column("k", "id", required=True),))
    rebuilt = Table(name="rebuilt", schema="rpt", key=("k",), columns=(Column("k", "id", required=True),))
    folder = tmp_path / "data"
    frames = {"kept": pd.DataFrame({"k": ["old"]}), "rebuilt": pd.DataFrame({"k": ["v1"]})}
    export_parquet(frames, [kept, rebuilt], folder)
    (folder / "notes").mkdir()
    (folder / "notes" / "readme.txt").write_text("by hand", encoding="utf-8")
    before = {p.name: p.stat().st_ino for p in folder.iterdir()}

    staging = stage_parquet({"rebuilt": pd.DataFrame({"k": ["v2"]})}, [kept, rebuilt], folder)
    assert (staging / "kept.parquet").stat().st_ino == before["kept.parquet"]
    assert (staging / "rebuilt.parquet").stat().st_ino != before["rebuilt.parquet"]
    assert pd.read_parquet(folder / "rebuilt.parquet")["k"].tolist() == ["v1"]  # nothing switched yet
    shutil.rmtree(staging)

    export_parquet({"rebuilt": pd.DataFrame({"k": ["v2"]})}, [kept, rebuilt], folder)
    assert sorted(p.name for p in folder.iterdir()) == ["kept.parquet", "notes", "rebuilt.parquet"]
    assert pd.read_parquet(folder / "kept.parquet")["k"].tolist() == ["old"]
    assert pd.read_parquet(folder / "rebuilt.parquet")["k"].tolist() == ["v2"]
    assert (folder / "notes" / "readme.txt").read_text(encoding="utf-8") == "by hand"
    assert not (tmp_path / "data.new").exists() and not (tmp_path / "data.old").exists()
