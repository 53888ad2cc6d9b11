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
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from salesbi.errors import StructuralError

DELIMITER_CANDIDATES = (",", ";", "\t", "|")
SAMPLE_BYTES = 256 * 1024


def _unreadable(data: bytes, file: Path, offset: int, declared: str | None = None) -> StructuralError:
    line = data.count(b"\n", 0, offset) + 1
    tried = declared or "UTF-8 or any of the fallback code pages"
    return StructuralError(
        f"unreadable encoding: byte 0x{data[offset]:02x} at byte offset {offset} is not valid {tried}",
        file=file,
        line=line,
        hint=(
            "save the file as UTF-8 (e.g. 'Save as CSV UTF-8' in Excel, or iconv -f <encoding> -t utf-8), "
            "or set csv.encoding for this table in the profile"
        ),
    )


# ------------------------------------------------------------------------------------------- encoding

BOMS: tuple[tuple[bytes, str, str], ...] = (
    # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "utf-32-le", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32-be", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8", "utf-8-sig"),
    (b"\xff\xfe", "utf-16-le", "utf-16"),
    (b"\xfe\xff", "utf-16-be", "utf-16"),
)
# single-byte code pages tried for bytes that are not UTF-8, in the order that wins a tie
FALLBACKS = ("cp1252", "iso8859_2", "cp1250", "iso8859_15")
LATIN_FAMILY = frozenset(  # Latin-script code pages: they compete on plausibility, not on trust
    {
        "cp1252",
        "cp1250",
        "cp1254",
        "cp1257",
        "cp437",
        "cp775",
        "cp850",
        "cp852",
        "cp858",
        "latin_1",
        "iso8859_1",
        "iso8859_2",
        "iso8859_3",
        "iso8859_4",
        "iso8859_9",
        "iso8859_10",
        "iso8859_13",
        "iso8859_14",
        "iso8859_15",
        "iso8859_16",
        "mac_roman",
        "mac_latin2",
    }
)


@dataclass
class Decoded:
    """A file's text, the encoding it was read with, and what the reader should be told about it."""

    text: str
    encoding: str  # utf-8, utf-8-sig, utf-16, utf-32, a code page, or "utf-8+<code page>" (mixed)
    notes: list[str] = field(default_factory=list)
    fallback_lines: list[int] = field(default_factory=list)  # 1-based lines not read as UTF-8


def _script(ch: str) -> str:
    """Return the script of a letter: the first word of its Unicode name (LATIN, CYRILLIC, ...)."""
    return "LATIN" if ch.isascii() else unicodedata.name(ch, "?").split(" ")[0]


def _implausibility(text: str) -> int:
    """Return how unlike real text ``text`` looks.

    Counted: C1 control characters (heavily), symbols glued to letters (``Pøíli¹``), and letters of
    two scripts within one word (``Zﮰrich``).
    """
    score = 0
    prev_letter = False
    pending_symbol = False
    prev_script = ""
    for ch in text:
        code = ord(ch)
        if 0x80 <= code <= 0x9F:
            score += 10
            prev_letter = pending_symbol = False
            prev_script = ""
            continue
        if ch.isalpha():
            script = _script(ch)
            if pending_symbol or (prev_script and script != prev_script):
                score += 1
            pending_symbol = False
            prev_letter = True
            prev_script = script
            continue
        if code >= 128 and unicodedata.category(ch)[0] != "Z":
            if prev_letter:
                score += 1
                pending_symbol = False
            else:
                pending_symbol = True
        else:
            pending_symbol = False
        prev_letter = False
        prev_script = ""
    return score


def _evidence(data: bytes) -> bytes:
    """Return the distinct runs of non-ASCII bytes with one byte of context each side."""
    runs = set(re.findall(rb".?[\x80-\xff]+.?", data))
    return b"\n".join(sorted(runs))


