"""The derivation vocabulary: computing a canonical column a source lacks, from the row's other columns.

Every derivation returns text (a string Series); typing happens afterwards,
exactly as for columns read from the file. The vocabulary (see docs/profiles.md):

``copy: col`` · ``constant: value`` · ``template: "{a}-{b}"`` · ``concat: [a, b]`` (with ``sep``)
· ``row_number: {within: [cols], start: 1}`` · ``if_present: {column, then, else}``
· ``lookup: {file, key, value, column}``.
"""

from __future__ import annotations

import string
from collections.abc import Callable

import numpy as np
import pandas as pd

from salesbi.reading.profile import Derivation, Scalar

LookupTable = Callable[[str, str, str], pd.Series]  # (file, key, value) -> Series value indexed by key


def scalar_text(value: Scalar) -> str:
    """Return a YAML scalar as the text a CSV cell would hold (``true`` → ``true``, 0 → ``0``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _constant(frame: pd.DataFrame, value: Scalar | None) -> pd.Series:
    if value is None:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    return pd.Series(scalar_text(value), index=frame.index, dtype="string")


def _template(frame: pd.DataFrame, template: str) -> pd.Series:
    out = pd.Series("", index=frame.index, dtype="string")
    missing = np.zeros(len(frame), dtype=bool)
    for literal, field_name, _, _ in string.Formatter().parse(template):
        if literal:
            out = out + literal
        if field_name:
            col = frame[field_name].astype("string")
            missing |= col.isna().to_numpy()
            out = out + col.fillna("")
    return out.mask(missing)


def _concat(frame: pd.DataFrame, columns: list[str], sep: str) -> pd.Series:
    parts = frame[columns].astype("string")
    joined = parts.apply(lambda row: sep.join(v for v in row if isinstance(v, str) and v), axis=1)
    out = (
        pd.Series(joined, index=frame.index, dtype="string") if len(frame) else pd.Series([], dtype="string")
    )
    return out.mask(out == "")


def _row_number(frame: pd.DataFrame, within: list[str], start: int) -> pd.Series:
    if within:
        keys = frame[within].astype("string").fillna("\x00null")
        numbers = keys.groupby(within, sort=False).cumcount().to_numpy() + start
    else:
        numbers = np.arange(start, start + len(frame))
    return pd.Series(numbers.astype(str), index=frame.index, dtype="string")


def derive_column(frame: pd.DataFrame, spec: Derivation, lookup: LookupTable) -> pd.Series:
    """Return the derived text column for ``spec`` computed over ``frame`` (columns must exist)."""
    kind = spec.kind
    if kind == "copy":
        assert spec.copy_ is not None
        return frame[spec.copy_].astype("string")
    if kind == "constant":
        return _constant(frame, spec.constant)
    if kind == "template":
        assert spec.template is not None
        return _template(frame, spec.template)
    if kind == "concat":
        assert spec.concat is not None
        return _concat(frame, spec.concat, spec.sep)
    if kind == "row_number":
        assert spec.row_number is not None
        return _row_number(frame, spec.row_number.within, spec.row_number.start)
    if kind == "if_present":
        ip = spec.if_present
        assert ip is not None
        present = frame[ip.column].notna()
        then = _constant(frame, ip.then)
        other = _constant(frame, ip.else_)
        return then.where(present, other)
    if kind == "lookup":
        lk = spec.lookup
        assert lk is not None
        mapping = lookup(lk.file, lk.key, lk.value)
        keys = frame[lk.column].astype("string")
        return pd.Series(keys.map(mapping), index=frame.index, dtype="string")
    raise ValueError(f"unknown derivation {kind!r}")


def map_values(raw: pd.Series, mapping: dict[str, str]) -> pd.Series:
    """Return ``raw`` with values replaced per ``mapping`` (matched ignoring case); others unchanged."""
    folded = {str(k).casefold(): v for k, v in mapping.items()}
    mapped = raw.str.casefold().map(folded)
    return pd.Series(mapped, index=raw.index, dtype="string").fillna(raw)
