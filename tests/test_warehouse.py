"""Warehouse layer: DDL from the contract, bulk loads, idempotent upserts, atomic replaces.

The same tests run on the embedded SQLite default and on a real PostgreSQL
server (integration marker); SQL Server statements are compiled with
SQLAlchemy's mssql dialect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from salesbi import contract
from salesbi.publish import export_parquet, replace_tables
from salesbi.schema import Column, Table
from salesbi.types import conform
from salesbi.warehouse.ddl import warehouse_metadata
from salesbi.warehouse.engine import SCHEMAS, create_engine, ensure_schemas, redact, sqlite_schema_file
from salesbi.warehouse.load import (
    _column_values,
    bulk_insert,
    count_rows,
    iter_row_chunks,
    read_table,
    rows_per_statement,
    upsert_statement,
)
from tests.conftest import drop_pg_schemas

OFFICES = pd.DataFrame(
    {
        "office_id": ["1", "2", "3"],
        "city": ["Paris", "Tokyo", "Boston"],
        "state": [None, "Chiyoda-Ku", "MA"],
        "country": ["France", "Japan", "USA"],
        "territory": ["EMEA", "Japan", None],
        "postal_code": ["75017", "102-8578", "02107"],
    }
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.integration])])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An empty warehouse with every table created, on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'wh.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        drop_pg_schemas(url)
    eng = create_engine(url)
    ensure_schemas(eng)
    warehouse_metadata().create_all(eng)
    yield eng
    eng.dispose()


def _stage(
    conn: sa.Connection, md: sa.MetaData, name: str, frame: pd.DataFrame, status: str = "accepted"
) -> None:
    staging = md.tables[f"staging.{name}"]
    conn.execute(staging.delete())
    staged = conform(frame, contract.table(name))
    staged["_run_id"] = "r1"
    staged["_status"] = status
    bulk_insert(conn, staging, staged)


def _upsert(conn: sa.Connection, md: sa.MetaData, name: str) -> None:
    staging = md.tables[f"staging.{name}"]
    conn.execute(
        upsert_statement(
            conn.dialect,
            md.tables[f"core.{name}"],
            staging,
            contract.table(name).key,
            where=staging.c["_status"] == "accepted",
        )
    )


def _row_versions(conn: sa.Connection) -> object:
    """Return something that changes whenever a core.offices row is rewritten."""
    if conn.dialect.name == "postgresql":
        return conn.exec_driver_sql("SELECT office_id, xmin::text FROM core.offices ORDER BY 1").fetchall()
    return conn.exec_driver_sql("SELECT total_changes()").scalar_one()


def test_sqlite_schemas_are_attached_files(tmp_path: Path) -> None:
    eng = create_engine(f"sqlite:///{tmp_path / 'wh.db'}")
    warehouse_metadata().create_all(eng)
    for schema in SCHEMAS:
        assert sqlite_schema_file(tmp_path / "wh.db", schema).exists()
    with eng.connect() as conn:
        names = {r[0] for r in conn.exec_driver_sql("SELECT name FROM core.sqlite_master WHERE type='table'")}
    assert names == {t.name for t in contract.TABLES}


def test_upsert_inserts_then_merges_and_rerun_changes_nothing(engine: sa.Engine) -> None:
    md = warehouse_metadata()
    core = md.tables["core.offices"]
    with engine.begin() as conn:
        _stage(conn, md, "offices", OFFICES)
        _upsert(conn, md, "offices")
    with engine.begin() as conn:
        assert count_rows(conn, core) == 3
        # same input again: nothing is rewritten (0 rows touched)
        _stage(conn, md, "offices", OFFICES)
        staging = md.tables["staging.offices"]
        before = _row_versions(conn)
        conn.execute(
            upsert_statement(
                conn.dialect, core, staging, ("office_id",), where=staging.c["_status"] == "accepted"
            )
        )
        assert _row_versions(conn) == before
    changed = OFFICES.copy()
    changed.loc[0, "city"] = "Lyon"
    changed = pd.concat(
        [changed, pd.DataFrame([{"office_id": "4", "city": "Sydney", "country": "Australia"}])]
    )
    with engine.begin() as conn:
        _stage(conn, md, "offices", changed)
        _upsert(conn, md, "offices")
    with engine.connect() as conn:
        stored = read_table(conn, core).sort_values("office_id").reset_index(drop=True)
    assert stored["office_id"].tolist() == ["1", "2", "3", "4"]
    assert stored["city"].tolist() == ["Lyon", "Tokyo", "Boston", "Sydney"]
    assert pd.isna(stored.loc[3, "state"])


def test_rejected_staging_rows_do_not_reach_core(engine: sa.Engine) -> None:
    md = warehouse_metadata()
    with engine.begin() as conn:
        _stage(conn, md, "offices", OFFICES, status="rejected")
        _upsert(conn, md, "offices")
        assert count_rows(conn, md.tables["core.offices"]) == 0
        assert count_rows(conn, md.tables["staging.offices"]) == 3


def test_types_round_trip(engine: sa.Engine) -> None:
    md = warehouse_metadata()
    orders = pd.DataFrame(
        {
            "order_id": ["10100", "10101"],
            "customer_id": ["C1", "C1"],
            "employee_id": [None, None],
            "order_date": pd.to_datetime(["2003-01-06", "2003-01-09"]),
            "required_date": pd.to_datetime(["2003-01-13", None]),
            "shipped_date": pd.to_datetime([None, "2003-01-11"]),
            "status": ["placed", "shipped"],
        }
    )
    customers = pd.DataFrame(
        {"customer_id": ["C1"], "customer_name": ["Café Zoë"], "city": ["Köln"], "country": ["Germany"]}
    )
    customers["credit_limit"] = [12345.67]
    with engine.begin() as conn:
        _stage(conn, md, "customers", customers)
        _upsert(conn, md, "customers")
        _stage(conn, md, "orders", orders)
        _upsert(conn, md, "orders")
    with engine.connect() as conn:
        got = conform(read_table(conn, md.tables["core.orders"]), contract.table("orders"))
        cust = read_table(conn, md.tables["core.customers"])
    got = got.sort_values("order_id").reset_index(drop=True)
    assert got["order_date"].dt.strftime("%Y-%m-%d").tolist() == ["2003-01-06", "2003-01-09"]
    assert got["shipped_date"].isna().tolist() == [True, False]
    assert cust.loc[0, "customer_name"] == "Café Zoë"
    assert float(cust.loc[0, "credit_limit"]) == pytest.approx(12345.67)


SMALL = Table(
    name="test_small",
    schema="rpt",
    key=("k",),
    columns=(Column("k", "id", required=True), Column("v", "float"), Column("d", "date")),
)


def test_replace_tables_is_atomic(engine: sa.Engine) -> None:
    md = warehouse_metadata(extra=[SMALL])
    good = pd.DataFrame({"k": ["a", "b"], "v": [1.0, 2.0], "d": pd.to_datetime(["2024-01-01", "2024-02-01"])})
    assert replace_tables(engine, md, {"test_small": good}, [SMALL]) == {"test_small": 2}
    # a duplicate key makes the second replace fail: the first version must survive untouched
    bad = pd.DataFrame({"k": ["x", "x"], "v": [9.0, 9.0], "d": pd.to_datetime(["2024-01-01", "2024-01-01"])})
    with pytest.raises(sa.exc.IntegrityError):
        replace_tables(engine, md, {"test_small": bad}, [SMALL])
    with engine.connect() as conn:
        stored = read_table(conn, md.tables["rpt.test_small"]).sort_values("k")
    assert stored["k"].tolist() == ["a", "b"]
    assert stored["v"].tolist() == [1.0, 2.0]


def test_replace_recreates_a_table_whose_columns_changed(engine: sa.Engine) -> None:
    old = Table(name="test_small", schema="rpt", key=("k",), columns=(Column("k", "id", required=True),))
    replace_tables(engine, warehouse_metadata(extra=[old]), {"test_small": pd.DataFrame({"k": ["a"]})}, [old])
    md = warehouse_metadata(extra=[SMALL])
    frame = pd.DataFrame({"k": ["z"], "v": [3.5], "d": pd.to_datetime(["2024-03-01"])})
    replace_tables(engine, md, {"test_small": frame}, [SMALL])
    with engine.connect() as conn:
        stored = read_table(conn, md.tables["rpt.test_small"])
    assert stored.columns.tolist() == ["k", "v", "d"]
    assert stored["v"].tolist() == [3.5]


def test_export_parquet_keeps_tables_not_rebuilt(tmp_path: Path) -> None:
    other = Table(name="other", schema="rpt", key=("k",), columns=(Column("k", "id", required=True),))
    folder = tmp_path / "data"
    export_parquet({"other": pd.DataFrame({"k": ["keep"]})}, [other], folder)
    frame = pd.DataFrame({"k": ["a"], "v": [1.0], "d": pd.to_datetime(["2024-01-01"])})
    export_parquet({"test_small": frame}, [SMALL, other], folder)
    assert sorted(p.name for p in folder.iterdir()) == ["other.parquet", "test_small.parquet"]
    assert pd.read_parquet(folder / "other.parquet")["k"].tolist() == ["keep"]
    written = pd.read_parquet(folder / "test_small.parquet")
    assert str(written["d"].dtype).startswith("datetime64") or written["d"].dtype == object
    assert not (tmp_path / "data.new").exists() and not (tmp_path / "data.old").exists()


# --- SQL Server: compile every statement with the mssql dialect ---------------------------------


def _mssql() -> sa.Dialect:
    d = mssql.dialect()
    d.server_version_info = (16, 0)
    d.deprecate_large_types = True
    return d


def test_mssql_ddl_uses_nvarchar_datetime2_decimal() -> None:
    from sqlalchemy.schema import CreateTable

    md = warehouse_metadata()
    ddl = str(CreateTable(md.tables["core.order_items"]).compile(dialect=_mssql()))
    assert "unit_price DECIMAL(18, 2) NOT NULL" in ddl
    assert "order_id NVARCHAR(64) NOT NULL" in ddl
    runs = str(CreateTable(md.tables["audit.runs"]).compile(dialect=_mssql()))
    assert "started_at DATETIME2 NOT NULL" in runs
    assert "NVARCHAR(max)" in runs


def test_mssql_upsert_is_a_merge_updating_only_changes() -> None:
    md = warehouse_metadata()
    staging = md.tables["staging.order_items"]
    stmt = upsert_statement(
        _mssql(),
        md.tables["core.order_items"],
        staging,
        ("order_id", "line_number"),
        where=staging.c["_status"] == "accepted",
    )
    sql = str(stmt.compile(dialect=_mssql()))
    assert sql.startswith("MERGE [core].[order_items] WITH (HOLDLOCK) AS t USING")
    assert "ON t.[order_id] = s.[order_id] AND t.[line_number] = s.[line_number]" in sql
    assert "WHEN MATCHED AND EXISTS (SELECT s.[product_id]" in sql
    assert "EXCEPT SELECT t.[product_id]" in sql
    assert "WHERE staging.order_items._status = N'accepted'" in sql
    import sqlglot

    parsed = sqlglot.parse_one(sql, read="tsql")
    assert parsed.key == "merge"


def _merge_source_on_sqlite(merge_sql: str) -> str:
    """Return the MERGE's USING query (T-SQL) as SQLite SQL, N'..' literals made plain strings."""
    import sqlglot
    from sqlglot import exp

    using = sqlglot.parse_one(merge_sql, read="tsql").args["using"].this

    def plain(node: exp.Expression) -> exp.Expression:
        return exp.Literal.string(node.this) if isinstance(node, exp.National) else node

    return str(using.transform(plain).sql(dialect="sqlite"))


