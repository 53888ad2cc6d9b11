"""Row findings ("issues") as frames, and their conversion to ``audit.rejected_rows`` rows.

An issue frame has one row per (record, reason): ``pos`` (0-based row position in
the staged frame), ``column``, ``rule``, ``value`` (text) and ``message``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from salesbi.schema import SOURCE_FILE, SOURCE_LINE
from salesbi.validation.tables import REJECTED_ROW_COLUMNS

ISSUE_COLUMNS = ("pos", "column", "rule", "value", "message")
NULL_TEXT = "<empty>"


def empty_issues() -> pd.DataFrame:
    """Return an issue frame with no rows."""
    return pd.DataFrame(
        {
            "pos": pd.Series([], dtype="int64"),
            "column": pd.Series([], dtype="string"),
            "rule": pd.Series([], dtype="string"),
            "value": pd.Series([], dtype="string"),
            "message": pd.Series([], dtype="string"),
        }
    )


def as_text(values: pd.Series) -> pd.Series:
    """Return ``values`` as strings (dates as YYYY-MM-DD, whole floats without '.0'); nulls stay null."""
    if pd.api.types.is_datetime64_any_dtype(values):
        out = values.dt.strftime("%Y-%m-%d")
    elif pd.api.types.is_float_dtype(values):
        out = values.map(
            lambda v: (
                None if pd.isna(v) else (f"{v:.0f}" if float(v).is_integer() and abs(v) < 1e15 else repr(v))
            )
        )
    else:
        out = values
    return out.astype("string")


def format_message(template: str, value: pd.Series, other: pd.Series | None = None) -> pd.Series:
    """Return ``template`` with ``{value}``/``{other}`` replaced row by row (vectorised)."""
    parts = re.split(r"(\{value\}|\{other\})", template)
    out = pd.Series("", index=value.index, dtype="string")
    for part in parts:
        if part == "{value}":
            out = out + value.fillna(NULL_TEXT)
        elif part == "{other}":
            filler = other if other is not None else pd.Series(NULL_TEXT, index=value.index, dtype="string")
            out = out + filler.fillna(NULL_TEXT)
        elif part:
            out = out + part
    return out


def issues_at(
    frame: pd.DataFrame,
    positions: np.ndarray,
    *,
    rule: str,
    column: str | None,
    template: str,
    other_column: str | None = None,
    values: pd.Series | None = None,
) -> pd.DataFrame:
    """Return issue rows for ``positions`` of ``frame``: value from ``column`` unless ``values`` given."""
    if len(positions) == 0:
        return empty_issues()
    idx = pd.RangeIndex(len(positions))
    if values is not None:
        value = pd.Series(values.to_numpy(), index=idx).astype("string")
    elif column is not None and column in frame.columns:
        value = as_text(frame[column].iloc[positions].reset_index(drop=True))
    else:
        value = pd.Series(pd.NA, index=idx, dtype="string")
    other = None
    if other_column is not None and other_column in frame.columns:
        other = as_text(frame[other_column].iloc[positions].reset_index(drop=True))
    return pd.DataFrame(
        {
            "pos": pd.Series(positions, index=idx, dtype="int64"),
            "column": pd.Series(column, index=idx, dtype="string"),
            "rule": pd.Series(rule, index=idx, dtype="string"),
            "value": value,
            "message": format_message(template, value, other),
        }
    )


def natural_keys(frame: pd.DataFrame, key: Sequence[str], positions: np.ndarray) -> pd.Series:
    """Return ``k1=v1|k2=v2`` strings for the rows at ``positions``."""
    out: pd.Series | None = None
    for k in key:
        part = f"{k}=" + as_text(frame[k].iloc[positions].reset_index(drop=True)).fillna(NULL_TEXT)
        out = part if out is None else out + "|" + part
    assert out is not None
    return out.astype("string")


def to_rejected_rows(
    issues: pd.DataFrame,
    frame: pd.DataFrame,
    *,
    table: str,
    key: Sequence[str],
    run_id: str,
    severity: pd.Series,
) -> pd.DataFrame:
    """Return ``issues`` as ``audit.rejected_rows`` columns (``reject_id`` numbered later)."""
    pos = issues["pos"].to_numpy(dtype="int64")
    n = len(issues)
    idx = pd.RangeIndex(n)

    def lineage(col: str, dtype: str) -> pd.Series:
        if col in frame.columns and n:
            return pd.Series(frame[col].iloc[pos].to_numpy(), index=idx).astype(dtype)
        return pd.Series(pd.NA, index=idx, dtype=dtype)

    return _storable_text(
        {
            "run_id": pd.Series(run_id, index=idx, dtype="string"),
            "reject_id": pd.Series(0, index=idx, dtype="Int64"),
            "table_name": pd.Series(table, index=idx, dtype="string"),
            "source_file": lineage(SOURCE_FILE, "string"),
            "source_line": lineage(SOURCE_LINE, "Int64"),
            "column_name": pd.Series(issues["column"].to_numpy(), index=idx, dtype="string"),
            "rule": pd.Series(issues["rule"].to_numpy(), index=idx, dtype="string"),
            "severity": pd.Series(severity.to_numpy(), index=idx, dtype="string"),
            "value": pd.Series(issues["value"].to_numpy(), index=idx, dtype="string"),
            "natural_key": natural_keys(frame, key, pos) if n else pd.Series([], dtype="string"),
            "message": pd.Series(issues["message"].to_numpy(), index=idx, dtype="string"),
            "raw_line": pd.Series(pd.NA, index=idx, dtype="string"),  # filled at load time
        }
    )


def _storable_text(columns: dict[str, pd.Series]) -> pd.DataFrame:
    """Return the audit frame with NUL shown as ``\\x00`` (PostgreSQL refuses it) and texts cut to size."""
    for name in ("value", "natural_key", "message", "source_file"):
        columns[name] = columns[name].str.replace("\x00", "\\x00", regex=False)
    for name, size in (("natural_key", 400), ("source_file", 400)):
        columns[name] = columns[name].str.slice(0, size)
    return pd.DataFrame(columns, columns=list(REJECTED_ROW_COLUMNS))


def empty_rejected_rows() -> pd.DataFrame:
    """Return an ``audit.rejected_rows`` frame with no rows and the right dtypes."""
    dtypes = {"reject_id": "Int64", "source_line": "Int64"}
    return pd.DataFrame({c: pd.Series([], dtype=dtypes.get(c, "string")) for c in REJECTED_ROW_COLUMNS})
