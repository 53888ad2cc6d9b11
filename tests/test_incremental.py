"""Daily ingest of only what changed (salesbi.incremental): content hashes, snapshot and new-only drops.

The equivalence tests load a generated company (day 1), then its next day's drop incrementally, and
compare core with a fresh full load of the same day-2 data: frame by frame (conformed) and by a SQL
aggregate query run on both warehouses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from salesbi import contract
from salesbi.generate import generate_company
from salesbi.generate.nextday import NextDay, next_day_drop
from salesbi.incremental import decide_mode, row_hashes, row_keys
from salesbi.params import PipelineParams
from salesbi.pipeline import run_pipeline
from salesbi.types import conform
from salesbi.warehouse.engine import create_engine
from salesbi.warehouse.load import read_table

# ------------------------------------------------------------------------------------------ hashes


def _customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "customer_name": ["A", "B", "C"],
            "contact_name": [None, "x", "y"],
            "city": ["Oslo", "Rome", "Lima"],
            "state": [None, None, None],
            "country": ["Norway", "Italy", "Peru"],
            "postal_code": ["0150", None, "15001"],
            "sales_rep_id": ["E1", None, "E2"],
            "credit_limit": [1000.0, None, 2500.5],
        }
    )


def test_row_hash_changes_only_with_the_rows_content() -> None:
    spec = contract.CUSTOMERS
    frame = _customers()
    base = row_hashes(frame, spec)
    assert base.dtype == np.uint64 and len(set(base.tolist())) == 3
    # same values again (other dtypes, lineage columns, another order of columns): same hashes
    again = frame[list(reversed(frame.columns))].copy()
    again["_source_line"] = [7, 8, 9]
    assert (row_hashes(again, spec) == base).all()
    # one cell changed: that row's hash only
    changed = frame.copy()
    changed.loc[1, "credit_limit"] = 1.0
    diff = row_hashes(changed, spec) != base
    assert diff.tolist() == [False, True, False]
    # null and empty text are different values; a value moved to another column is a change
    moved = frame.copy()
    moved.loc[0, ["contact_name", "state"]] = [None, "x"]
    assert row_hashes(moved, spec)[0] != base[0]
    # money is hashed as core keeps it (2 decimals)
    rounded = frame.copy()
    rounded.loc[2, "credit_limit"] = 2500.5000001
    assert (row_hashes(rounded, spec) == base).all()


def test_row_hash_equal_after_a_round_trip_through_conform_and_text() -> None:
    """A row read back from core (text dates, Decimal money as text) hashes as the row read from CSV."""
    spec = contract.ORDER_ITEMS
    frame = pd.DataFrame(
        {
            "order_id": ["O1", "O1", "O2"],
            "line_number": [1, 2, 1],
            "product_id": ["P1", "P2", "P1"],
            "quantity": [3, -1, 5],
            "unit_price": [9.99, 10.0, 0.1],
            "discount": [0.0, None, 0.05],
        }
    )
    as_text = frame.astype(object).where(frame.notna(), None).map(lambda v: None if v is None else str(v))
    assert (row_hashes(conform(as_text, spec), spec) == row_hashes(frame, spec)).all()
    assert row_keys(frame, spec).tolist() == ["O1\x1f1", "O1\x1f2", "O2\x1f1"]


def test_auto_mode_follows_the_watermark(tmp_path: Path) -> None:
    from salesbi.ingest import read_step

    generate_company(tmp_path / "d1", order_lines=400, seed=3)
    data = read_step(tmp_path / "d1", "canonical")
    last = pd.to_datetime(data.tables["orders"].frame["order_date"]).max().date()
    first = pd.to_datetime(data.tables["orders"].frame["order_date"]).min().date()
    assert decide_mode("auto", data, None) == "full"  # empty core
    assert decide_mode("auto", data, last) == "snapshot"  # old orders again
    assert decide_mode("auto", data, first) == "new_only"  # every order on/after the watermark
    assert decide_mode("snapshot", data, first) == "snapshot"
    with pytest.raises(ValueError, match="unknown ingest mode"):
        decide_mode("weekly", data, None)


# ------------------------------------------------------------------------------- day 1, then day 2


@pytest.fixture(scope="module")
def drops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A day-1 company, its day-2 snapshot drop and its day-2 new-only drop (same changes)."""
    root = tmp_path_factory.mktemp("drops")
    generate_company(root / "day1", order_lines=3_000, seed=11)
    snapshot = next_day_drop(root / "day1", root / "day2", kind="snapshot", seed=5)
    new_only = next_day_drop(root / "day1", root / "day2_new", kind="new_only", seed=5)
    return {"day1": root / "day1", "snapshot": snapshot, "new_only": new_only}


def _ingest(source: Path, url: str, out: Path, mode: str = "auto", **fields: Any) -> dict[str, Any]:
    """Return the run summary of an ingest-only run (``fields``: further PipelineParams fields)."""
    params = PipelineParams(
        source=source,
        warehouse_url=url,
        out_dir=out,
        steps=("ingest",),
        ingest_mode=mode,  # type: ignore[arg-type]
        **fields,
    )
    run_pipeline(params)
    doc: dict[str, Any] = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
    return doc


