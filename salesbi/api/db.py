"""Read-only access to the warehouse's ``rpt`` tables: the API only ever runs SELECTs.

SQLite files are opened with ``mode=ro`` URIs (main file and every attached schema file) and
``PRAGMA query_only``; PostgreSQL sessions start with ``default_transaction_read_only``; for SQL
Server give the API a login that only has SELECT on ``rpt`` (docs/api.md). Tables are reflected
from the database on first use, so the API reads whatever columns the pipeline published.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from salesbi.errors import ConfigurationError
from salesbi.warehouse.engine import SCHEMAS, redact, resolve_url, sqlite_schema_file

RPT = "rpt"


class TableMissing(LookupError):
    """An ``rpt`` table has not been published to the warehouse yet."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{RPT}.{name} is not in the warehouse yet")
        self.name = name


def _ro_uri(path: Path) -> str:
    return f"file:{quote(str(path))}?mode=ro"


def _sqlite_read_only(database: str) -> Engine:
    main = Path(database).expanduser().resolve()
    if not main.is_file():
        raise ConfigurationError(
            f"the warehouse file {main} does not exist",
            file=main,
            hint="run `salesbi run` first, or point SALESBI_WAREHOUSE_URL at the warehouse",
        )
    attach = [(s, sqlite_schema_file(main, s)) for s in SCHEMAS]
    engine = sa.create_engine(
        f"sqlite:///{_ro_uri(main)}&uri=true", poolclass=sa.pool.QueuePool, pool_size=4, max_overflow=4
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        for schema, path in attach:
            if path.is_file():
                cur.execute(f"ATTACH DATABASE ? AS {schema}", (_ro_uri(path),))
        cur.execute("PRAGMA query_only=ON")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.close()

    return engine


def read_only_engine(url: str | None) -> Engine:
    """Return an Engine that cannot write: SQLite read-only URIs, PostgreSQL read-only sessions.

    ``url`` defaults as in :func:`salesbi.warehouse.engine.resolve_url`. Raises ConfigurationError
    when the SQLite file does not exist.
    """
    resolved = make_url(resolve_url(url))
    backend = resolved.get_backend_name()
    if backend == "sqlite":
        database = resolved.database or ""
        if database in ("", ":memory:"):
            raise ConfigurationError("the API needs a warehouse file, not an in-memory database")
        return _sqlite_read_only(database)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "postgresql":
        kwargs["connect_args"] = {"options": "-c default_transaction_read_only=on"}
    try:
        return sa.create_engine(resolved, **kwargs)
    except ImportError as exc:
        raise ConfigurationError(
            f"the driver for {backend} is not installed ({exc})", hint=f"warehouse: {redact(resolved)}"
        ) from exc


class RptReader:
    """SELECTs on ``rpt`` tables through a read-only engine; reflected tables are cached."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._tables: dict[str, sa.Table] = {}
        self._lock = threading.Lock()

    def table(self, name: str) -> sa.Table:
        """Return the reflected ``rpt.<name>``; TableMissing when it is not in the warehouse."""
        with self._lock:
            cached = self._tables.get(name)
        if cached is not None:
            return cached
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(name, schema=RPT):
                raise TableMissing(name)
            table = sa.Table(name, sa.MetaData(), schema=RPT, autoload_with=conn)
        with self._lock:
            self._tables[name] = table
        return table

    def rows(self, query: sa.Select[Any]) -> list[dict[str, Any]]:
        """Return the rows of a SELECT as dicts."""
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def by_key(self, name: str, column: str, value: str) -> dict[str, Any] | None:
        """Return the row of ``rpt.<name>`` whose ``column`` equals ``value``, or None."""
        table = self.table(name)
        found = self.rows(sa.select(table).where(table.c[column] == value).limit(1))
        return found[0] if found else None

    def forget(self) -> None:
        """Drop the cached reflections (after the pipeline republished with other columns)."""
        with self._lock:
            self._tables.clear()
