"""Connecting to the warehouse: any SQLAlchemy URL, an embedded SQLite file by default.

The five schemas (``staging``, ``core``, ``rpt``, ``ml``, ``audit``) exist under
the same names on every backend. SQLite has no schemas, so each one is a
database file attached under that name beside the main file
(``var/warehouse.db`` → ``var/warehouse.core.db`` …); a transaction spanning
them commits atomically (rollback journal mode).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from salesbi.errors import ConfigurationError

SCHEMAS: tuple[str, ...] = ("staging", "core", "rpt", "ml", "audit")
DEFAULT_WAREHOUSE = Path("var") / "warehouse.db"
ENV_URL = "SALESBI_WAREHOUSE_URL"


def default_url(base_dir: Path | None = None) -> str:
    """Return the embedded default URL: an SQLite file ``var/warehouse.db`` under ``base_dir`` (cwd)."""
    path = (base_dir or Path.cwd()) / DEFAULT_WAREHOUSE
    return f"sqlite:///{path}"


def resolve_url(url: str | None) -> str:
    """Return ``url``, else ``$SALESBI_WAREHOUSE_URL``, else the embedded SQLite default."""
    return url or os.environ.get(ENV_URL) or default_url()


def redact(url: str | URL) -> str:
    """Return the URL with its password masked, safe for logs and summaries."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_schema_file(main_db: Path, schema: str) -> Path:
    """Return the file that holds ``schema`` for the SQLite warehouse ``main_db``."""
    return main_db.with_name(f"{main_db.stem}.{schema}{main_db.suffix or '.db'}")


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:"):
        raise ConfigurationError(
            "an in-memory SQLite warehouse cannot hold the five schemas",
            hint="use a file URL such as sqlite:///var/warehouse.db",
        )
    main = Path(database).expanduser().resolve()
    main.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url.set(database=str(main)), poolclass=sa.pool.NullPool)

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
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


def create_engine(url: str | None = None) -> Engine:
    """Return an Engine for ``url`` (see :func:`resolve_url`), tuned for bulk loads on each backend."""
    resolved = make_url(resolve_url(url))
    backend = resolved.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(resolved)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "mssql":
        # pyodbc is imported by SQLAlchemy only here, so the embedded default never needs ODBC
        kwargs["fast_executemany"] = True
    try:
        return sa.create_engine(resolved, **kwargs)
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
