"""Which failures are worth retrying: transient database errors per driver, never bad data or bugs.

Each driver says what went wrong differently, so each is classified by its own
signals: ``sqlite3`` by message (only lock contention and I/O hiccups are
transient; "no such table" is a schema bug), ``psycopg`` by SQLSTATE (class 08
connection errors, serialization failures, deadlocks, lock timeouts, server
shutting down; a connection that failed before any SQLSTATE by its message),
``pyodbc`` by the SQLSTATE at the start of its message text.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from salesbi.errors import SalesBIError
from salesbi.warehouse.engine import WarehouseUnavailable

DB_RETRY_DELAYS = [2, 10, 30]

#: PostgreSQL SQLSTATEs a retry can cure (class 08 is matched by prefix)
PG_TRANSIENT_STATES = frozenset(
    {"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "53000", "53100", "53200", "53300"}
)
#: SQL Server / ODBC SQLSTATEs a retry can cure (class 08 is matched by prefix)
ODBC_TRANSIENT_STATES = frozenset({"HYT00", "HYT01", "40001", "40501", "40613", "49918", "49919", "49920"})

_ODBC_STATE = re.compile(r"^\[?([0-9A-Z]{5})\]?$")
_ODBC_STATE_IN_TEXT = re.compile(r"\[([0-9A-Z]{5})\]")
SQLITE_TRANSIENT = ("database is locked", "database table is locked", "disk i/o error", "database is busy")
#: a connection that failed before the server spoke (no SQLSTATE): network trouble is transient ...
PG_CONNECT_TRANSIENT = (
    "connection refused",
    "timeout expired",
    "timed out",
    "server closed the connection",
    "could not receive data",
    "could not send data",
    "connection reset",
    "terminating connection",
    "the database system is starting up",
    "the database system is shutting down",
    "ssl syscall",
    "no route to host",
)
#: ... but a wrong password or database name is not
PG_CONNECT_PERMANENT = ("password authentication failed", "does not exist", "no pg_hba.conf entry")


def _driver(orig: BaseException) -> str:
    return type(orig).__module__.split(".")[0]


def _sqlite_transient(orig: BaseException) -> bool:
    text = str(orig).lower()
    return any(words in text for words in SQLITE_TRANSIENT)


def _psycopg_transient(orig: BaseException) -> bool:
    state = getattr(orig, "sqlstate", None)
    if state:
        return str(state).startswith("08") or state in PG_TRANSIENT_STATES
    text = str(orig).lower()
    if any(words in text for words in PG_CONNECT_PERMANENT):
        return False
    return any(words in text for words in PG_CONNECT_TRANSIENT)


def _odbc_transient(orig: BaseException) -> bool:
    # pyodbc.Error.args == (SQLSTATE, message); the message also starts with "[SQLSTATE]"
    args = getattr(orig, "args", ())
    found = _ODBC_STATE.match(str(args[0]) if args else "") or _ODBC_STATE_IN_TEXT.search(str(orig))
    state = found.group(1).upper() if found else ""
    return state.startswith("08") or state in ODBC_TRANSIENT_STATES


def is_transient(exc: BaseException | None) -> bool:
    """Return True for errors a retry can cure: lost connections, timeouts, deadlocks, lock waits.

    SQLAlchemy wraps the driver's exception; the driver's own (``exc.orig``)
    decides. Our own errors are never transient, except a :class:`WarehouseUnavailable`
    whose cause is.
    """
    if exc is None:
        return False
    if isinstance(exc, WarehouseUnavailable):
        return exc.transient or is_transient(exc.__cause__)
    if isinstance(exc, SalesBIError):
        return False
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        return is_transient(exc.orig) if exc.orig is not None else False
    driver = _driver(exc)
    if driver == "sqlite3":
        return _sqlite_transient(exc)
    if driver in ("psycopg", "psycopg2"):
        return _psycopg_transient(exc)
    if driver == "pyodbc":
        return _odbc_transient(exc)
    return isinstance(exc, (ConnectionError, TimeoutError))


def retry_on_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only when the failure was a transient database error."""
    exc = state.result(raise_on_failure=False)
    return is_transient(exc if isinstance(exc, BaseException) else None)
