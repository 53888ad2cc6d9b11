"""Ingest into a real warehouse: exact counts on the real datasets, idempotent reruns, merges,
quarantine of dirty input, and structural faults that stop the CLI before the warehouse is touched.

Runs on the embedded SQLite default and on PostgreSQL (integration marker).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from salesbi import contract
from salesbi.params import PipelineParams
from salesbi.pipeline import run_pipeline
from salesbi.warehouse.ddl import warehouse_metadata
from salesbi.warehouse.engine import create_engine

DATA = Path(__file__).parent / "data"
BAD = DATA / "bad_inputs" / "company"

EXPECTED = {
    "classicmodels": {
        "offices": 7,
        "employees": 23,
        "customers": 122,
        "product_lines": 7,
        "products": 110,
        "orders": 326,
        "order_items": 2996,
    },
    # 5 offices derived from the distinct employee cities (Seattle, Tacoma, Kirkland, Redmond, London)
    "northwind": {
        "offices": 5,
        "employees": 9,
        "customers": 91,
        "product_lines": 8,
        "products": 77,
        "orders": 830,
        "order_items": 2155,
    },
}


def _ingest(source: Path, profile: str, url: str, out: Path, **extra: float) -> dict[str, object]:
    params = PipelineParams(
        source=source, profile=profile, warehouse_url=url, out_dir=out, steps=("ingest",), **extra
    )
    run_pipeline(params)
    doc: dict[str, object] = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
    return doc


def _core(url: str) -> dict[str, pd.DataFrame]:
    engine = create_engine(url)
    with engine.connect() as conn:
        frames = {
            t.name: pd.read_sql_query(
                sa.text(f"SELECT * FROM core.{t.name} ORDER BY {', '.join(t.key)}"), conn
            ).astype(str)
            for t in contract.TABLES
        }
    engine.dispose()
    return frames


def _scalar(url: str, sql: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        value = int(conn.execute(sa.text(sql)).scalar_one())
    engine.dispose()
    return value


@pytest.mark.realdata
@pytest.mark.parametrize("dataset", ["classicmodels", "northwind"])
def test_real_dataset_ingests_with_exact_counts_and_reruns_identically(
    dataset: str, warehouse: str, datasets_dir: Path, tmp_path: Path
) -> None:
    source = datasets_dir / dataset
    summary = _ingest(source, dataset, warehouse, tmp_path / "out")
    assert summary["status"] == "succeeded"
    tables = summary["tables"]
    assert isinstance(tables, dict)
    for name, expected in EXPECTED[dataset].items():
        counts = tables[name]
        assert counts["read"] == expected, name
        assert counts["rejected"] == 0, name
        assert counts["loaded"] == counts["warehouse_rows"] == expected, name
        assert _scalar(warehouse, f"SELECT COUNT(*) FROM core.{name}") == expected, name
    before = _core(warehouse)
    again = _ingest(source, dataset, warehouse, tmp_path / "out2")
    assert again["status"] == "succeeded"
    after = _core(warehouse)
    for name in before:
        pd.testing.assert_frame_equal(after[name], before[name], obj=name)
    assert _scalar(warehouse, "SELECT COUNT(*) FROM audit.runs WHERE status = 'succeeded'") == 2


def test_an_updated_csv_is_merged(warehouse: str, sample_company: Path, tmp_path: Path) -> None:
    source = tmp_path / "company"
    shutil.copytree(sample_company, source, ignore=shutil.ignore_patterns("ground_truth"))
    _ingest(source, "canonical", warehouse, tmp_path / "out")

    products = pd.read_csv(source / "products.csv", dtype=str, keep_default_na=False)
    target = products.loc[0, "product_id"]
    products.loc[0, "list_price"] = "123.45"
    products.to_csv(source / "products.csv", index=False)
    orders = pd.read_csv(source / "orders.csv", dtype=str, keep_default_na=False)
    new_order = orders.iloc[[-1]].copy()
    new_order["order_id"] = "NEW-1"
    pd.concat([orders, new_order]).to_csv(source / "orders.csv", index=False)
    items = pd.read_csv(source / "order_items.csv", dtype=str, keep_default_na=False)
    new_line = items.iloc[[0]].copy()
    new_line["order_id"] = "NEW-1"
    new_line["line_number"] = "1"
    pd.concat([items, new_line]).to_csv(source / "order_items.csv", index=False)

    summary = _ingest(source, "canonical", warehouse, tmp_path / "out2")
    assert summary["status"] == "succeeded"
    assert _scalar(warehouse, "SELECT COUNT(*) FROM core.orders") == len(orders) + 1
    assert _scalar(warehouse, "SELECT COUNT(*) FROM core.order_items") == len(items) + 1
    engine = create_engine(warehouse)
    with engine.connect() as conn:
        price = conn.execute(
            sa.text("SELECT list_price FROM core.products WHERE product_id = :p"), {"p": target}
        ).scalar_one()
    engine.dispose()
    assert float(price) == pytest.approx(123.45)
    assert _scalar(warehouse, "SELECT COUNT(*) FROM core.products") == len(products)
    # the first load into the empty core built the secondary indexes after the rows: all back
    assert _core_index_names(warehouse) == _declared_index_names()


def _core_index_names(url: str) -> set[tuple[str, str]]:
    engine = create_engine(url)
    inspector = sa.inspect(engine)
    names = {
        (t.name, str(ix["name"]))
        for t in contract.TABLES
        for ix in inspector.get_indexes(t.name, schema="core")
    }
    engine.dispose()
    return names


def _declared_index_names() -> set[tuple[str, str]]:
    md = warehouse_metadata()
    return {(t.name, str(ix.name)) for t in contract.TABLES for ix in md.tables[f"core.{t.name}"].indexes}


def test_dirty_input_is_quarantined_and_nothing_is_lost(warehouse: str, tmp_path: Path) -> None:
    # the corpus is mostly bad rows on purpose: allow any rejected share (the run then warns)
    summary = _ingest(BAD, "canonical", warehouse, tmp_path / "out", max_rejected_share=1.0)
    assert summary["status"] == "succeeded_with_warnings"
    tables = summary["tables"]
    assert isinstance(tables, dict)
    # hand count from tests/data/bad_inputs/README.md: employees 13-15; customers C4-C6; product P5;
    # orders 1003-1008, both 1009, the 1010 copy, 1012; order lines 5, 6, 9 and 10-15
    # (C3's formula-like name is data: C3, its order 1011 and that order's line load)
    expected = {"employees": 3, "customers": 3, "products": 1, "orders": 10, "order_items": 9}
    total_rejected = 0
    for name, counts in tables.items():
        assert counts["rejected"] == expected.get(name, 0), name
        csv_rows = len(pd.read_csv(BAD / f"{name}.csv", dtype=str, keep_default_na=False))
        assert counts["read"] == csv_rows, name
        assert counts["read"] == counts["loaded"] + counts["rejected"], name
        assert _scalar(warehouse, f"SELECT COUNT(*) FROM core.{name}") == counts["loaded"], name
        total_rejected += counts["rejected"]
    assert total_rejected == 26
    records = _scalar(
        warehouse,
        "SELECT COUNT(*) FROM (SELECT DISTINCT table_name, source_file, source_line "
        "FROM audit.rejected_rows WHERE severity = 'reject') r",
    )
    assert records == total_rejected
    # the orders with a missing customer and a future date never reach core
    assert _scalar(warehouse, "SELECT COUNT(*) FROM core.orders WHERE order_id IN ('1003', '1005')") == 0
    assert (tmp_path / "out" / "validation.md").read_text(encoding="utf-8").count("foreign_key") >= 1


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "salesbi"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda d: (d / "orders.csv").unlink(), ["orders.csv", "profile"]),
        (lambda d: (d / "customers.csv").write_text("", encoding="utf-8"), ["customers.csv", "empty"]),
        (
            # a UTF-8 byte-order mark, then bytes that are not UTF-8
            lambda d: (d / "products.csv").write_bytes(b"\xef\xbb\xbfproduct_id,product_name\n\x81\x8d,x\n"),
            ["products.csv", "encoding"],
        ),
    ],
    ids=["missing-file", "empty-file", "bad-encoding"],
)
def test_structural_faults_stop_the_cli_before_the_warehouse(
    break_it: object, expected: list[str], tmp_path: Path
) -> None:
    source = tmp_path / "company"
    shutil.copytree(DATA / "reading" / "mini", source)
    break_it(source)  # type: ignore[operator]
    done = _cli("ingest", "--source", str(source), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    message = " ".join(done.stderr.split()).lower()
    for word in expected:
        assert word.lower() in message, message
    assert not (tmp_path / "var").exists(), "the warehouse was touched"


def test_unknown_profile_lists_the_available_ones(tmp_path: Path) -> None:
    done = _cli("ingest", "--source", str(DATA / "reading" / "mini"), "--profile", "nope", cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    message = " ".join(done.stderr.split())
    assert "nope" in message and "classicmodels" in message and "northwind" in message
    assert not (tmp_path / "var").exists()
