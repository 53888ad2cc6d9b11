"""The whole flow against a real SQL Server, when one is given in SALESBI_TEST_MSSQL_URL.

No SQL Server engine runs on the development machines: there, every statement is compiled
with the mssql dialect (tests/test_warehouse.py) and the T-SQL scripts are parsed with
sqlglot (tests/test_sql_server_scripts.py), and this module skips. Point it at a server with

    export SALESBI_TEST_MSSQL_URL='mssql+pyodbc://sa:...@localhost/salesbi_test?driver=ODBC+Driver+18+for+SQL+Server&TrustServerCertificate=yes'
    pip install '.[sqlserver]'
    .venv/bin/pytest -m sqlserver

The test drops and recreates every salesbi table in that database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from salesbi import contract
from salesbi.params import PipelineParams
from salesbi.pipeline import run_pipeline
from salesbi.rpt import rpt_tables
from salesbi.warehouse.ddl import warehouse_metadata
from salesbi.warehouse.engine import create_engine, ensure_schemas
from tests.conftest import need

pytestmark = [pytest.mark.sqlserver, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def mssql_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a SQL Server database emptied of salesbi tables."""
    url = os.environ.get("SALESBI_TEST_MSSQL_URL", "")
    need(
        bool(url),
        "SALESBI_TEST_MSSQL_URL is not set (no SQL Server here; the mssql dialect is compile-tested)",
        request,
    )
    engine = create_engine(url)
    ensure_schemas(engine)
    warehouse_metadata().drop_all(engine)
    engine.dispose()
    yield url


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        counts = {
            t.name: int(conn.execute(sa.text(f"SELECT COUNT(*) FROM core.{t.name}")).scalar_one())
            for t in contract.TABLES
        }
    engine.dispose()
    return counts


def test_whole_flow_on_sql_server(mssql_url: str, sample_company: Path, tmp_path: Path) -> None:
    params = PipelineParams(
        source=sample_company, profile="canonical", warehouse_url=mssql_url, out_dir=tmp_path / "out"
    )
    summary = run_pipeline(params)
    assert summary.status == "succeeded"
    counts = _counts(mssql_url)
    for spec in contract.TABLES:
        csv_rows = len(pd.read_csv(sample_company / f"{spec.name}.csv", dtype=str, keep_default_na=False))
        assert counts[spec.name] == csv_rows, spec.name
    engine = create_engine(mssql_url)
    with engine.connect() as conn:
        for table in rpt_tables():
            parquet = params.parquet_dir / f"{table.name}.parquet"
            if not parquet.exists():
                continue
            rows = conn.execute(sa.text(f"SELECT COUNT(*) FROM rpt.{table.name}")).scalar_one()
            assert rows == len(pd.read_parquet(parquet)), table.name
        net = conn.execute(sa.text("SELECT SUM(net_sales) FROM rpt.fact_order_lines")).scalar_one()
    engine.dispose()
    fact = pd.read_parquet(params.parquet_dir / "fact_order_lines.parquet")
    assert float(net) == pytest.approx(fact["net_sales"].sum(), abs=0.5)

    again = run_pipeline(params)
    assert again.status == "succeeded"
    assert _counts(mssql_url) == counts
