"""What the push-down needs of an SQLite warehouse (``reports_in="warehouse"`` on the default).

SQLite runs the same statements as PostgreSQL (:mod:`salesbi.reports.sql.selects`,
``summaries``, ``fact_publish``, ``model_inputs``) with one requirement and one setting:

- **version**: window functions (``ROW_NUMBER``, running ``SUM … OVER ROWS …``, ``LAG``/``LEAD``:
  SQLite 3.25, :data:`MIN_VERSION`), checked by :func:`check_library` before a run starts and
  by :func:`check_connection` on the warehouse's connection. No math functions: rounding,
  floor and ceiling are rendered with ``round``/``CAST`` (:mod:`salesbi.reports.sql.expr`;
  SQLAlchemy's driver replaces ``floor()`` by a Python callback);
- **bounded memory** (:func:`bounded`): sorts (``GROUP BY``, ``DISTINCT``, window partitions)
  and the build's temporary tables go to temporary files, not RAM (``PRAGMA temp_store=FILE``:
  with temp_store=MEMORY SQLite's sorter keeps every row it sorts in memory), and every
  attached schema's page cache (``main`` sizes the sorter's in-memory runs) is capped at
  :data:`CACHE_KIB`, so the process holds a few caches whatever the history's size.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa

from salesbi.errors import ConfigurationError

#: the oldest SQLite library the push-down runs on (window functions; tested on 3.40)
MIN_VERSION: tuple[int, int, int] = (3, 25, 0)
#: page cache per attached schema during a push-down statement, KiB (``main``'s also bounds the
#: sorter's in-memory runs before they spill to temporary files)
CACHE_KIB = 32_768
_HINT = (
    "use reports_in='python' (the default), or a Python whose sqlite3 module links SQLite "
    f"{'.'.join(map(str, MIN_VERSION))} or later, or a PostgreSQL / SQL Server warehouse"
)


def version_problem(version: str) -> str | None:
    """Return why an SQLite library of ``version`` cannot run the push-down, or None when it can."""
    found = tuple(int(p) for p in version.split(".")[:3])
    if found < MIN_VERSION:
        need = ".".join(map(str, MIN_VERSION))
        return f"SQLite {version} is older than {need} (window functions are needed)"
    return None


def library_problem() -> str | None:
    """Return why the sqlite3 library Python links cannot run the push-down, or None when it can."""
    return version_problem(sqlite3.sqlite_version)


def _refuse(problem: str | None) -> None:
    if problem:
        raise ConfigurationError(f"reports_in='warehouse' cannot run on this SQLite: {problem}", hint=_HINT)


def check_library() -> None:
    """Raise ConfigurationError when the linked SQLite library cannot run the push-down."""
    _refuse(library_problem())


def check_connection(conn: sa.Connection) -> None:
    """Raise ConfigurationError when the SQLite warehouse behind ``conn`` cannot run the push-down."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        version = str(cursor.execute("SELECT sqlite_version()").fetchone()[0])
    finally:
        cursor.close()
    _refuse(version_problem(version))


def bounded(conn: sa.Connection, kib: int = CACHE_KIB, *, temp_store: bool = True) -> None:
    """Set the SQLite connection ``conn`` up for large statements in bounded memory (no-op elsewhere).

    ``temp_store``: also set ``PRAGMA temp_store=FILE`` (allowed only outside a transaction:
    call it before ``conn``'s first statement). Every attached schema's page cache is capped
    at ``kib`` KiB; the settings last as long as the connection (the warehouse's engine does
    not pool SQLite connections).
    """
    if conn.dialect.name != "sqlite":
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if temp_store:
            cursor.execute("PRAGMA temp_store=FILE")
        schemas = [str(r[1]) for r in cursor.execute("PRAGMA database_list").fetchall()]
        for schema in {"main", "temp", *schemas}:
            cursor.execute(f'PRAGMA "{schema}".cache_size=-{int(kib)}')
    finally:
        cursor.close()


def settings(conn: sa.Connection) -> dict[str, int]:
    """Return ``temp_store`` and each schema's ``cache_size`` of the SQLite connection ``conn``."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        out = {"temp_store": int(cursor.execute("PRAGMA temp_store").fetchone()[0])}
        for row in cursor.execute("PRAGMA database_list").fetchall():
            out[f"{row[1]}.cache_size"] = int(cursor.execute(f'PRAGMA "{row[1]}".cache_size').fetchone()[0])
    finally:
        cursor.close()
    return out