@pytest.mark.parametrize(
    "condition",
    [
        lambda st: st.c["_status"] == "accepted",
        lambda st: st.c["_status"].in_(["accepted", "it's: odd"]),
        lambda st: sa.and_(st.c["_status"] == "accepted", st.c["city"] != "Paris"),
        None,
    ],
    ids=["accepted", "in-list", "and", "none"],
)
def test_mssql_merge_selects_exactly_the_rows_the_sqlite_upsert_loads(
    tmp_path: Path, condition: Callable[[sa.Table], Any] | None
) -> None:
    eng = create_engine(f"sqlite:///{tmp_path / 'wh.db'}")
    md = warehouse_metadata()
    md.create_all(eng)
    staging, core = md.tables["staging.offices"], md.tables["core.offices"]
    where = condition(staging) if condition else None
    with eng.begin() as conn:
        _stage(conn, md, "offices", OFFICES.iloc[:2], status="accepted")
        rejected = OFFICES.iloc[2:].copy()
        rows = conform(rejected, contract.table("offices"))
        rows["_run_id"], rows["_status"] = "r1", "rejected"
        bulk_insert(conn, staging, rows)
        odd = conform(OFFICES.iloc[2:].assign(office_id="9"), contract.table("offices"))
        odd["_run_id"], odd["_status"] = "r1", "it's: odd"
        bulk_insert(conn, staging, odd)
        conn.execute(upsert_statement(conn.dialect, core, staging, ("office_id",), where=where))
        loaded = sorted(r[0] for r in conn.execute(sa.select(core.c.office_id)))
        merge = upsert_statement(_mssql(), core, staging, ("office_id",), where=where)
        merge_sql = str(merge.compile(dialect=_mssql()))  # what pyodbc would be sent
        merged = sorted(r[0] for r in conn.exec_driver_sql(_merge_source_on_sqlite(merge_sql)))
    eng.dispose()
    assert merged == loaded
    assert len(loaded) < 4 or condition is None  # the condition really filtered something


