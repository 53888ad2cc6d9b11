"""Database tasks retry on transient errors only, judged per driver; bad data and bugs never retry.

The exceptions are the drivers' own: sqlite3 and psycopg raise them here for
real (a locked database, a missing table, a closed port); pyodbc (not installed
in CI) is represented by its exception shape and SQL Server's message texts.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import psycopg.errors
import pytest
import sqlalchemy as sa

from salesbi.errors import StructuralError, ValidationFailed
from salesbi.warehouse.engine import WarehouseUnavailable, connect_failure
from tasks.retry import is_transient


def _sqlite_error(tmp_path: Path, what: str) -> sqlite3.OperationalError:
    """Return the error sqlite3 really raises for ``what``: 'locked' or 'no such table'."""
    path = tmp_path / "db.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    try:
        if what == "locked":
            holder.execute("BEGIN EXCLUSIVE")
            other = sqlite3.connect(path, timeout=0)
            with pytest.raises(sqlite3.OperationalError) as caught:
                other.execute("INSERT INTO t VALUES (1)")
            other.close()
        else:
            with pytest.raises(sqlite3.OperationalError) as caught:
                holder.execute("SELECT * FROM missing_table")
    finally:
        holder.close()
    return caught.value


def _wrapped(orig: BaseException) -> sa.exc.DBAPIError:
    wrapped = sa.exc.DBAPIError.instance("SELECT 1", {}, orig, Exception)  # type: ignore[arg-type]
    assert isinstance(wrapped, sa.exc.DBAPIError)
    return wrapped


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a hung server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


def test_sqlite_lock_contention_is_transient_but_a_missing_table_is_not(tmp_path: Path) -> None:
    locked = _sqlite_error(tmp_path, "locked")
    missing = _sqlite_error(tmp_path, "missing")
    assert "locked" in str(locked) and "no such table" in str(missing)
    assert is_transient(locked) and is_transient(_wrapped(locked))
    assert not is_transient(missing)
    wrapped = _wrapped(missing)
    assert isinstance(wrapped, sa.exc.OperationalError)  # SQLAlchemy calls it operational ...
    assert not is_transient(wrapped)  # ... but it is a schema bug: no retry


def test_psycopg_classified_by_sqlstate_and_connection_failure(closed_port: int) -> None:
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(f"host=127.0.0.1 port={closed_port} dbname=x user=x connect_timeout=5")
    assert is_transient(refused.value) and is_transient(_wrapped(refused.value))
    for transient in (
        psycopg.errors.DeadlockDetected,
        psycopg.errors.SerializationFailure,
        psycopg.errors.AdminShutdown,
        psycopg.errors.LockNotAvailable,
        psycopg.errors.ConnectionFailure,
    ):
        assert is_transient(_wrapped(transient("x"))), transient
    for permanent in (
        psycopg.errors.UndefinedTable,
        psycopg.errors.UniqueViolation,
        psycopg.errors.InvalidPassword,
        psycopg.errors.InvalidCatalogName,
        psycopg.errors.SyntaxError,
    ):
        assert not is_transient(_wrapped(permanent("x"))), permanent


def test_psycopg_connect_timeout_bounds_a_silent_server(silent_port: int) -> None:
    from salesbi.params import PipelineParams
    from salesbi.pipeline import open_warehouse

    url = f"postgresql+psycopg://salesbi:s3cret@127.0.0.1:{silent_port}/db"
    with pytest.raises(WarehouseUnavailable) as caught:
        open_warehouse(PipelineParams(warehouse_url=url, connect_timeout=1))
    message = caught.value.message
    assert "s3cret" not in message and f"127.0.0.1:{silent_port}/db" in message
    assert "timeout" in message.lower() and "firewall" in message
    assert is_transient(caught.value)


def _pyodbc_error(state: str, text: str) -> Exception:
    error_class = type("Error", (Exception,), {"__module__": "pyodbc"})
    return error_class(state, f"[{state}] [Microsoft][ODBC Driver 18 for SQL Server]{text}")  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("state", "text", "transient"),
    [
        ("08001", "TCP Provider: Error code 0x2749 (10057)", True),
        ("08S01", "TCP Provider: An existing connection was forcibly closed by the remote host.", True),
        ("HYT00", "Login timeout expired", True),
        ("40001", "Transaction (Process ID 57) was deadlocked on lock resources (1205)", True),
        ("28000", "[SQL Server]Login failed for user 'salesbi'. (18456)", False),
        ("42S02", "[SQL Server]Invalid object name 'core.orders'. (208)", False),
        ("23000", "[SQL Server]Violation of PRIMARY KEY constraint (2627)", False),
        ("IM002", "Data source name not found and no default driver specified", False),
    ],
)
def test_pyodbc_classified_by_sqlstate(state: str, text: str, transient: bool) -> None:
    error = _pyodbc_error(state, text)
    assert is_transient(error) is transient
    assert is_transient(_wrapped(error)) is transient


def test_bad_data_and_bugs_are_not_transient() -> None:
    assert not is_transient(None)
    assert not is_transient(ValidationFailed("orders shrank by 80%"))
    assert not is_transient(StructuralError("missing file orders.csv"))
    assert not is_transient(ValueError("a bug"))
    assert not is_transient(AssertionError())
    assert is_transient(ConnectionResetError("reset by peer"))
    lost = sa.exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    assert is_transient(lost)


def test_warehouse_unavailable_is_transient_as_its_cause(closed_port: int) -> None:
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(f"host=127.0.0.1 port={closed_port} dbname=x user=x")
    url = f"postgresql+psycopg://u:pw@127.0.0.1:{closed_port}/x"
    try:
        raise connect_failure(url, refused.value) from refused.value
    except WarehouseUnavailable as exc:
        assert is_transient(exc)
        assert "pw" not in exc.message and "Connection refused" in exc.message
        assert "server is running" in exc.message
    bad_password = psycopg.errors.InvalidPassword("password authentication failed for user u")
    try:
        raise connect_failure(url, bad_password) from bad_password
    except WarehouseUnavailable as exc:
        assert not is_transient(exc)
        assert "user name and password" in exc.message


@pytest.mark.integration
@pytest.mark.prefect
def test_prefect_retries_a_transient_failure_but_not_bad_data(prefect_api: None, tmp_path: Path) -> None:
    from prefect import flow, task

    from tasks.stages import DB

    locked = _sqlite_error(tmp_path, "locked")
    missing = _sqlite_error(tmp_path, "missing")
    calls = {"transient": 0, "bad": 0, "bug": 0}

    @task(**{**DB, "retry_delay_seconds": 0})
    def flaky() -> str:
        calls["transient"] += 1
        if calls["transient"] == 1:
            raise _wrapped(locked)
        return "ok"

    @task(**{**DB, "retry_delay_seconds": 0})
    def bad_data() -> None:
        calls["bad"] += 1
        raise ValidationFailed("orders: zero rows")

    @task(**{**DB, "retry_delay_seconds": 0})
    def schema_bug() -> None:
        calls["bug"] += 1
        raise _wrapped(missing)

    @flow
    def all_three() -> str:
        result = flaky()
        assert bad_data(return_state=True).is_failed()
        assert schema_bug(return_state=True).is_failed()
        return str(result)

    assert all_three() == "ok"
    assert calls == {"transient": 2, "bad": 1, "bug": 1}
