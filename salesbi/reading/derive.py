"""The derivation vocabulary: computing a canonical column a source lacks, from the row's other columns.

Every derivation returns text (a string Series); typing happens afterwards,
exactly as for columns read from the file. The vocabulary (see docs/profiles.md):

``copy: col`` · ``constant: value`` · ``template: "{a}-{b}"`` · ``concat: [a, b]`` (with ``sep``)
· ``row_number: {within: [cols], start: 1}`` · ``if_present: {column, then, else}``
· ``lookup: {file, key, value, column}`` · ``coalesce: [col, {derivation}, ...]``
· ``when: {cases: [{column, prefix|regex|equals|empty|below, then}], else | else_copy | else_template}``
· ``abs: col`` · ``replace: {column, pattern, with}``.

A lookup whose key is not found keeps the source value and says so in a note
(never a silent null that later reads as "required but empty").
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from salesbi.reading.profile import Case, Derivation, Scalar, When

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


@dataclass
class Derived:
    """A derived text column and the notes its derivation wrote (e.g. lookups that failed)."""

    series: pd.Series
    notes: list[str] = field(default_factory=list)


def _case_mask(frame: pd.DataFrame, case: Case) -> np.ndarray:
    """Return where ``case``'s condition holds (null cells never match, except ``empty: true``)."""
    col = frame[case.column].astype("string")
    if case.empty is not None:
        return (col.isna() == case.empty).to_numpy(dtype=bool)
    if case.prefix is not None:
        hit = col.str.startswith(case.prefix)
    elif case.regex is not None:
        hit = col.str.contains(case.regex, regex=True)
    elif case.equals is not None:
        wanted = case.equals if isinstance(case.equals, list) else [case.equals]
        hit = col.str.casefold().isin([scalar_text(w).casefold() for w in wanted])
    else:
        assert case.below is not None
        number = pd.to_numeric(col.astype(object), errors="coerce")
        hit = pd.Series(number < case.below, index=col.index)
    return hit.fillna(False).to_numpy(dtype=bool)


def _when(frame: pd.DataFrame, when: When) -> pd.Series:
    if when.else_copy is not None:
        out = frame[when.else_copy].astype("string").copy()
    elif when.else_template is not None:
        out = _template(frame, when.else_template)
    else:
        out = _constant(frame, when.else_)
    decided = np.zeros(len(frame), dtype=bool)
    for case in when.cases:
        hit = _case_mask(frame, case) & ~decided
        out = out.mask(hit, scalar_text(case.then))
        decided |= hit
    return out


def _abs(frame: pd.DataFrame, column: str) -> pd.Series:
    """Return the column's text with a leading minus sign removed (``-12`` → ``12``)."""
    return frame[column].astype("string").str.replace(r"^\s*-\s*", "", regex=True)


def derive(frame: pd.DataFrame, spec: Derivation, lookup: LookupTable, target: str = "") -> Derived:
    """Return the derived column for ``spec`` with the notes it wrote (``target`` names it in notes)."""
    if spec.coalesce is not None:
        out = pd.Series(pd.NA, index=frame.index, dtype="string")
        notes: list[str] = []
        for part in spec.coalesce:
            if isinstance(part, str):
                values = frame[part].astype("string")
            else:
                sub = derive(frame, part, lookup, target)
                values, notes = sub.series, notes + sub.notes
            out = out.fillna(values)
        return Derived(out, notes)
    if spec.lookup is not None:
        lk = spec.lookup
        mapping = lookup(lk.file, lk.key, lk.value)
        keys = frame[lk.column].astype("string")
        found = pd.Series(keys.map(mapping), index=frame.index, dtype="string")
        failed = keys.notna() & ~keys.isin(mapping.index)
        notes = []
        if failed.any():
            missing = keys[failed].unique()
            examples = ", ".join(repr(str(v)) for v in missing[:3])
            notes.append(
                f"{target}: {int(failed.sum())} value(s) of {lk.column} ({len(missing)} distinct, e.g. "
                f"{examples}) not found in {lk.file} column {lk.key}; the source value was kept"
            )
            found = found.mask(failed, keys)
        return Derived(found, notes)
    return Derived(derive_column(frame, spec, lookup))


def derive_column(frame: pd.DataFrame, spec: Derivation, lookup: LookupTable) -> pd.Series:
    """Return the derived text column for ``spec`` computed over ``frame`` (columns must exist)."""
    kind = spec.kind
    if kind in ("coalesce", "lookup"):
        return derive(frame, spec, lookup).series
    if kind == "when":
        assert spec.when is not None
        return _when(frame, spec.when)
    if kind == "abs":
        assert spec.abs_ is not None
        return _abs(frame, spec.abs_)
    if kind == "replace":
        rp = spec.replace
        assert rp is not None
        out = frame[rp.column].astype("string").str.replace(rp.pattern, rp.with_, regex=True)
        return out.mask(out == "")
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
    raise ValueError(f"unknown derivation {kind!r}")


def map_values(raw: pd.Series, mapping: dict[str, str]) -> pd.Series:
    """Return ``raw`` with values replaced per ``mapping`` (matched ignoring case); others unchanged."""
    folded = {str(k).casefold(): v for k, v in mapping.items()}
    mapped = raw.str.casefold().map(folded)
    return pd.Series(mapped, index=raw.index, dtype="string").fillna(raw)