def test_mssql_multirow_insert_stays_under_2100_parameters() -> None:
    md = warehouse_metadata()
    table = md.tables["staging.order_items"]
    per_stmt = rows_per_statement(len(table.columns))
    assert per_stmt * len(table.columns) < 2100
    frame = pd.DataFrame(
        {
            "order_id": [str(i) for i in range(per_stmt + 5)],
            "line_number": 1,
            "product_id": "P",
            "quantity": 1,
            "unit_price": 1.0,
            "_run_id": "r",
            "_status": "accepted",
        }
    )
    chunks = list(iter_row_chunks(frame, table, per_stmt))
    assert [len(c) for c in chunks] == [per_stmt, 5]
    stmt = table.insert().values([dict(zip(frame.columns, r, strict=False)) for r in chunks[0]])
    compiled = stmt.compile(dialect=_mssql())
    assert len(compiled.params) < 2100


def test_redact_hides_password() -> None:
    url = "mssql+pyodbc://sa:S3cret!@db.example.com/sales?driver=ODBC+Driver+18+for+SQL+Server"
    assert "S3cret" not in redact(url)
    assert "***" in redact(url)


def test_unique_pg_schema_names_are_the_design_names() -> None:
    assert SCHEMAS == ("staging", "core", "rpt", "ml", "audit")
    md = warehouse_metadata()
    assert {t.schema for t in md.tables.values()} == set(SCHEMAS)


