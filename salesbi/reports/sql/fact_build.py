"""The fact's lines computed once per run inside the warehouse (``reports_in="warehouse"``).

Every push-down statement that reads the fact's lines — the report build's order sums and
summaries, the model inputs, the insights' aggregate, the publish of ``rpt.fact_order_lines``
and its Parquet file — reads one **build table** that :func:`create_fact_build` fills with one
``INSERT … SELECT`` (the fact's statement of :mod:`salesbi.reports.sql.selects`) instead of
joining ``order_items`` to ``orders``, customers, products and employees again.

- **Where**: ``staging.fact_build_<run id>`` (:func:`build_table_name`), a real table of the
  warehouse, not a temporary one: the model steps read it on their own connections (threads)
  and the publish on its transaction's. On SQLite it lives in the attached ``staging`` file,
  on PostgreSQL it is ``UNLOGGED`` (no write-ahead log: it is rebuilt, never recovered), on
  SQL Server a table of the ``staging`` schema. Its columns are the fact's statement's, typed
  as that statement types them (the rows the temporary tables of the report build held
  before): the values every reader sees are those the statement computes.
- **What changes in ``rpt``**: nothing until the publish, which copies the build table into
  ``rpt.fact_order_lines`` inside its transaction (``INSERT … SELECT`` from it:
  :func:`salesbi.reports.sql.fact_publish.insert_fact`).
- **Lifetime**: dropped when the run ends, whatever happened (:func:`drop_fact_build`); what a
  killed run left is dropped by the next run once it has marked dead runs crashed
  (:func:`drop_stale_builds`: every build table whose run is not ``running``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from salesbi.reports.sql import sqlite
from salesbi.reports.sql.selects import fact_order_lines_select

#: the schema of the build tables
SCHEMA = "staging"
#: the name of every build table starts so (then the run id, lower case, ``_`` for ``-``)
PREFIX = "fact_build_"


def build_table_name(run_id: str) -> str:
    """Return the name of run ``run_id``'s build table: ``fact_build_`` and the run id as an identifier."""
    return PREFIX + re.sub(r"[^0-9a-z_]", "_", run_id.lower())


def build_table(dialect: sa.Dialect, metadata: sa.MetaData, run_id: str) -> sa.Table:
    """Return the definition of run ``run_id``'s build table: the fact statement's columns and types.

    In a metadata of its own (the warehouse's metadata does not know it); ``UNLOGGED`` on
    PostgreSQL.
    """
    select = fact_order_lines_select(metadata)
    columns = [sa.Column(c.name, c.type) for c in select.selected_columns]
    prefixes = ["UNLOGGED"] if dialect.name == "postgresql" else []
    return sa.Table(build_table_name(run_id), sa.MetaData(), *columns, schema=SCHEMA, prefixes=prefixes)


def fill_statement(table: sa.Table, metadata: sa.MetaData) -> sa.Insert:
    """Return ``INSERT INTO <build table> (…) SELECT …`` of the fact's lines over ``core``."""
    select = fact_order_lines_select(metadata)
    return sa.insert(table).from_select([c.name for c in select.selected_columns], select)


@dataclass(frozen=True)
class FactBuild:
    """A run's build table of the fact's lines and its number of rows."""

    table: sa.Table
    rows: int


def create_fact_build(engine: Engine, metadata: sa.MetaData, run_id: str) -> FactBuild:
    """Return run ``run_id``'s build table, created and filled from ``core`` (committed).

    One ``INSERT … SELECT`` computes the fact's lines; a build table the same run left (a retried
    step) is replaced. On SQLite the connection's sorts spill to files and its caches are capped
    (:func:`salesbi.reports.sql.sqlite.bounded`); on PostgreSQL the table is analysed (the later
    statements' plans need its size).
    """
    table = build_table(engine.dialect, metadata, run_id)
    with engine.connect() as conn:
        sqlite.bounded(conn)  # before the first statement: temp_store
        with conn.begin():
            table.drop(conn, checkfirst=True)
            table.create(conn)
            rows = conn.execute(fill_statement(table, metadata)).rowcount
        if rows is None or rows < 0:  # a driver that does not count: ask
            rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f'ANALYZE "{SCHEMA}"."{table.name}"')
            conn.commit()
    return FactBuild(table, int(rows))


def build_tables(engine: Engine) -> list[str]:
    """Return the names of the build tables in the warehouse (of any run)."""
    names = sa.inspect(engine).get_table_names(schema=SCHEMA)
    return sorted(n for n in names if n.startswith(PREFIX))


def drop_tables(engine: Engine, names: Collection[str]) -> None:
    """Drop the build tables ``names`` (those that exist), in one transaction."""
    with engine.begin() as conn:
        for name in names:
            sa.Table(name, sa.MetaData(), schema=SCHEMA).drop(conn, checkfirst=True)


def drop_fact_build(engine: Engine, run_id: str) -> bool:
    """Drop run ``run_id``'s build table; return whether there was one."""
    name = build_table_name(run_id)
    if name not in build_tables(engine):
        return False
    drop_tables(engine, [name])
    return True


def running_runs(engine: Engine, metadata: sa.MetaData) -> list[str]:
    """Return the ids of the runs ``audit.runs`` says are ``running``."""
    runs = metadata.tables["audit.runs"]
    with engine.connect() as conn:
        ids = conn.execute(sa.select(runs.c.run_id).where(runs.c.status == "running")).scalars()
        return [str(r) for r in ids]


def drop_stale_builds(
    engine: Engine, metadata: sa.MetaData, live_run_ids: Collection[str] | None = None
) -> list[str]:
    """Drop every build table whose run is not going on; return their names.

    ``live_run_ids``: the runs going on (default: those ``audit.runs`` says are ``running``).
    Called once a run has marked the runs of dead processes crashed: what they left goes.
    """
    if live_run_ids is None:
        live_run_ids = running_runs(engine, metadata)
    live = {build_table_name(r) for r in live_run_ids}
    stale = [n for n in build_tables(engine) if n not in live]
    if stale:
        drop_tables(engine, stale)
    return stale
