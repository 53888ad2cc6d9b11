"""Detection of how a CSV file is written: encoding, delimiter, and date formats.

Rules (documented in ``docs/profiles.md``):

* encoding: a UTF-8 byte-order mark means ``utf-8-sig``; else bytes that decode as
  UTF-8 are UTF-8; else bytes that decode as cp1252 are cp1252; else the file is
  unreadable (``StructuralError`` naming the byte offset and line of the first bad byte).
* delimiter: among ``,`` ``;`` tab ``|``, the one that splits the header and the
  first records (quotes respected) into the same number (> 1) of fields, preferring
  more fields; a one-column file falls back to ``,``.
* dates: each column's distinct values are matched against ISO (``2003-01-06``,
  optionally with a time such as ``1996-07-04 00:00:00.000``), ``yyyymmdd`` and
  ``d/m/yyyy`` or ``m/d/yyyy`` (also with ``.`` or ``-``, two-digit years, with or without
  a time; one column may mix them); day-first and month-first are told apart over the
  whole column by a first part above 12 (day-first) or a second part above 12
  (month-first); when no value decides, the profile's ``dayfirst`` (default true)
  is used; the note says which value decided, or that none did.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from salesbi.errors import StructuralError

DELIMITER_CANDIDATES = (",", ";", "\t", "|")
SAMPLE_BYTES = 256 * 1024


def detect_encoding(data: bytes, file: Path) -> str:
    """Return ``utf-8-sig``, ``utf-8`` or ``cp1252`` for ``data``; raise StructuralError if none decodes."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            data[3:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _unreadable(data, file, exc.start + 3) from None
        return "utf-8-sig"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    try:
        data.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        pass
    raise _unreadable(data, file, first_bad)


def check_encoding(data: bytes, encoding: str, file: Path) -> None:
    """Raise StructuralError when ``data`` does not decode with the profile's ``encoding``."""
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _unreadable(data, file, exc.start, declared=encoding) from None


def _unreadable(data: bytes, file: Path, offset: int, declared: str | None = None) -> StructuralError:
    line = data.count(b"\n", 0, offset) + 1
    tried = declared or "UTF-8, UTF-8 with BOM or cp1252"
    return StructuralError(
        f"unreadable encoding: byte 0x{data[offset]:02x} at byte offset {offset} is not valid {tried}",
        file=file,
        line=line,
        hint=(
            "save the file as UTF-8 (e.g. 'Save as CSV UTF-8' in Excel, or iconv -f <encoding> -t utf-8), "
            "or set csv.encoding for this table in the profile"
        ),
    )


def _records(sample: str, delimiter: str, quote: str, limit: int = 30) -> list[list[str]]:
    reader = csv.reader(io.StringIO(sample), delimiter=delimiter, quotechar=quote)
    out: list[list[str]] = []
    try:
        for row in reader:
            if row:
                out.append(row)
            if len(out) >= limit:
                break
    except csv.Error:
        return out
    return out


def detect_delimiter(sample: str, quote: str = '"', truncated: bool = False) -> str:
    """Return the delimiter that splits the sample's records into equal field counts (``,`` if unsure)."""
    best = ","
    best_score = (0, 0)
    for delim in DELIMITER_CANDIDATES:
        rows = _records(sample, delim, quote)
        if truncated and len(rows) > 1:
            rows = rows[:-1]  # the last record may be cut by the sample boundary
        if not rows:
            continue
        width = len(rows[0])
        if width < 2:
            continue
        consistent = sum(1 for r in rows if len(r) == width)
        score = (int(consistent == len(rows)), width)
        if score > best_score:
            best, best_score = delim, score
    return best


# ---------------------------------------------------------------------------------------------- dates


@dataclass(frozen=True)
class DateFormat:
    """A detected date format: a pandas/strptime format (or ``ISO8601``), more formats, and a note.

    ``formats`` holds every format the column needs, tried in order (a column may mix
    ``12/06/2010 10:08`` and ``2/20/11 11:39``); ``format`` is the first.
    """

    format: str
    note: str | None = None
    formats: tuple[str, ...] = ()

    @property
    def all_formats(self) -> tuple[str, ...]:
        """Return every format to try, in order."""
        return self.formats or (self.format,)


_ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SLASHED = re.compile(r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})( \d{1,2}:\d{2}(:\d{2})?)?$")


def _slashed_formats(values: list[str], dayfirst: bool, seps: dict[str, int]) -> tuple[str, ...]:
    """Return the strptime formats the slashed values need: per separator, year width and time."""
    seen: dict[str, None] = {}
    for v in values:
        m = _SLASHED.match(v)
        if not m:
            continue
        sep = m.group(2)
        year = "%Y" if len(m.group(4)) == 4 else "%y"
        fmt = f"%d{sep}%m{sep}{year}" if dayfirst else f"%m{sep}%d{sep}{year}"
        if m.group(5) is not None:
            fmt += " %H:%M:%S" if m.group(6) is not None else " %H:%M"
        seen[fmt] = None
    main_sep = max(seps, key=lambda k: seps[k])
    # the most common separator first, four-digit years before two-digit ones
    return tuple(sorted(seen, key=lambda f: (main_sep not in f, "%y" in f, f)))


def detect_date_format(values: list[str], *, dayfirst_default: bool, column: str) -> DateFormat:
    """Return the date format(s) matching ``values`` (distinct, non-null, trimmed strings).

    Day-first or month-first is decided from the whole column: a value whose first part is above 12
    (``25/12/2010``) proves day-first, one whose second part is above 12 (``2/20/11``) proves
    month-first; the note names the value that decided, or says that none did.
    """
    if not values:
        return DateFormat("ISO8601")
    counts = {"iso": 0, "compact": 0, "slashed": 0}
    first_over_12: str | None = None
    second_over_12: str | None = None
    seps: dict[str, int] = {}
    for v in values:
        if _ISO.match(v):
            counts["iso"] += 1
            continue
        if _COMPACT.match(v):
            counts["compact"] += 1
            continue
        m = _SLASHED.match(v)
        if m:
            counts["slashed"] += 1
            a, b = int(m.group(1)), int(m.group(3))
            if a > 12 and first_over_12 is None:
                first_over_12 = v
            if b > 12 and second_over_12 is None:
                second_over_12 = v
            seps[m.group(2)] = seps.get(m.group(2), 0) + 1
    kind = max(counts, key=lambda k: counts[k])
    if counts[kind] == 0 or kind == "iso":
        return DateFormat("ISO8601")
    if kind == "compact":
        return DateFormat("%Y%m%d")
    if first_over_12 and not second_over_12:
        dayfirst = True
        note = f"{column}: read as day-first (dd/mm/yyyy): {first_over_12!r} has a first part above 12"
    elif second_over_12 and not first_over_12:
        dayfirst = False
        note = f"{column}: read as month-first (mm/dd/yyyy): {second_over_12!r} has a second part above 12"
    else:
        dayfirst = dayfirst_default
        order = "day-first (dd/mm/yyyy)" if dayfirst else "month-first (mm/dd/yyyy)"
        if first_over_12 and second_over_12:
            why = f"values of both orders occur, e.g. {first_over_12!r} and {second_over_12!r}"
        else:
            why = f"no value in the column ({counts['slashed']} distinct) has a part above 12"
        note = (
            f"{column}: dates are ambiguous ({why}); read as {order}; "
            "set dates.<column> or csv.dayfirst in the profile to change this"
        )
    formats = _slashed_formats(values, dayfirst, seps)
    if len(formats) > 1:
        note += f"; formats used: {', '.join(formats)}"
    return DateFormat(formats[0], note, formats)