def guess_single_byte(data: bytes) -> tuple[str, str]:
    """Return (encoding, evidence) for bytes that are not UTF-8.

    charset-normalizer proposes an encoding and a confidence; the Western and Central
    European code pages (and its proposal) are then scored on the decoded text — C1
    control characters, symbols glued to letters (``Pøíli¹``) and ASCII bytes swallowed by
    multi-byte characters count against — and
    the least implausible wins; ties go to charset-normalizer's proposal when it is not
    a Latin code page, else to the order cp1252, ISO-8859-2, cp1250, ISO-8859-15.
    """
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    proposal = best.encoding if best is not None else None
    evidence = (
        f"charset-normalizer proposed {proposal} ({100 - best.percent_chaos:.0f}% clean, "
        f"{best.percent_coherence:.0f}% language coherence)"
        if best is not None
        else "charset-normalizer had no proposal"
    )
    order: list[str] = []
    if proposal and proposal not in LATIN_FAMILY:
        order.append(proposal)
    order.extend(FALLBACKS)
    if proposal and proposal not in order:
        order.append(proposal)
    scored: list[tuple[int, int, str]] = []
    sample = _evidence(data)
    ascii_bytes = sum(1 for b in sample if b < 128)
    for i, enc in enumerate(order):
        try:
            text = sample.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        # a multi-byte code page that swallows ASCII bytes into its characters is implausible too
        swallowed = ascii_bytes - sum(1 for ch in text if ord(ch) < 128)
        scored.append((_implausibility(text) + 20 * max(swallowed, 0), i, enc))
    if not scored:
        return "", evidence
    scored.sort()
    return scored[0][2], evidence


def _line_numbers(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:10])
    return shown + (f" ... ({len(numbers)} lines)" if len(numbers) > 10 else "")


def _looks_utf16(data: bytes) -> str | None:
    """Return utf-16-le/-be for BOM-less UTF-16 text (a NUL in every other byte), else None."""
    head = data[:4096]
    if len(head) < 4 or len(head) % 2:
        return None
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if odd > 0.4 * len(head) / 2 and even == 0:
        return "utf-16-le"
    if even > 0.4 * len(head) / 2 and odd == 0:
        return "utf-16-be"
    return None


def decode_file(data: bytes, file: Path, declared: str | None = None) -> Decoded:
    """Return the text of ``data`` decoded from evidence (or with the profile's ``declared`` encoding).

    Order: a byte-order mark (UTF-8, UTF-16, UTF-32); BOM-less UTF-16; strict UTF-8;
    otherwise line by line — lines valid as UTF-8 stay UTF-8, the others are read with
    the code page :func:`guess_single_byte` picks from them, and a note lists those lines.
    Raises StructuralError when no encoding decodes the bytes.
    """
    name = file.name
    if declared not in (None, "auto"):
        assert declared is not None
        body = data[3:] if declared == "utf-8-sig" and data.startswith(b"\xef\xbb\xbf") else data
        try:
            text = body.decode("utf-8" if declared == "utf-8-sig" else declared)
        except UnicodeDecodeError as exc:
            raise _unreadable(body, file, exc.start, declared=declared) from None
        except LookupError:
            raise StructuralError(
                f"unknown encoding {declared!r}",
                file=file,
                hint="set csv.encoding to a Python codec name (utf-8, cp1252, iso8859_2, utf-16 ...) or auto",
            ) from None
        return Decoded(text.removeprefix("\ufeff"), declared)
    for bom, codec, label in BOMS:
        if data.startswith(bom):
            try:
                return Decoded(data[len(bom) :].decode(codec), label)
            except UnicodeDecodeError as exc:
                raise _unreadable(data, file, exc.start + len(bom), declared=label) from None
    utf16 = _looks_utf16(data)
    if utf16 is not None:
        try:
            text = data.decode(utf16)
            return Decoded(text, "utf-16", [f"{name}: UTF-16 without a byte-order mark; read as {utf16}"])
        except UnicodeDecodeError:
            pass
    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    lines = data.splitlines(keepends=True)
    good: list[str | None] = []
    bad_bytes: list[bytes] = []
    utf8_non_ascii = 0
    for line in lines:
        try:
            text = line.decode("utf-8")
            good.append(text)
            utf8_non_ascii += not line.isascii()
        except UnicodeDecodeError:
            good.append(None)
            bad_bytes.append(line)
    fallback, evidence = guess_single_byte(b"".join(bad_bytes))
    if not fallback:
        raise _unreadable(data, file, first_bad)
    bad_lines = [i + 1 for i, t in enumerate(good) if t is None]
    if utf8_non_ascii == 0:
        return Decoded(
            data.decode(fallback),
            fallback,
            [f"{name}: not valid UTF-8; read as {fallback} ({evidence})"],
            bad_lines,
        )
    text = "".join(t if t is not None else line.decode(fallback) for t, line in zip(good, lines, strict=True))
    return Decoded(
        text,
        f"utf-8+{fallback}",
        [
            f"{name}: mixed encodings — most lines are UTF-8, lines {_line_numbers(bad_lines)} are not "
            f"and were read as {fallback} ({evidence}); check those lines"
        ],
        bad_lines,
    )


def detect_encoding(data: bytes, file: Path) -> str:
    """Return the encoding :func:`decode_file` reads ``data`` with (StructuralError if none)."""
    return decode_file(data, file).encoding


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
