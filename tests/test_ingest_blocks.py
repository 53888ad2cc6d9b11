"""Ingest in blocks of rows (``ingest_block_rows``) gives exactly the result of one pass.

A generated company's ``order_items`` gets faults on both sides of the block boundaries: orphaned
lines (unknown order), a key repeated with other values (every copy rejected) and an exact copy
(the first kept), one early in the file and its twin at the end, plus a cell the reader cannot
type and a negative price. Validation at several block sizes (1, sizes that leave a remainder,
one block) must give the same accepted rows, rejects, warnings, counts and merged GX statistics;
loads at a small block size must leave the same core, rejects and row hashes as the default, on
SQLite and PostgreSQL, also for the daily incremental path.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from salesbi import contract
from salesbi.generate import generate_company
from salesbi.generate.nextday import next_day_drop
from salesbi.ingest import read_step, validate_step
from salesbi.reading.reader import SourceData
from salesbi.types import conform
from salesbi.validation.blocks import block_bounds, cross_block_duplicates
from salesbi.validation.validate import ValidationOutcome
from salesbi.warehouse.engine import create_engine
from salesbi.warehouse.load import read_table
from tests.test_incremental import _ingest


def _with_faults(folder: Path, keep_lines: int | None = None) -> Path:
    """Rewrite ``order_items.csv`` of ``folder`` with faults at its start and end; return the folder.

    ``keep_lines``: keep only that many generated lines (a short file for block size 1).
    """
    path = folder / "order_items.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header, lines = rows[0], rows[1:]
    if keep_lines is not None:
        lines = lines[:keep_lines]
    first, second, third = lines[0], lines[1], lines[2]
    conflicting = [*second[:3], str(int(second[3]) + 1), *second[4:]]  # same key, other quantity
    head = [
        ["SO99999999", "1", first[2], "2", "10.5", "0"],  # orphan: no such order
        [*third[:3], "abc", *third[4:]],  # a quantity the reader cannot type (and line 3's key again)
    ]
    tail = [
        conflicting,  # the key of line 2, other values: both copies rejected
        list(first),  # an exact copy of line 1: the first copy kept
        ["SO99999998", "1", first[2], "1", "3", "0"],  # another orphan, at the end
        [*lines[-1][:2], lines[-1][2], "1", "-4", "0"],  # negative price, and a key repeated at the end
    ]
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows([lines[0], lines[1], head[0], lines[2], head[1], *lines[3:], *tail])
    return folder


@pytest.fixture(scope="module")
def short_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small company whose order_items holds 30 generated lines and the faults (36 lines)."""
    folder = tmp_path_factory.mktemp("short")
    generate_company(folder, order_lines=400, seed=3)
    return _with_faults(folder, keep_lines=30)


@pytest.fixture(scope="module")
def long_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A company of 2,000 generated order lines plus the faults."""
    folder = tmp_path_factory.mktemp("long")
    generate_company(folder, order_lines=2_000, seed=4)
    return _with_faults(folder)


def _validate(data: SourceData, block_rows: int | None) -> ValidationOutcome:
    return validate_step(data, run_id="r1", block_rows=block_rows)


def _gx_summary(outcome: ValidationOutcome) -> dict[str, Any]:
    """Return per table the suite's statistics and per expectation (success, counts, failing indexes)."""
    out: dict[str, Any] = {}
    for name, result in outcome.suite_results.items():
        stats = dict(result.statistics)
        per = []
        for r in result.results:
            res = r.result or {}
            per.append(
                (
                    r.expectation_config.type,
                    bool(r.success),
                    res.get("element_count"),
                    res.get("unexpected_count"),
                    res.get("missing_count"),
                    res.get("unexpected_percent"),
                    sorted(int(i) for i in res.get("unexpected_index_list") or []),
                    res.get("observed_value") if not isinstance(res.get("observed_value"), list) else None,
                )
            )
        out[name] = (bool(result.success), stats, per)
    return out


