"""Typing text columns into the contract's kinds, recording each cell that cannot be typed as a fault.

A cell that fails becomes null and yields one fault (rule ``invalid_date``,
``invalid_number`` or ``invalid_integer`` with the raw text); the row is kept.
Numbers that parse but are not finite (``inf``, ``nan``) or carry more decimals
than their DECIMAL scale are faults too (``not_finite``, ``decimal_scale``): never
a silent null, 0 or rounding. Dates with UTC offsets: a ``date`` keeps the
calendar day as written (the offset is dropped, so no day shifts), a ``datetime``
is converted to UTC; a note says which.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from salesbi.reading.detect import DateFormat, detect_date_format
from salesbi.reading.profile import CsvOptions
from salesbi.schema import Column

RULE_DATE = "invalid_date"
RULE_NUMBER = "invalid_number"
RULE_INTEGER = "invalid_integer"
RULE_UNMAPPED = "unmapped_value"
RULE_BOOL = "invalid_boolean"
RULE_NOT_FINITE = "not_finite"
RULE_SCALE = "decimal_scale"
NON_FINITE_WORDS = ("nan", "inf", "infinity")
OFFSET_REGEX = r"(?:Z|[+-]\d{2}:?\d{2})$"

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})


@dataclass
class Typed:
    """A typed column, the positions of cells that failed (with their raw text), and notes."""

    series: pd.Series
    bad: np.ndarray  # bool mask, True where the raw text could not be typed
    rule: str | None = None
    notes: list[str] = field(default_factory=list)
    more: list[tuple[np.ndarray, str]] = field(default_factory=list)  # further (mask, rule) faults


def _as_arrow(s: pd.Series) -> pa.ChunkedArray | pa.Array:
    return pa.array(s.array) if not isinstance(s.array, pd.arrays.ArrowStringArray) else s.array._pa_array


def _no_faults(n: int) -> np.ndarray:
    return np.zeros(n, dtype=bool)


def _numeric(raw: pd.Series, decimal: str) -> pd.Series:
    text = raw.str.replace(",", ".", regex=False) if decimal == "," else raw
    return pd.to_numeric(text.astype(object), errors="coerce")


def type_column(
    raw: pd.Series, column: Column, options: CsvOptions, date_format: str | list[str] | None = None
) -> Typed:
    """Return ``raw`` (a string Series, nulls already applied) typed per ``column.kind``.

    The kind's ``parser`` (from :mod:`salesbi.kinds`) chooses how: text, float, int, date or bool.
    """
    spec = column.spec
    parser = spec.parser
    n = len(raw)
    if parser == "text":
        return Typed(raw.astype("string"), _no_faults(n))
    present = raw.notna().to_numpy()
    if parser == "float":
        return _limit_float(raw, _type_float(raw, present, options), present, spec.decimal)
    if parser == "int":
        return _type_int(raw, present, options)
    if parser == "date":
        return _type_date(raw, present, column, options, date_format)
    if parser == "bool":
        lowered = raw.str.lower()
        values = lowered.map(lambda v: True if v in TRUE_WORDS else (False if v in FALSE_WORDS else None))
        out = pd.Series(values, index=raw.index, dtype="boolean")
        return Typed(out, present & out.isna().to_numpy(), RULE_BOOL)
    raise ValueError(f"column kind {column.kind!r}: no reader for parser {parser!r}")


def _type_float(raw: pd.Series, present: np.ndarray, options: CsvOptions) -> Typed:
    if options.decimal != ",":
        try:
            arr = pc.cast(_as_arrow(raw), pa.float64())
            values = np.asarray(arr.to_numpy(zero_copy_only=False), dtype="float64")
            return Typed(pd.Series(values, index=raw.index, dtype="float64"), _no_faults(len(raw)))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    num = _numeric(raw, options.decimal or ".")
    bad = present & num.isna().to_numpy()
    return Typed(num.astype("float64"), bad, RULE_NUMBER)


def _limit_float(raw: pd.Series, typed: Typed, present: np.ndarray, decimal: tuple[int, int] | None) -> Typed:
    """Return ``typed`` with non-finite values, and values finer than the DECIMAL scale, as faults."""
    values = typed.series.to_numpy(dtype="float64", na_value=np.nan)
    words = present & typed.bad  # "NaN" parses to a null and looks unreadable: it is a non-finite number
    if words.any():
        folded = raw.str.strip().str.lower().str.lstrip("+-")
        words &= folded.isin(NON_FINITE_WORDS).fillna(False).to_numpy(dtype=bool)
        typed.bad = typed.bad & ~words
    nonfinite = present & ~typed.bad & ~np.isfinite(values)
    masks = nonfinite
    if nonfinite.any():
        typed.more.append((nonfinite, RULE_NOT_FINITE))
    if decimal is not None:
        factor = 10.0 ** decimal[1]
        with np.errstate(invalid="ignore", over="ignore"):
            scaled = values * factor
            finer = np.abs(scaled - np.round(scaled)) > 1e-6 * np.maximum(1.0, np.abs(scaled)) * 1e-3
        finer &= present & ~typed.bad & ~nonfinite
        if finer.any():
            typed.more.append((finer, RULE_SCALE))
            masks = masks | finer
    if masks.any():
        typed.series = typed.series.mask(masks)
    return typed


def _type_int(raw: pd.Series, present: np.ndarray, options: CsvOptions) -> Typed:
    try:
        arr = pc.cast(_as_arrow(raw), pa.int64())
        return Typed(
            pd.Series(pd.array(arr, dtype=pd.ArrowDtype(pa.int64())), index=raw.index).astype("Int64"),
            _no_faults(len(raw)),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    num = _numeric(raw, options.decimal or ".")
    values = num.to_numpy(dtype="float64", na_value=np.nan)
    integral = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2**53)
    bad = present & ~integral
    values = np.where(integral, values, np.nan)
    out = pd.Series(values, index=raw.index).astype("Int64")
    return Typed(out, bad, RULE_INTEGER)


def _type_date(
    raw: pd.Series,
    present: np.ndarray,
    column: Column,
    options: CsvOptions,
    date_format: str | list[str] | None,
) -> Typed:
    """Type dates; several formats (from the profile's list or detected) are tried in order per cell.

    Each distinct text is parsed once and the rows take their text's date (a date column of a
    million rows holds a few thousand distinct days): the same values as parsing every cell, since
    parsing with a given format is a function of the text alone, without a Python string per row
    (issue 18 memory). Format detection sees the distinct values, as before; counts in the notes
    are of rows. ``raw`` may also be categorical: codes of the distinct texts, each of them present,
    in order of first appearance (the block reader's ``_joined_codes``).
    """
    if isinstance(raw.dtype, pd.CategoricalDtype):  # the block reader's codes of the distinct texts
        codes = raw.cat.codes.to_numpy(dtype=np.intp)
        distinct_text = pd.Series(raw.cat.categories, dtype="string")
    else:
        codes, uniques = pd.factorize(raw, use_na_sentinel=True)
        distinct_text = pd.Series(uniques, dtype=raw.dtype)
    rows_per_text = np.bincount(codes[codes >= 0], minlength=len(distinct_text))
    typed, notes = _type_distinct_dates(distinct_text, rows_per_text, column, options, date_format)
    out = pd.Series(typed.array.take(codes, allow_fill=True), index=raw.index, name=raw.name)
    bad = present & out.isna().to_numpy()
    return Typed(out, bad, RULE_DATE, notes)


def _type_distinct_dates(
    raw: pd.Series,
    rows_per_text: np.ndarray,
    column: Column,
    options: CsvOptions,
    date_format: str | list[str] | None,
) -> tuple[pd.Series, list[str]]:
    """Return the dates of distinct texts ``raw`` (no nulls), typed per ``column``, and the notes.

    ``rows_per_text``: how many rows hold each text (for the counts the notes give).
    """
    present = np.ones(len(raw), dtype=bool)
    notes: list[str] = []
    chosen = date_format or options.date_format
    formats: tuple[str, ...]
    if chosen in (None, "auto"):
        distinct = [str(v) for v in raw.dropna().unique()]
        detected: DateFormat = detect_date_format(
            distinct, dayfirst_default=bool(options.dayfirst), column=column.name
        )
        formats = detected.all_formats
        if detected.note:
            notes.append(detected.note)
    elif isinstance(chosen, list):
        formats = tuple(chosen)
    else:
        formats = (str(chosen),)
    text = raw
    utc = False
    if "ISO8601" in formats:
        with_offset = raw.str.contains(OFFSET_REGEX, regex=True).fillna(False).to_numpy(dtype=bool)
        if with_offset.any():
            if column.spec.date_only:
                text = raw.str.replace(OFFSET_REGEX, "", regex=True)
                notes.append(
                    f"{column.name}: {int(rows_per_text[with_offset].sum())} value(s) carry a UTC offset; "
                    "a date keeps "
                    "the calendar day as written (the offset is dropped, no day is shifted)"
                )
            else:
                utc = True
                notes.append(
                    f"{column.name}: values carry UTC offsets; every value is converted to UTC "
                    "(values without an offset are taken as UTC)"
                )
    text = text.astype(object)
    parsed = pd.to_datetime(text, format=formats[0], errors="coerce", utc=utc)
    for fmt in formats[1:]:
        todo = parsed.isna().to_numpy() & present
        if not todo.any():
            break
        parsed = parsed.mask(todo, pd.to_datetime(text[todo], format=fmt, errors="coerce", utc=utc))
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    if column.spec.date_only:
        parsed = parsed.dt.floor("D")
    return parsed.astype(column.spec.pandas_dtype), notes
