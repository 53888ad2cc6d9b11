"""Every run is recorded and explains its failure: crashed runs, the run lock, warehouse errors in the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from salesbi import cli
from salesbi.params import PipelineParams
from salesbi.pipeline import open_warehouse, run_pipeline
from salesbi.runlock import LOCK_NAME, RunLocked, run_lock
from salesbi.runlog import RunSummary, list_runs, mark_crashed, record_start


def _warehouse(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'var' / 'warehouse.db'}"


CHILD = """
import sys
from salesbi.params import PipelineParams
from salesbi.pipeline import open_warehouse
from salesbi.runlog import RunSummary, record_start
engine, _ = open_warehouse(PipelineParams(warehouse_url=sys.argv[1]))
record_start(engine, RunSummary(run_id="killed-run", flow="sales_pipeline"))
print("started", flush=True)
sys.stdin.readline()  # blocks until killed
"""


def test_a_killed_run_is_marked_crashed_by_salesbi_runs(tmp_path: Path) -> None:
    url = _warehouse(tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "started"
    engine, _ = open_warehouse(PipelineParams(warehouse_url=url))
    record_start(engine, RunSummary(run_id="live-run", flow="ingest"))  # this process: alive
    assert mark_crashed(engine) == []  # the child still runs
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    result = CliRunner().invoke(cli.app, ["runs", "--warehouse", url, "--last", "5"])
    assert result.exit_code == 0, result.output
    assert "killed-run" in result.output and "crashed" in result.output
    rows = {r["run_id"]: r for r in list_runs(engine, 5)}
    assert rows["killed-run"]["status"] == "crashed"
    assert f"process {child.pid}" in rows["killed-run"]["error"]
    assert rows["live-run"]["status"] == "running"
    assert list_runs(engine, 1)[0]["run_id"] in rows
    engine.dispose()


def test_a_second_run_on_the_same_output_folder_fails_clearly(tmp_path: Path) -> None:
    out = tmp_path / "out"
    params = PipelineParams(warehouse_url=_warehouse(tmp_path), out_dir=out, steps=("powerbi",))
    with run_lock(out, "first-run"):
        with pytest.raises(RunLocked, match=r"run first-run .* is writing to this output folder") as caught:
            run_pipeline(params)
        assert "wait for it to finish" in caught.value.message
        result = CliRunner().invoke(
            cli.app, ["run", "--source", str(tmp_path), "--out", str(out), "--steps", "powerbi"]
        )
        assert result.exit_code == 2 and "is writing to this output folder" in result.output
        assert "Traceback" not in result.output
    assert not (out / LOCK_NAME).exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_text(
        json.dumps({"pid": dead.pid, "host": socket.gethostname(), "process_started": 1.0, "run_id": "x"})
    )
    with run_lock(out, "mine") as path:
        assert json.loads(path.read_text())["run_id"] == "mine"
    assert not path.exists()


def test_an_unwritable_output_folder_fails_before_anything_runs(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(
        cli.app,
        ["run", "--source", str(tmp_path), "--out", str(blocker / "out"), "--steps", "ingest"],
    )
    assert result.exit_code == 2, result.output
    assert "cannot create the output folder" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "var").exists()


#: malformed warehouse URLs → words the message must contain (password never shown)
MALFORMED = {
    "not a url": "is malformed",
    "foo://user:pw@host/db": "unknown database 'foo'",
    "postgresql+psycopg://user:pw@host:abc/db": "is malformed",
    "postgresql+psycopg://user:pw@localhost": "names no database",
    "postgresql+nodriver://user:pw@host/db": "is not usable",
    "mssql+pyodbc://user:pw@/db": "names no host",
    "mssql+pyodbc://user:pw@host/db": "driver for mssql is not installed",
    "sqlite://": "in-memory SQLite",
    "sqlite:///:memory:": "in-memory SQLite",
    "://user:pw@host/db": "is malformed",
}


@pytest.mark.parametrize("url", sorted(MALFORMED))
def test_every_malformed_warehouse_url_gets_a_message(url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.app,
        ["run", "--source", str(tmp_path), "--out", str(tmp_path / "out"), "--steps", "reports", "-w", url],
    )
    assert result.exit_code == 2, result.output
    assert MALFORMED[url] in result.output, result.output
    assert "Traceback" not in result.output and ":pw@" not in result.output
    if "mssql" in url and "host/" in url:
        assert "salesbi[sqlserver]" in result.output  # the hint survives the console's markup


def test_warehouse_down_explains_itself_everywhere(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://salesbi:s3cret@127.0.0.1:{port}/sales"
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli.app, ["run", "--source", str(tmp_path), "--out", str(out), "--steps", "reports", "-w", url]
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "s3cret" not in result.output
    expected = f"cannot use the warehouse postgresql+psycopg://salesbi:***@127.0.0.1:{port}/sales"
    assert expected in result.output and "Connection refused" in result.output
    assert "check that the database server is running" in result.output
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["status"] == "failed" and summary["failed_step"] == "connect"
    assert expected in summary["error"] and "s3cret" not in json.dumps(summary)


@pytest.mark.integration
@pytest.mark.postgres
def test_a_postgres_failure_mid_run_is_recorded_in_audit_runs(pg_url: str, tmp_path: Path) -> None:
    """A failure after connecting lands in audit.runs with the reason (PostgreSQL's audit schema)."""
    from salesbi.errors import SalesBIError

    params = PipelineParams(
        warehouse_url=pg_url, out_dir=tmp_path / "out", steps=("ingest",), source=tmp_path / "nope"
    )
    with pytest.raises(SalesBIError, match="source folder does not exist"):
        run_pipeline(params)
    run_id = json.loads((tmp_path / "out" / "run_summary.json").read_text())["run_id"]
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        status, step, error = conn.execute(
            sa.text("SELECT status, failed_step, error FROM audit.runs WHERE run_id = :r"), {"r": run_id}
        ).one()
    engine.dispose()
    assert (status, step) == ("failed", "read") and "salesbi generate" not in error
    assert str(tmp_path / "nope") in error


@pytest.mark.postgres
@pytest.mark.integration
def test_a_warehouse_made_when_status_was_16_characters_is_widened(pg_url: str) -> None:
    from salesbi.ingest import prepare_warehouse
    from salesbi.runlog import record_end
    from salesbi.warehouse.engine import create_engine
    from tests.conftest import drop_pg_schemas

    drop_pg_schemas(pg_url)
    engine = create_engine(pg_url)
    prepare_warehouse(engine)
    with engine.begin() as conn:  # as a warehouse created by an earlier salesbi
        conn.exec_driver_sql("ALTER TABLE audit.runs ALTER COLUMN status TYPE VARCHAR(16)")
    prepare_warehouse(engine)
    prepare_warehouse(engine)  # twice is harmless
    summary = RunSummary(run_id="r-widen", flow="test", status="succeeded_with_warnings")
    record_start(engine, summary)
    record_end(engine, summary)  # the 23-character status fits again
    with engine.connect() as conn:
        length = conn.exec_driver_sql(
            "SELECT character_maximum_length FROM information_schema.columns "
            "WHERE table_schema = 'audit' AND table_name = 'runs' AND column_name = 'status'"
        ).scalar_one()
        stored = conn.exec_driver_sql("SELECT status FROM audit.runs WHERE run_id = 'r-widen'").scalar_one()
    engine.dispose()
    assert length == 32
    assert stored == "succeeded_with_warnings"
