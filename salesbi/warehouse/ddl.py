"""SQLAlchemy metadata for every warehouse table, derived from the table definitions.

``core`` tables get primary keys, foreign keys and indexes from the contract;
``staging`` tables have the same columns, all nullable, plus the lineage
columns (``salesbi.schema.LINEAGE``: ``_run_id``, ``_source_file``, ``_source_line``, ``_status``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from salesbi import contract
from salesbi.modelrun import MODEL_RUNS
from salesbi.rpt import ml_tables, rpt_tables
from salesbi.schema import LINEAGE, LINEAGE_NAMES, Table
from salesbi.types import sql_type
from salesbi.validation.tables import REJECTED_ROWS
from salesbi.warehouse.audit_tables import AUDIT_TABLES

NAMING = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
}

LINEAGE_COLUMNS = LINEAGE_NAMES


def _columns(table: Table, *, all_nullable: bool = False) -> list[Any]:
    return [
        sa.Column(
            c.name,
            sql_type(c),
            nullable=all_nullable or not (c.required or c.name in table.key),
        )
        for c in table.columns
    ]


def add_core_table(metadata: sa.MetaData, table: Table) -> sa.Table:
    """Return the ``core`` SQLAlchemy table for a contract table (PK, FKs, indexes) added to ``metadata``."""
    cols = _columns(table)
    constraints: list[Any] = [sa.PrimaryKeyConstraint(*table.key)]
    for col, parent, parent_col in table.foreign_keys:
        constraints.append(sa.ForeignKeyConstraint([col], [f"core.{parent}.{parent_col}"]))
    t = sa.Table(table.name, metadata, *cols, *constraints, schema="core")
    for index_cols in table.indexes:
        sa.Index(None, *(t.c[c] for c in index_cols), _table=t)
    return t


def add_staging_table(metadata: sa.MetaData, table: Table) -> sa.Table:
    """Return the ``staging`` table for a contract table: typed, all nullable, with lineage columns."""
    lineage: list[Any] = [sa.Column(c.name, sql_type(c), nullable=not c.required) for c in LINEAGE]
    return sa.Table(table.name, metadata, *_columns(table, all_nullable=True), *lineage, schema="staging")


def add_plain_table(metadata: sa.MetaData, table: Table, *, name: str | None = None) -> sa.Table:
    """Return an ``rpt``/``ml``/``audit`` table with its primary key, optionally under another name."""
    table_name = name or table.name
    return sa.Table(
        table_name,
        metadata,
        *_columns(table),
        sa.PrimaryKeyConstraint(*table.key, name=f"pk_{table_name}"),
        schema=table.schema,
    )


def plain_tables() -> tuple[Table, ...]:
    """Return every non-contract table definition: rpt, ml and audit."""
    return (*tuple(rpt_tables()), MODEL_RUNS, *ml_tables(), *AUDIT_TABLES, REJECTED_ROWS)


def warehouse_metadata(extra: Iterable[Table] = ()) -> sa.MetaData:
    """Return metadata holding every warehouse table: staging, core, rpt, ml and audit."""
    md = sa.MetaData(naming_convention=NAMING)
    for t in contract.TABLES:
        add_staging_table(md, t)
        add_core_table(md, t)
    for t in (*plain_tables(), *extra):
        add_plain_table(md, t)
    return md


def add_missing_column(engine: sa.Engine, table: Table, column_name: str) -> bool:
    """Add ``column_name`` of ``table`` to a warehouse table created before it had it; return if it was added.

    A no-op (``False``) when the table does not exist yet (it will be created whole) or already has the
    column. The column is added nullable: rows written before it existed have no value for it.
    """
    column = next(c for c in table.columns if c.name == column_name)
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        if not inspector.has_table(table.name, schema=table.schema):
            return False
        if column_name in {c["name"] for c in inspector.get_columns(table.name, schema=table.schema)}:
            return False
        quote = conn.dialect.identifier_preparer.quote
        type_sql = sql_type(column).compile(dialect=conn.dialect)
        conn.exec_driver_sql(
            f"ALTER TABLE {quote(table.schema)}.{quote(table.name)} ADD {quote(column_name)} {type_sql}"
        )
    return True
