"""Connecting to the warehouse: any SQLAlchemy URL, an embedded SQLite file by default.

The five schemas (``staging``, ``core``, ``rpt``, ``ml``, ``audit``) exist under
the same names on every backend. SQLite has no schemas, so each one is a
database file attached under that name beside the main file
(``var/warehouse.db`` → ``var/warehouse.core.db`` …); a transaction spanning
them commits atomically (rollback journal mode).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from salesbi.errors import ConfigurationError, SalesBIError

SCHEMAS: tuple[str, ...] = ("staging", "core", "rpt", "ml", "audit")
DEFAULT_WAREHOUSE = Path("var") / "warehouse.db"
ENV_URL = "SALESBI_WAREHOUSE_URL"
#: seconds to wait for the warehouse to answer a connection (SQLite: for a lock) before giving up
DEFAULT_CONNECT_TIMEOUT = 15
URL_HINT = (
    "a warehouse URL looks like sqlite:///var/warehouse.db, "
    "postgresql+psycopg://USER:PASSWORD@HOST:5432/DB or "
    "mssql+pyodbc://USER:PASSWORD@HOST/DB?driver=ODBC+Driver+18+for+SQL+Server (see docs/deploy.md)"
)


class WarehouseUnavailable(SalesBIError):
    """The warehouse could not be reached or prepared; ``transient`` says whether a retry may cure it."""

    def __init__(self, what: str, *, hint: str | None = None, transient: bool = False) -> None:
        super().__init__(what, hint=hint)
        self.transient = transient


def default_url(base_dir: Path | None = None) -> str:
    """Return the embedded default URL: an SQLite file ``var/warehouse.db`` under ``base_dir`` (cwd)."""
    path = (base_dir or Path.cwd()) / DEFAULT_WAREHOUSE
    return f"sqlite:///{path}"


def resolve_url(url: str | None) -> str:
    """Return ``url``, else ``$SALESBI_WAREHOUSE_URL``, else the embedded SQLite default."""
    return url or os.environ.get(ENV_URL) or default_url()


def redact(url: str | URL) -> str:
    """Return the URL with its password masked, safe for logs and summaries (also for unparsable text)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError, TypeError):
        # user:password@ before the host, whatever else is wrong with the text
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", str(url))


def parse_url(url: str | None) -> URL:
    """Return the parsed warehouse URL (see :func:`resolve_url`); raise ConfigurationError if malformed."""
    text = resolve_url(url).strip()
    shown = redact(text)
    try:
        parsed = make_url(text)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise ConfigurationError(
            f"the warehouse URL {shown!r} is malformed ({_first_line(exc)})", hint=URL_HINT
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql", "mssql", "mysql", "oracle"):
        raise ConfigurationError(
            f"the warehouse URL {shown!r} names an unknown database {parsed.get_backend_name()!r}",
            hint=URL_HINT,
        )
    if parsed.get_backend_name() == "mssql" and not parsed.host and not parsed.query.get("odbc_connect"):
        raise ConfigurationError(f"the warehouse URL {shown!r} names no host", hint=URL_HINT)
    if parsed.get_backend_name() != "sqlite" and not parsed.database and not parsed.query.get("odbc_connect"):
        raise ConfigurationError(f"the warehouse URL {shown!r} names no database", hint=URL_HINT)
    return parsed


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def sqlite_schema_file(main_db: Path, schema: str) -> Path:
    """Return the file that holds ``schema`` for the SQLite warehouse ``main_db``."""
    return main_db.with_name(f"{main_db.stem}.{schema}{main_db.suffix or '.db'}")


def _sqlite_engine(url: URL, connect_timeout: float) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:"):
        raise ConfigurationError(
            "an in-memory SQLite warehouse cannot hold the five schemas",
            hint="use a file URL such as sqlite:///var/warehouse.db",
        )
    main = Path(database).expanduser().resolve()
    main.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url.set(database=str(main)),
        poolclass=sa.pool.NullPool,
        connect_args={"timeout": connect_timeout},
    )
    busy_ms = int(connect_timeout * 1000)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # take over transaction control so BEGIN covers DDL too (atomic swaps)
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for schema in SCHEMAS:
            cur.execute(f"ATTACH DATABASE ? AS {schema}", (str(sqlite_schema_file(main, schema)),))
            cur.execute(f"PRAGMA {schema}.journal_mode=DELETE")
            cur.execute(f"PRAGMA {schema}.synchronous=NORMAL")
            cur.execute(f"PRAGMA {schema}.cache_size=-131072")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