def _assert_same_outcome(mine: ValidationOutcome, reference: ValidationOutcome) -> None:
    for name in reference.accepted:
        pd.testing.assert_frame_equal(mine.accepted[name], reference.accepted[name], obj=name)
    pd.testing.assert_frame_equal(mine.rejected_rows, reference.rejected_rows, obj="rejected_rows")
    pd.testing.assert_frame_equal(mine.warnings, reference.warnings, obj="warnings")
    assert mine.counts == reference.counts
    assert _gx_summary(mine) == _gx_summary(reference)


def test_block_bounds_cover_every_row_once() -> None:
    assert block_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert block_bounds(8, 4) == [(0, 4), (4, 8)]
    assert block_bounds(3, 4) == [(0, 3)]
    assert block_bounds(5, None) == [(0, 5)]
    assert block_bounds(0, 2) == [(0, 0)]


def test_cross_block_duplicates_equal_a_whole_table_check() -> None:
    """Keys in two blocks are found; keys repeated only within a block, and all-missing keys, are not."""
    frame = pd.DataFrame(
        {
            "a": pd.array(["x", "x", "y", None, "x", None, "y", "z", "z", "w"], dtype="string"),
            "b": pd.array([1, 2, 1, None, 2, None, 1, None, None, 5], dtype="Int64"),
        }
    )
    # blocks of 3: [x1 x2 y1] [- x2 -] [y1 z- z-] [w5]
    got = cross_block_duplicates(frame, ["a", "b"], 3)
    assert got.tolist() == [1, 2, 4, 6]  # x2 in blocks 0/1, y1 in blocks 0/2; z- twice in block 2 only
    # with within-block duplicates added, the whole table's duplicated rows (all-missing keys ignored)
    whole = frame.duplicated(["a", "b"], keep=False) & ~frame[["a", "b"]].isna().all(axis=1)
    within = []
    for start, stop in block_bounds(len(frame), 3):
        part = frame.iloc[start:stop]
        mask = part.duplicated(["a", "b"], keep=False) & ~part.isna().all(axis=1)
        within.extend(np.flatnonzero(mask.to_numpy()) + start)
    assert sorted(set(within) | set(got.tolist())) == np.flatnonzero(whole.to_numpy()).tolist()


def test_faults_on_both_sides_are_found(short_source: Path) -> None:
    """The reference outcome itself rejects what was planted (so the equality below means something)."""
    outcome = _validate(read_step(short_source, "canonical"), None)
    rules = outcome.rejected_rows.query("table_name == 'order_items'")["rule"].value_counts().to_dict()
    # three keys twice with other values, every copy: line 2 and its twin at the end, line 3 and its
    # untyped twin early, the last line and its twin with a negative price at the end
    assert rules.get("duplicate_key") == 6
    assert rules.get("duplicate_identical") == 1  # the copy of line 1
    assert rules.get("foreign_key") == 2  # the two orphans, first and last
    counts = outcome.counts["order_items"]
    assert counts.read == 36 and counts.rejected >= 6 and counts.loaded == counts.read - counts.rejected


@pytest.fixture(scope="module")
def short_reference(short_source: Path) -> tuple[SourceData, ValidationOutcome]:
    """The short source read, and its outcome in one pass."""
    data = read_step(short_source, "canonical")
    return data, _validate(data, None)


@pytest.mark.parametrize("block_rows", [1, 8, 35, 36])  # every line alone; remainders of 4 and 1; one block
def test_validation_in_blocks_equals_one_pass_short(
    short_reference: tuple[SourceData, ValidationOutcome], block_rows: int
) -> None:
    data, reference = short_reference
    _assert_same_outcome(_validate(data, block_rows), reference)


def test_validation_in_blocks_equals_one_pass_long(long_source: Path) -> None:
    data = read_step(long_source, "canonical")
    reference = _validate(data, None)
    assert reference.counts["order_items"].rejected >= 6
    for block_rows in (333, 1_000):  # remainders of 9 and 6 lines
        _assert_same_outcome(_validate(data, block_rows), reference)