def test_dates_become_iso_days_for_the_driver() -> None:
    md = warehouse_metadata()
    column = md.tables["staging.orders"].c["order_date"]
    days = ["1969-12-31T05:00", "1500-01-01T23:00", "NaT", "2024-02-29"]
    values = pd.Series(np.array(days, dtype="datetime64[s]"))
    assert str(values.dtype) == "datetime64[s]"
    assert _column_values(values, column) == ["1969-12-31", "1500-01-01", None, "2024-02-29"]


def test_core_index_rebuild_compiles_for_sql_server() -> None:
    # the first bulk load drops and re-creates core's secondary indexes (salesbi.ingest)
    import sqlglot
    from sqlalchemy.schema import CreateIndex, DropIndex

    md = warehouse_metadata()
    (index,) = md.tables["core.order_items"].indexes
    drop = str(DropIndex(index).compile(dialect=_mssql())).strip()
    create = str(CreateIndex(index).compile(dialect=_mssql())).strip()
    assert drop == "DROP INDEX ix_order_items_product_id ON core.order_items"
    assert create == "CREATE INDEX ix_order_items_product_id ON core.order_items (product_id)"
    for sql in (drop, create):
        sqlglot.parse_one(sql, read="tsql")


def test_under_strict_mode_only_a_sqlserver_test_may_skip_for_a_missing_resource(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from tests import conftest

    monkeypatch.setattr(conftest, "STRICT", True)
    with pytest.raises(pytest.fail.Exception, match="SALESBI_STRICT=1"):
        conftest.need(False, "no server", request)  # this test is not marked sqlserver
    marked = SimpleNamespace(
        node=SimpleNamespace(get_closest_marker=lambda name: name == "sqlserver" or None)
    )
    with pytest.raises(pytest.skip.Exception, match="no server"):
        conftest.need(False, "no server", marked)  # type: ignore[arg-type]
    monkeypatch.setattr(conftest, "STRICT", False)
    with pytest.raises(pytest.skip.Exception):
        conftest.need(False, "no server", request)