#: per driver, the connect argument that bounds the wait for a connection (seconds)
TIMEOUT_ARGS: dict[str, str] = {
    "psycopg": "connect_timeout",
    "psycopg2": "connect_timeout",
    "pyodbc": "timeout",
}


def create_engine(url: str | None = None, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> Engine:
    """Return an Engine for ``url`` (see :func:`resolve_url`), tuned for bulk loads on each backend.

    Connecting gives up after ``connect_timeout`` seconds (SQLite: waits that long for a lock),
    unless the URL sets its own timeout. A malformed URL or a missing driver raises ConfigurationError.
    """
    resolved = parse_url(url)
    backend = resolved.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(resolved, connect_timeout)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "mssql":
        # pyodbc is imported by SQLAlchemy only here, so the embedded default never needs ODBC
        kwargs["fast_executemany"] = True
    timeout_arg = TIMEOUT_ARGS.get(resolved.get_driver_name())
    if timeout_arg and timeout_arg not in resolved.query:
        kwargs["connect_args"] = {timeout_arg: int(max(1, connect_timeout))}
    try:
        return sa.create_engine(resolved, **kwargs)
    except (sa.exc.ArgumentError, TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"the warehouse URL {redact(resolved)!r} is not usable ({_first_line(exc)})", hint=URL_HINT
        ) from None
    except ImportError as exc:
        raise ConfigurationError(
            f"the driver for {backend} is not installed ({exc})",
            hint=(
                "install it: `pip install 'salesbi[sqlserver]'` plus the system ODBC library "
                "(Debian: unixodbc, and tdsodbc or Microsoft's msodbcsql18)"
                if backend == "mssql"
                else "install the database driver named in the URL"
            ),
        ) from exc


def ensure_schemas(engine: Engine) -> None:
    """Create the five schemas where the backend needs it (SQLite attaches them on connect)."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        return
    with engine.begin() as conn:
        for schema in SCHEMAS:
            if dialect == "mssql":
                conn.exec_driver_sql(f"IF SCHEMA_ID(N'{schema}') IS NULL EXEC(N'CREATE SCHEMA [{schema}]')")
            else:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')


#: (words in the driver's message, what to do) — first match wins
_CONNECT_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("password authentication failed", "login failed", "access denied", "28000", "28p01"),
        "check the user name and password in the warehouse URL (or its Prefect Secret block)",
    ),
    (
        ("does not exist", "cannot open database", "4060"),
        "create the database, or fix its name in the warehouse URL",
    ),
    (
        ("timeout", "timed out", "hyt00"),
        "the server did not answer in time: check that it runs and that host, port and firewall let "
        "this machine reach it (the wait is bounded by connect_timeout)",
    ),
    (
        (
            "refused",
            "could not connect",
            "could not translate host",
            "name or service not known",
            "08001",
            "tcp provider",
            "network",
        ),
        "check that the database server is running and that host and port in the warehouse URL are right",
    ),
    (
        ("data source name not found", "can't open lib", "im002", "driver"),
        "install the ODBC driver named in the URL's driver= parameter (Debian: msodbcsql18 or tdsodbc)",
    ),
    (
        ("unable to open database file", "readonly", "read-only", "permission denied"),
        "check that the warehouse file's folder exists and is writable by this user",
    ),
    (("database is locked", "busy"), "another process holds the SQLite warehouse: wait for it or stop it"),
)


def connect_failure(url: str | URL, exc: BaseException, *, transient: bool = False) -> WarehouseUnavailable:
    """Return the user-facing error for a failed connection to ``url``: warehouse (redacted), cause, fix."""
    cause = _first_line(exc)
    text = cause.lower()
    hint = next(
        (advice for words, advice in _CONNECT_HINTS if any(w in text for w in words)),
        "check the warehouse URL and that the database server is reachable from this machine",
    )
    return WarehouseUnavailable(
        f"cannot use the warehouse {redact(url)}: {cause}", hint=hint, transient=transient
    )


def statement_failure(url: str | URL, exc: BaseException) -> WarehouseUnavailable:
    """Return the user-facing error for a statement the reachable warehouse ``url`` refused mid-run.

    Connection-class errors (``OperationalError``, ``InterfaceError``) get :func:`connect_failure`'s
    advice; anything else (a value or constraint the database refused) is not a connection problem.
    """
    import sqlalchemy as sa

    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return connect_failure(url, exc)
    return WarehouseUnavailable(
        f"the warehouse {redact(url)} refused a statement: {_first_line(exc)}",
        hint="the step's transaction was rolled back and nothing was published; a value that passed "
        "validation but was refused by the database is a salesbi bug: please report it with run_summary.json",
    )