def _with_order_faults(folder: Path) -> Path:
    """Rewrite ``orders.csv`` of ``folder`` with faults at its start and end; return the folder.

    An order repeated with another status far apart (both rejected, and their lines cascade), an
    exact copy at the end (the first kept), a date the reader cannot type, an unknown status, a
    shipment before the order and an order id differing from another only in case.
    """
    path = folder / "orders.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header, lines = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}

    def changed(row: list[str], **values: str) -> list[str]:
        out = list(row)
        for name, value in values.items():
            out[col[name]] = value
        return out

    head = [
        changed(lines[2], shipped_date="not a date"),  # a reader fault on a date column
        changed(lines[3], status="lost"),  # not an allowed status (a warning or reject by config)
    ]
    tail = [
        changed(lines[1], status="on_hold" if lines[1][col["status"]] != "on_hold" else "placed"),  # conflict
        list(lines[0]),  # an exact copy of the first order
        changed(lines[4], shipped_date="1999-01-01"),  # shipped before it was ordered (a new id below)
        changed(lines[5], order_id=lines[5][col["order_id"]].lower()),  # collides with its other case
    ]
    tail[2][col["order_id"]] = "SO99999990"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows([*lines[:2], *head, *lines[4:], *tail])
    return folder


@pytest.mark.parametrize("block_rows", [7, 40, 1_000])  # many blocks of orders; two; one
def test_orders_in_blocks_equal_one_pass(tmp_path: Path, block_rows: int) -> None:
    """``orders`` is validated by GX in blocks too: faults on both sides of the boundaries, same outcome."""
    generate_company(tmp_path, order_lines=400, seed=3)
    data = read_step(_with_order_faults(tmp_path), "canonical")
    reference = _validate(data, None)
    rules = set(reference.rejected_rows["rule"]) | set(reference.warnings["rule"])
    assert {"duplicate_key", "duplicate_identical", "key_collision", "parent_rejected"} <= rules, rules
    assert reference.counts["orders"].rejected >= 5
    assert len(data.tables["orders"].frame) > 80
    _assert_same_outcome(_validate(data, block_rows), reference)


# ---------------------------------------------------------------------------------------- the load


def _state(url: str) -> dict[str, pd.DataFrame]:
    """Return core (conformed, by key), the rejects and the row hashes (without run ids), sorted."""
    engine = create_engine(url)
    md = sa.MetaData()
    out: dict[str, pd.DataFrame] = {}
    with engine.connect() as conn:
        for spec in contract.TABLES:
            table = sa.Table(spec.name, md, schema="core", autoload_with=conn)
            frame = conform(read_table(conn, table), spec)
            out[spec.name] = frame.sort_values(list(spec.key)).reset_index(drop=True)
        rejected = read_table(conn, sa.Table("rejected_rows", md, schema="audit", autoload_with=conn))
        cols = ["table_name", "source_file", "source_line", "rule", "column_name", "value", "message"]
        cols = [c for c in cols if c in rejected.columns]
        rejected = rejected[cols].astype("string")
        rejected["source_file"] = rejected["source_file"].str.rsplit("/", n=1).str[-1]
        out["rejected"] = rejected.sort_values(cols).reset_index(drop=True)
        hashes = read_table(conn, sa.Table("row_hashes", md, schema="audit", autoload_with=conn))
        hashes = (
            hashes[["table_name", "row_key", "row_hash"]]
            .astype({"row_hash": "int64"})
            .astype({"table_name": "string", "row_key": "string"})
        )
        out["row_hashes"] = hashes.sort_values(["table_name", "row_key"]).reset_index(drop=True)
    engine.dispose()
    return out


def _assert_same_state(mine: dict[str, pd.DataFrame], reference: dict[str, pd.DataFrame]) -> None:
    for name in reference:
        pd.testing.assert_frame_equal(mine[name], reference[name], obj=name)


def _url(warehouse: str, tmp_path: Path, name: str) -> str:
    """Return ``warehouse`` for PostgreSQL, else a second SQLite warehouse ``name`` under ``tmp_path``."""
    return warehouse if warehouse.startswith("postgresql") else f"sqlite:///{tmp_path / name / 'wh.db'}"


