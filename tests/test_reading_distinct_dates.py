"""Dates typed once per distinct text equal dates typed cell by cell (values, faults, notes).

``salesbi.reading.coerce._type_date`` parses each distinct text of a date column once and lets
the rows take their text's date (issue 18 memory: no Python string per row). The cell-by-cell
typing it replaced is kept here as the reference: several formats tried in order, detected
formats (day-first, two-digit years), UTC offsets on dates and on timestamps, nulls and
unreadable cells, an empty column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesbi.reading import coerce
from salesbi.reading.detect import detect_date_format
from salesbi.reading.profile import CsvOptions
from salesbi.schema import Column


def _cell_by_cell(
    raw: pd.Series, column: Column, options: CsvOptions, date_format: str | list[str] | None
) -> coerce.Typed:
    """The typing before: every cell parsed (as ``_type_date`` was until issue 18's compact keys)."""
    present = raw.notna().to_numpy()
    notes: list[str] = []
    chosen = date_format or options.date_format
    if chosen in (None, "auto"):
        detected = detect_date_format(
            [str(v) for v in raw.dropna().unique()],
            dayfirst_default=bool(options.dayfirst),
            column=column.name,
        )
        formats = detected.all_formats
        if detected.note:
            notes.append(detected.note)
    elif isinstance(chosen, list):
        formats = tuple(chosen)
    else:
        formats = (str(chosen),)
    text, utc = raw, False
    if "ISO8601" in formats:
        with_offset = raw.str.contains(coerce.OFFSET_REGEX, regex=True).fillna(False).to_numpy(dtype=bool)
        if with_offset.any():
            if column.spec.date_only:
                text = raw.str.replace(coerce.OFFSET_REGEX, "", regex=True)
                notes.append(
                    f"{column.name}: {int(with_offset.sum())} value(s) carry a UTC offset; a date keeps "
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
    out = parsed.astype(column.spec.pandas_dtype)
    return coerce.Typed(out, present & out.isna().to_numpy(), coerce.RULE_DATE, notes)


CASES = [
    (["2024-01-31", "2024-02-01", None, "2024-01-31", "not a date", "2024-02-30"], None),
    (["31/01/2024", "01/02/2024", "31/01/2024", None, "13/13/2024"], None),
    (["1/2/24", "2/20/11 11:39", "12/01/2010 08:26", "1/2/24"], None),
    (["2024-01-31T23:30:00+02:00", "2024-01-31", "2024-02-01T00:10:00-05:00", None], None),
    (["2024-01-31", "31.01.2024", "2024-01-31", "x"], ["%Y-%m-%d", "%d.%m.%Y"]),
    (["20240131", "20240201", None], "%Y%m%d"),
    ([None, None, None], None),
    ([], None),
]


@pytest.mark.parametrize("kind", ["date", "datetime"])
@pytest.mark.parametrize(("values", "date_format"), CASES)
def test_distinct_dates_equal_cell_by_cell(
    kind: str, values: list[str | None], date_format: str | list[str] | None
) -> None:
    column = Column("order_date", kind)
    raw = pd.Series(values, dtype="string", index=np.arange(10, 10 + len(values)), name="order_date")
    options = CsvOptions(date_format="auto")
    got = coerce.type_column(raw, column, options, date_format)
    want = _cell_by_cell(raw, column, options, date_format)
    pd.testing.assert_series_equal(got.series, want.series)
    assert got.bad.tolist() == want.bad.tolist()
    assert got.rule == want.rule and got.notes == want.notes


def test_offsets_are_counted_per_row() -> None:
    raw = pd.Series(["2024-01-31T10:00:00+02:00"] * 3 + ["2024-02-01"], dtype="string")
    typed = coerce.type_column(raw, Column("order_date", "date"), CsvOptions(date_format="auto"))
    assert any(n.startswith("order_date: 3 value(s) carry a UTC offset") for n in typed.notes)
