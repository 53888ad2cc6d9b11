"""How each column kind is represented in pandas, Arrow and SQL.

Every consumer asks this module instead of spelling a type itself, so the
readers, the warehouse DDL and the Parquet export cannot disagree.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from salesbi.schema import Column, Table

TEXT_LENGTH = 255
ID_LENGTH = 64


def sql_type(column: Column) -> sa.types.TypeEngine[Any]:
    """Return the SQLAlchemy type for ``column`` (NVARCHAR/DECIMAL/DATE... on SQL Server)."""
    kind = column.kind
    if kind == "id":
        return sa.Unicode(column.length or ID_LENGTH)
    if kind == "text":
        return sa.Unicode(column.length or TEXT_LENGTH)
    if kind == "long_text":
        return sa.UnicodeText()
    if kind == "int":
        return sa.BigInteger()
    if kind == "money":
        p, sc = DECIMALS["money"]
        return sa.Numeric(p, sc, asdecimal=False).with_variant(mssql.DECIMAL(p, sc, asdecimal=False), "mssql")
    if kind == "fraction":
        p, sc = DECIMALS["fraction"]
        return sa.Numeric(p, sc, asdecimal=False).with_variant(mssql.DECIMAL(p, sc, asdecimal=False), "mssql")
    if kind == "float":
        return sa.Float(precision=53)
    if kind == "date":
        return sa.Date().with_variant(mssql.DATE(), "mssql")
    if kind == "datetime":
        return sa.DateTime().with_variant(mssql.DATETIME2(), "mssql")
    if kind == "bool":
        return sa.Boolean()
    raise ValueError(f"unknown column kind {kind!r}")


def text_limit(column: Column) -> int | None:
    """Return the most characters ``column`` may hold in the warehouse (its DDL size), None if unbounded."""
    if column.kind == "id":
        return column.length or ID_LENGTH
    if column.kind == "text":
        return column.length or TEXT_LENGTH
    return None


DECIMALS: dict[str, tuple[int, int]] = {"money": (18, 2), "fraction": (9, 4)}  # kind → (precision, scale)


def decimal_limit(column: Column) -> tuple[int, int] | None:
    """Return ``(precision, scale)`` of a DECIMAL column (money, fraction), None for other kinds."""
    return DECIMALS.get(column.kind)


def pandas_dtype(column: Column) -> str:
    """Return the pandas dtype name a frame column of this kind holds."""
    return {
        "id": "string",
        "text": "string",
        "long_text": "string",
        "int": "Int64",
        "money": "float64",
        "fraction": "float64",
        "float": "float64",
        "date": "datetime64[s]",
        "datetime": "datetime64[us]",
        "bool": "boolean",
    }[column.kind]


def arrow_type(column: Column) -> pa.DataType:
    """Return the Arrow (and so Parquet) type for this column."""
    return {
        "id": pa.string(),
        "text": pa.string(),
        "long_text": pa.string(),
        "int": pa.int64(),
        "money": pa.float64(),
        "fraction": pa.float64(),
        "float": pa.float64(),
        "date": pa.date32(),
        "datetime": pa.timestamp("us"),
        "bool": pa.bool_(),
    }[column.kind]


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
            if c.kind in ("date", "datetime"):
                s = pd.to_datetime(s).astype(dtype)
            elif c.kind in ("id", "text", "long_text"):
                s = s.astype("string")
            elif dtype == "float64" and s.dtype == object:  # pd.NA/None mixed in: via the nullable dtype
                s = s.astype("Float64").astype(dtype)
            else:
                s = s.astype(dtype)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{table.name}.{c.name}: cannot cast to {dtype}: {exc}") from exc
        out[c.name] = s
    return pd.DataFrame(out, index=frame.index)


def to_arrow(frame: pd.DataFrame, table: Table) -> pa.Table:
    """Return ``frame`` as an Arrow table with the table's exact schema (for Parquet)."""
    conformed = conform(frame, table)
    return pa.Table.from_pandas(conformed, schema=arrow_schema(table), preserve_index=False)
