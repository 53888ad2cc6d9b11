"""Rejects people can fix: whole raw lines kept, exported (formula-safe), replayed, pruned.

Runs on the embedded SQLite default and on PostgreSQL (integration marker).
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from salesbi import rejects
from salesbi.params import PipelineParams
from salesbi.pipeline import run_pipeline
from salesbi.runlog import RunSummary
from salesbi.warehouse.engine import SCHEMAS, create_engine

BAD = Path(__file__).parent / "data" / "bad_inputs" / "company"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.integration])])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty warehouse on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'warehouse.db'}"
        return
    url: str = request.getfixturevalue("pg_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for schema in SCHEMAS:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()
    yield url


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A private copy of the bad-input company."""
    target = tmp_path / "company"
    shutil.copytree(BAD, target)
    return target


def _ingest(source: Path, url: str, out: Path, keep: int = 30) -> RunSummary:
    params = PipelineParams(
        source=source,
        warehouse_url=url,
        out_dir=out,
        steps=("ingest",),
        keep_rejects_runs=keep,
        max_rejected_share=1.0,  # the dirty corpus is mostly rejects on purpose
    )
    return run_pipeline(params)


def _query(url: str, sql: str) -> pd.DataFrame:
    engine = create_engine(url)
    with engine.connect() as conn:
        result = conn.execute(sa.text(sql))
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    engine.dispose()
    return frame