@pytest.fixture(scope="module")
def long_reference(
    long_source: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """The run summary and the state of a one-block load of ``long_source`` into SQLite (both warehouses)."""
    folder = tmp_path_factory.mktemp("long_ref")
    ref_url = f"sqlite:///{folder / 'ref' / 'wh.db'}"
    ref_doc = _ingest(long_source, ref_url, folder / "out_ref", ingest_block_rows=1_000_000)
    return ref_doc, _state(ref_url)


def test_load_in_blocks_equals_one_block(
    warehouse: str,
    long_source: Path,
    long_reference: tuple[dict[str, Any], dict[str, pd.DataFrame]],
    tmp_path: Path,
) -> None:
    """Staging, core, rejects and hashes after a load in blocks of 333 rows equal a one-block load."""
    ref_doc, reference = long_reference
    doc = _ingest(long_source, warehouse, tmp_path / "out", ingest_block_rows=333)
    assert doc["tables"] == ref_doc["tables"]
    assert doc["tables"]["order_items"]["rejected"] >= 6
    mine = _state(warehouse)
    _assert_same_state(mine, reference)
    assert len(mine["row_hashes"].query("table_name == 'order_items'")) == len(mine["order_items"])


#: one daily drop's reference: day 1's folder, day 2's folder, day 2's run summary and the state after it
DailyReference = tuple[Path, Path, dict[str, Any], dict[str, pd.DataFrame]]


@pytest.fixture(scope="module")
def daily_references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DailyReference]:
    """Per mode (snapshot, new_only): day 1 then day 2 loaded in one block into SQLite (both warehouses)."""
    root = tmp_path_factory.mktemp("drops")
    generate_company(root / "day1", order_lines=1_500, seed=12)
    snapshot = next_day_drop(root / "day1", root / "day2", kind="snapshot", seed=6).out
    new_only = next_day_drop(root / "day1", root / "day2_new", kind="new_only", seed=6).out
    out: dict[str, DailyReference] = {}
    for day2, mode in ((snapshot, "snapshot"), (new_only, "new_only")):
        ref_url = f"sqlite:///{root / ('ref_' + mode) / 'wh.db'}"
        _ingest(root / "day1", ref_url, root / f"o1_ref_{mode}", ingest_block_rows=1_000_000)
        ref_doc = _ingest(day2, ref_url, root / f"o2_ref_{mode}", ingest_block_rows=1_000_000, mode=mode)
        out[mode] = (root / "day1", day2, ref_doc, _state(ref_url))
    return out


def test_daily_drops_in_blocks_equal_one_block(
    warehouse: str, daily_references: dict[str, DailyReference], tmp_path: Path
) -> None:
    """Day 1 then a snapshot and a new-only day 2, in blocks of 250 rows, equal the one-block runs."""
    for mode, (day1, day2, ref_doc, reference) in daily_references.items():
        url = _url(warehouse, tmp_path, f"mine_{mode}")
        if warehouse.startswith("postgresql"):
            from tests.conftest import drop_pg_schemas

            drop_pg_schemas(url)
        _ingest(day1, url, tmp_path / f"o1_{mode}", ingest_block_rows=250)
        doc = _ingest(day2, url, tmp_path / f"o2_{mode}", ingest_block_rows=250, mode=mode)
        assert doc["outputs"]["ingest_changes"] == ref_doc["outputs"]["ingest_changes"]
        assert doc["outputs"]["ingest_changes"]["mode"] == mode
        assert doc["tables"] == ref_doc["tables"]
        _assert_same_state(_state(url), reference)


def test_the_load_caps_sqlites_page_cache_and_restores_it(tmp_path: Path) -> None:
    from salesbi.ingest import prepare_warehouse, small_page_cache

    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'wh.db'}")
    prepare_warehouse(engine)

    def sizes(conn: sa.Connection) -> dict[str, int]:
        names = [str(r[1]) for r in conn.exec_driver_sql("PRAGMA database_list").fetchall()]
        return {n: int(conn.exec_driver_sql(f'PRAGMA "{n}".cache_size').scalar_one()) for n in names}

    with engine.begin() as conn:
        before = sizes(conn)
        assert before["core"] == -131072 and {"staging", "core", "audit"} <= set(before)
        with small_page_cache(conn, 2048):
            assert set(sizes(conn).values()) == {-2048}
        assert sizes(conn) == before
    engine.dispose()