def _core(url: str) -> dict[str, pd.DataFrame]:
    """Return every core table, conformed and sorted by key."""
    engine = create_engine(url)
    md = sa.MetaData()
    out = {}
    with engine.connect() as conn:
        for spec in contract.TABLES:
            table = sa.Table(spec.name, md, schema="core", autoload_with=conn)
            frame = conform(read_table(conn, table), spec)
            out[spec.name] = frame.sort_values(list(spec.key)).reset_index(drop=True)
    engine.dispose()
    return out


#: one SQL query summarising core: rows, money and dates per table, computed by the database itself
CROSS_CHECK = """
SELECT 'orders', COUNT(*), COUNT(shipped_date), SUM(CASE WHEN status = 'shipped' THEN 1 ELSE 0 END), 0
FROM core.orders
UNION ALL
SELECT 'order_items', COUNT(*), SUM(quantity), ROUND(SUM(quantity * unit_price), 2), COUNT(DISTINCT order_id)
FROM core.order_items
UNION ALL
SELECT 'customers', COUNT(*), 0, ROUND(SUM(credit_limit), 2), 0 FROM core.customers
"""


def _cross_check(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [
            tuple(float(v) if i else v for i, v in enumerate(r)) for r in conn.execute(sa.text(CROSS_CHECK))
        ]
    engine.dispose()
    return sorted(rows)


def _assert_same_core(url: str, reference: str) -> None:
    mine, theirs = _core(url), _core(reference)
    for name in mine:
        pd.testing.assert_frame_equal(mine[name], theirs[name], check_dtype=True, obj=name)
    assert _cross_check(url) == _cross_check(reference)


def _stored_hashes(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT table_name, COUNT(*) FROM audit.row_hashes GROUP BY table_name")
        ).fetchall()
    engine.dispose()
    return {str(name): int(n) for name, n in rows}


def test_snapshot_drop_loads_only_what_changed(warehouse: str, drops: dict[str, Any], tmp_path: Path) -> None:
    day2: NextDay = drops["snapshot"]
    first = _ingest(drops["day1"], warehouse, tmp_path / "out")
    assert first["outputs"]["ingest_changes"]["mode"] == "full"
    assert all(t["unchanged"] == 0 for t in first["tables"].values())
    assert _stored_hashes(warehouse) == {name: t["loaded"] for name, t in first["tables"].items()}

    second = _ingest(day2.out, warehouse, tmp_path / "out")
    assert second["status"] == "succeeded", second["warnings"]
    assert second["outputs"]["ingest_changes"]["mode"] == "snapshot"
    tables = second["tables"]
    # customers: 5 changed + 1 new validated and loaded, the rest unchanged
    assert tables["customers"]["loaded"] == 6
    assert tables["customers"]["unchanged"] == first["tables"]["customers"]["loaded"] - 5
    # orders: the 20 changed and 30 new; their lines only (an order and its lines are one document)
    items = pd.read_csv(day2.out / "order_items.csv", dtype=str)
    touched = set(day2.changed["orders"]) | set(day2.added["orders"])
    assert tables["orders"]["loaded"] == len(touched)
    assert tables["order_items"]["loaded"] == int(items["order_id"].isin(touched).sum())
    for name in ("offices", "employees", "product_lines", "products"):
        assert tables[name]["loaded"] == 0 and tables[name]["unchanged"] == tables[name]["read"]
    for name, t in tables.items():
        assert t["rejected"] == 0, name
        assert t["read"] == t["loaded"] + t["rejected"] + t["unchanged"]
        assert t["lines"] == t["read"] + t["skipped"]
    # core equals a fresh full load of day 2's data (another SQLite warehouse)
    reference = f"sqlite:///{tmp_path / 'fresh.db'}"
    fresh = _ingest(day2.out, reference, tmp_path / "fresh_out", mode="full")
    assert {n: t["warehouse_rows"] for n, t in tables.items()} == {
        n: t["warehouse_rows"] for n, t in fresh["tables"].items()
    }
    _assert_same_core(warehouse, reference)
    # the same drop again: nothing to validate or load
    third = _ingest(day2.out, warehouse, tmp_path / "out")
    assert all(t["loaded"] == 0 and t["unchanged"] == t["read"] for t in third["tables"].values())
    _assert_same_core(warehouse, reference)


def test_new_only_drop_uses_the_watermark(warehouse: str, drops: dict[str, Any], tmp_path: Path) -> None:
    day2: NextDay = drops["new_only"]
    _ingest(drops["day1"], warehouse, tmp_path / "out")
    second = _ingest(day2.out, warehouse, tmp_path / "out")
    assert second["status"] == "succeeded", second["warnings"]
    changes = second["outputs"]["ingest_changes"]
    assert changes["mode"] == "new_only"
    assert changes["watermark"] == (day2.day - pd.Timedelta(days=1)).isoformat()
    tables = second["tables"]
    assert tables["orders"]["loaded"] == len(day2.added["orders"]) == tables["orders"]["read"]
    assert tables["customers"]["loaded"] == 6  # dimension files in full: compared by hash
    # core equals a fresh full load of day 1's orders plus the drop (dimension files as dropped)
    whole = tmp_path / "whole"
    whole.mkdir()
    for spec in contract.TABLES:
        parts = [pd.read_csv(day2.out / f"{spec.name}.csv", dtype=str, keep_default_na=False)]
        if spec.name in ("orders", "order_items"):
            parts.insert(0, pd.read_csv(drops["day1"] / f"{spec.name}.csv", dtype=str, keep_default_na=False))
        pd.concat(parts).to_csv(whole / f"{spec.name}.csv", index=False, lineterminator="\n")
    reference = f"sqlite:///{tmp_path / 'full.db'}"
    _ingest(whole, reference, tmp_path / "ref_out", mode="full")
    _assert_same_core(warehouse, reference)
    assert set(day2.added["orders"]) <= set(_core(warehouse)["orders"]["order_id"])


def test_a_changed_row_that_fails_validation_is_rejected_and_core_keeps_the_old_one(
    drops: dict[str, Any], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    _ingest(drops["day1"], url, tmp_path / "out")
    bad = tmp_path / "bad"
    day2 = next_day_drop(drops["day1"], bad, kind="snapshot", seed=5)
    customers = pd.read_csv(bad / "customers.csv", dtype=str, keep_default_na=False)
    victim = day2.changed["customers"][0]
    good = customers.copy()
    customers.loc[customers["customer_id"] == victim, "country"] = ""  # required: rejected
    customers.to_csv(bad / "customers.csv", index=False, lineterminator="\n")
    before = _core(url)["customers"].set_index("customer_id").loc[victim]
    doc = _ingest(bad, url, tmp_path / "out")
    c = doc["tables"]["customers"]
    assert (c["rejected"], c["loaded"], c["unchanged"]) == (1, 5, c["read"] - 6)
    after = _core(url)["customers"].set_index("customer_id").loc[victim]
    pd.testing.assert_series_equal(before, after)
    # its stored hash is still the old row's: the corrected drop loads that row, and only that row
    good.to_csv(bad / "customers.csv", index=False, lineterminator="\n")
    fixed = _ingest(bad, url, tmp_path / "out")["tables"]["customers"]
    assert (fixed["loaded"], fixed["rejected"]) == (1, 0)
    row = _core(url)["customers"].set_index("customer_id").loc[victim]
    assert row["credit_limit"] == before["credit_limit"] + 1000


def test_stored_hashes_replaced_wholesale_equal_the_keyed_rewrite(
    drops: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many changed rows: a table's hashes are rewritten at once; the result is the keyed rewrite's."""
    import salesbi.incremental as incremental

    def hashes_after_day2(name: str) -> pd.DataFrame:
        url = f"sqlite:///{tmp_path / name / 'w.db'}"
        _ingest(drops["day1"], url, tmp_path / name / "out")
        _ingest(drops["snapshot"].out, url, tmp_path / name / "out")
        engine = create_engine(url)
        with engine.connect() as conn:
            frame = pd.read_sql_query(
                sa.text(
                    "SELECT table_name, row_key, row_hash FROM audit.row_hashes ORDER BY table_name, row_key"
                ),
                conn,
            )
        engine.dispose()
        return frame

    keyed = hashes_after_day2("keyed")
    monkeypatch.setattr(incremental, "REPLACE_ALL_ABOVE", 0)
    wholesale = hashes_after_day2("wholesale")
    pd.testing.assert_frame_equal(keyed, wholesale)
    # one hash per core row, and the validation report shows the unchanged rows
    assert len(keyed) == sum(len(f) for f in _core(f"sqlite:///{tmp_path / 'keyed' / 'w.db'}").values())
    assert "| unchanged |" in (tmp_path / "keyed" / "out" / "validation.md").read_text(encoding="utf-8")


def test_audit_run_tables_record_unchanged_rows_also_in_a_warehouse_from_before_the_column(
    drops: dict[str, Any], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'wh.db'}"
    first = _ingest(drops["day1"], url, tmp_path / "out")
    engine = create_engine(url)
    with engine.begin() as conn:  # a warehouse created before audit.run_tables had the column
        conn.exec_driver_sql("ALTER TABLE audit.run_tables DROP COLUMN unchanged")
    engine.dispose()
    second = _ingest(drops["snapshot"].out, url, tmp_path / "out")
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT run_id, table_name, [read], loaded, rejected, unchanged FROM audit.run_tables"
        ).fetchall()
    engine.dispose()
    recorded = {(r[0], r[1]): tuple(r[2:]) for r in rows}
    for name, t in second["tables"].items():
        assert recorded[(second["run_id"], name)] == (t["read"], t["loaded"], t["rejected"], t["unchanged"])
        assert recorded[(first["run_id"], name)][3] is None  # recorded before the column existed
    assert sum(t["unchanged"] for t in second["tables"].values()) > 0  # a snapshot drop: most rows unchanged