def _export(url: str, run_id: str, out: Path) -> list[dict[str, str]]:
    engine = create_engine(url)
    rejects.export_rejects(engine, run_id, out)
    engine.dispose()
    with open(out, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_each_rejected_row_keeps_its_whole_physical_line(
    warehouse: str, source: Path, tmp_path: Path
) -> None:
    summary = _ingest(source, warehouse, tmp_path / "out")
    stored = _query(
        warehouse,
        "SELECT source_file, source_line, raw_line FROM audit.rejected_rows "
        f"WHERE run_id = '{summary.run_id}' AND severity = 'reject'",
    )
    assert len(stored) >= 29
    for row in stored.itertuples():
        # independently: the file's physical line, as bytes split on newlines
        physical = (source / row.source_file).read_bytes().decode("utf-8-sig").split("\n")
        assert row.raw_line == physical[int(row.source_line) - 1].rstrip("\r"), (
            row.source_file,
            row.source_line,
        )


def test_export_gives_one_row_per_rejected_record_with_every_reason(
    warehouse: str, source: Path, tmp_path: Path
) -> None:
    summary = _ingest(source, warehouse, tmp_path / "out")
    exported = _export(warehouse, summary.run_id, tmp_path / "rejects.csv")
    reasons = _query(
        warehouse,
        "SELECT table_name, source_line, rule FROM audit.rejected_rows "
        f"WHERE run_id = '{summary.run_id}' AND severity = 'reject'",
    )
    records = reasons.groupby(["table_name", "source_line"])["rule"].apply(sorted)
    assert len(exported) == len(records) == sum(t.rejected for t in summary.tables.values())
    for row in exported:
        rules = records[(row["table_name"], int(row["source_line"]))]
        for rule in rules:
            assert rule in row["reasons"], (row["table_name"], row["source_line"], rule)
        assert len(row["reasons"].split("\n")) == len(rules)
    # the order with two unmapped/not-null reasons (orders.csv:8, status Teleported) lists both
    teleported = next(r for r in exported if r["table_name"] == "orders" and r["source_line"] == "8")
    assert "Teleported" in teleported["original_line"]


def test_export_neutralises_formula_cells(warehouse: str, source: Path, tmp_path: Path) -> None:
    line = "=C9+1,Zed,,,,Norway,,11,100"  # city missing: rejected whatever the id rules say
    with open(source / "customers.csv", "a", encoding="utf-8", newline="") as fh:
        fh.write(line + "\n")
    summary = _ingest(source, warehouse, tmp_path / "out")
    out = tmp_path / "rejects.csv"
    exported = _export(warehouse, summary.run_id, out)
    with open(out, encoding="utf-8-sig", newline="") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    ours = next(r for r in exported if r["table_name"] == "customers" and r["source_line"] == "8")
    assert ours["original_line"] == "'" + line == ours["corrected_line"]
    assert rejects.unneutralise(ours["original_line"]) == line


@pytest.mark.parametrize(
    "payload",
    ["=1+cmd|' /C calc'!A0", "+SUM(A1)", "-2+3", "@SUM(1)", "\t=1", "\r=1", "'=already", "plain", ""],
)
def test_neutralise_then_unneutralise_gives_the_value_back(payload: str) -> None:
    safe = rejects.neutralise(payload)
    assert safe[:1] not in ("=", "+", "-", "@", "\t", "\r")
    assert rejects.unneutralise(safe) == payload


def test_replay_loads_the_corrected_rows_through_the_same_validation(
    warehouse: str, source: Path, tmp_path: Path
) -> None:
    first = _ingest(source, warehouse, tmp_path / "out")
    export = tmp_path / "rejects.csv"
    rows = _export(warehouse, first.run_id, export)
    fixes = {
        ("customers", "5"): "C4,Delta Fun,,Bergen,,Norway,,11,200",  # the missing city
        ("customers", "7"): "C6,Foxtrot,Li Na,Lyon,,France,69002,11,300",  # credit limit 'lots'
        ("order_items", "10"): "",  # quantity 'two': the line is dropped
    }
    for row in rows:
        fix = fixes.get((row["table_name"], row["source_line"]))
        if fix is not None:
            row["corrected_line"] = fix
    assert sum(1 for r in rows if (r["table_name"], r["source_line"]) in fixes) == 3
    with open(export, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    engine = create_engine(warehouse)
    summary, skipped = rejects.replay(engine, export, warehouse_url=warehouse, out_dir=tmp_path / "out")
    engine.dispose()
    assert skipped == []
    assert summary.status in ("succeeded", "succeeded_with_warnings")
    customers = set(_query(warehouse, "SELECT customer_id FROM core.customers")["customer_id"])
    assert {"C4", "C6"} <= customers
    credit = _query(warehouse, "SELECT credit_limit FROM core.customers WHERE customer_id = 'C6'")
    assert float(credit["credit_limit"].iloc[0]) == 300.0
    before = sum(t.rejected for t in first.tables.values())
    after = sum(t.rejected for t in summary.tables.values())
    assert after == before - 3
    # the original source is untouched; the patched copy went through the reader
    assert (source / "customers.csv").read_bytes() == (BAD / "customers.csv").read_bytes()


def test_replay_refuses_a_source_that_changed_since_the_run(
    warehouse: str, source: Path, tmp_path: Path
) -> None:
    first = _ingest(source, warehouse, tmp_path / "out")
    export = tmp_path / "rejects.csv"
    _export(warehouse, first.run_id, export)
    text = (source / "customers.csv").read_text(encoding="utf-8").replace("Delta Fun", "Delta Fun Inc")
    (source / "customers.csv").write_text(text, encoding="utf-8")
    engine = create_engine(warehouse)
    with pytest.raises(rejects.SalesBIError, match="source changed since the run") as caught:
        rejects.replay(engine, export, warehouse_url=warehouse, out_dir=tmp_path / "out")
    engine.dispose()
    assert caught.value.line == 5 and "customers.csv" in str(caught.value.file)


def test_patch_source_handles_records_spanning_lines(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "t.csv").write_bytes(b'id,note\r\n1,"two\r\nlines"\r\n2,bad\r\n3,ok\r\n')
    lines = rejects.decode_source((folder / "t.csv").read_bytes()).lines
    assert rejects.record_text(lines, 2) == '1,"two\nlines"'
    fixes = [
        rejects.Correction("t.csv", 2, '1,"two\nlines"', "1,one line"),
        rejects.Correction("t.csv", 4, "2,bad", "2,good"),
    ]
    rejects.patch_source(folder, fixes, tmp_path / "patched")
    assert (tmp_path / "patched" / "t.csv").read_bytes() == b"id,note\r\n1,one line\r\n2,good\r\n3,ok\r\n"
    with pytest.raises(rejects.SalesBIError, match="not a file of the source"):
        rejects.patch_source(folder, [rejects.Correction("../x.csv", 1, "", "")], tmp_path / "p2")


def test_retention_keeps_the_rejects_of_the_newest_runs(warehouse: str, source: Path, tmp_path: Path) -> None:
    runs = [_ingest(source, warehouse, tmp_path / "out", keep=2).run_id for _ in range(3)]
    kept = set(_query(warehouse, "SELECT DISTINCT run_id FROM audit.rejected_rows")["run_id"])
    assert kept == set(runs[1:])


def test_an_audit_table_from_before_raw_line_gets_the_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wh.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE audit.rejected_rows (run_id VARCHAR(64), reject_id INTEGER)")
    rejects.ensure_raw_line_column(engine)
    rejects.ensure_raw_line_column(engine)  # twice is harmless
    with engine.connect() as conn:
        names = [r[1] for r in conn.exec_driver_sql("PRAGMA audit.table_info(rejected_rows)")]
    engine.dispose()
    assert names == ["run_id", "reject_id", "raw_line"]


def test_cli_exports_and_refuses_an_unknown_run(source: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'warehouse.db'}"
    summary = _ingest(source, url, tmp_path / "out")
    exe = Path(sys.executable).parent / "salesbi"
    out = tmp_path / "r.csv"
    done = subprocess.run(
        [str(exe), "rejects", "export", "--run", summary.run_id, "--out", str(out), "-w", url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with open(out, encoding="utf-8-sig", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == sum(t.rejected for t in summary.tables.values())
    missing = subprocess.run(
        [str(exe), "rejects", "export", "--run", "nope", "--out", str(out), "-w", url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert "no run 'nope'" in missing.stderr and "Traceback" not in missing.stderr
    # replay unchanged: the same records are rejected again, by a new run, exit 0
    replayed = subprocess.run(
        [str(exe), "rejects", "replay", str(out), "-w", url, "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert replayed.returncode in (0, 3), replayed.stderr
    runs = _query(url, "SELECT run_id, flow FROM audit.runs ORDER BY started_at")
    assert runs["flow"].tolist()[-1] == "rejects_replay"
    again = _query(
        url, f"SELECT COUNT(*) AS n FROM audit.rejected_rows WHERE run_id = '{runs['run_id'].iloc[-1]}'"
    )
    first = _query(url, f"SELECT COUNT(*) AS n FROM audit.rejected_rows WHERE run_id = '{summary.run_id}'")
    assert int(again["n"].iloc[0]) == int(first["n"].iloc[0]) > 0
