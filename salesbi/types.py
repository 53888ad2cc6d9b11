"""How a column is represented in pandas, Arrow and SQL: per-column views of the kind registry.

The types themselves are defined once per kind in :mod:`salesbi.kinds`; these helpers
apply a column's overrides (its text length) so readers, the warehouse DDL and the
Parquet export cannot disagree.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from salesbi.schema import Column, Table


def sql_type(column: Column) -> sa.types.TypeEngine[Any]:
    """Return the SQLAlchemy type for ``column`` (NVARCHAR/DECIMAL/DATE... on SQL Server)."""
    return column.spec.sql_type(column.length)


def text_limit(column: Column) -> int | None:
    """Return the most characters ``column`` may hold in the warehouse (its DDL size), None if unbounded."""
    return column.spec.text_limit(column.length)


def decimal_limit(column: Column) -> tuple[int, int] | None:
    """Return ``(precision, scale)`` of a DECIMAL column (money, fraction), None for other kinds."""
    return column.spec.decimal


def pandas_dtype(column: Column) -> str:
    """Return the pandas dtype name a frame column of this kind holds."""
    return column.spec.pandas_dtype


def arrow_type(column: Column) -> pa.DataType:
    """Return the Arrow (and so Parquet) type for this column."""
    return column.spec.arrow_type


def arrow_schema(table: Table) -> pa.Schema:
    """Return the Arrow schema of ``table``, nullability included."""
    return pa.schema(
        [
            pa.field(c.name, arrow_type(c), nullable=not (c.required or c.name in table.key))
            for c in table.columns
        ]
    )


def conform(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """Return ``frame`` with exactly the table's columns, in order, cast to their pandas dtypes.

    Missing optional columns are added as nulls; extra columns are dropped.
    Values that cannot be cast raise ``ValueError`` naming the column.
    """
    out: dict[str, pd.Series] = {}
    for c in table.columns:
        if c.name in frame.columns:
            s = frame[c.name]
        else:
            s = pd.Series(pd.NA, index=frame.index, dtype="object")
        dtype = pandas_dtype(c)
        try:
            family = c.spec.family
            if family == "temporal":
                if s.dtype != dtype:  # already of its dtype: not copied
                    s = pd.to_datetime(s).astype(dtype)
            elif family == "text":
                s = s.astype("string")
            elif dtype == "float64" and s.dtype == object:  # pd.NA/None mixed in: via the nullable dtype
                s = s.astype("Float64").astype(dtype)
            else:
                s = s.astype(dtype)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{table.name}.{c.name}: cannot cast to {dtype}: {exc}") from exc
        out[c.name] = s
    # copy-on-write: a column that already has its dtype is shared, not copied
    return pd.DataFrame(out, index=frame.index, copy=False)


def to_arrow(frame: pd.DataFrame, table: Table) -> pa.Table:
    """Return ``frame`` as an Arrow table with the table's exact schema (for Parquet)."""
    conformed = conform(frame, table)
    return pa.Table.from_pandas(conformed, schema=arrow_schema(table), preserve_index=False)
