"""Reading one CSV file into trimmed text columns plus the physical line where each record starts.

Every physical line is accounted for: a line is the header, starts a record,
continues a record (a quoted value holding a line break), is skipped (blank, or
nothing but delimiters and whitespace), or is a *broken* record — a line with
an unclosed quote or with more or fewer fields than the header. A broken record
becomes a row whose cells are all null plus a line fault (``unclosed_quote`` or
``field_count``) that validation rejects, so it is counted and quarantined, never
silently dropped or glued to its neighbours.

An unclosed quote makes a CSV parser swallow every following line into one value.
When a record spans several lines and every line after its first is a complete
record on its own (or blank), the quote was stray: the first line is a broken
record and the following lines are read one by one. Otherwise the record is a
legitimate quoted line break; it is loaded and listed with rule
``record_spans_lines`` (a warning by default).

Fast path: pyarrow's CSV reader, used when every record is one physical line
(cheaply checked by counting newlines against records, and quote characters for
parity). Everything else goes through Python's ``csv`` module, line-exact.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from salesbi.errors import StructuralError
from salesbi.reading.detect import SAMPLE_BYTES, decode_file, detect_delimiter
from salesbi.reading.profile import CsvOptions

STRING_DTYPE = pd.StringDtype()

RULE_UNCLOSED_QUOTE = "unclosed_quote"
RULE_FIELD_COUNT = "field_count"
RULE_SPANS_LINES = "record_spans_lines"
LINE_RULES = (RULE_UNCLOSED_QUOTE, RULE_FIELD_COUNT, RULE_SPANS_LINES)
BROKEN_RULES = (RULE_UNCLOSED_QUOTE, RULE_FIELD_COUNT)  # the record could not be split into its cells
MAX_LINE_TEXT = 2000  # characters of a broken line kept as the fault's value


@dataclass
class RawFile:
    """One file read as text: trimmed string columns (nulls applied), record start lines and line accounting.

    ``data_lines`` (physical lines after the header) = ``rows`` + ``skipped``, where ``skipped``
    counts blank/padding lines and the continuation lines of records spanning several lines.
    ``line_faults`` (line, rule, value) lists broken records (their row is all-null, ``broken``
    True) and records spanning lines.
    """

    path: Path
    header: list[str]
    frame: pd.DataFrame  # source column names → string Series; plus nothing else
    lines: np.ndarray  # int64, 1-based physical line where each record starts
    encoding: str
    delimiter: str
    notes: list[str] = field(default_factory=list)
    data_lines: int = 0
    skipped: int = 0
    broken: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    line_faults: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Return the number of data records (broken ones included)."""
        return len(self.frame)


def _dedupe(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for h in header:
        name = h.strip()
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out


def read_bytes(path: Path) -> bytes:
    """Return the file's bytes (StructuralError when it cannot be opened)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StructuralError(
            f"cannot open file: {exc.strerror}", file=path, hint="check the path and the file permissions"
        ) from None


def count_lines(data: bytes) -> int:
    """Return the number of physical lines in ``data`` (LF, CRLF or CR ends; a final end opens none)."""
    if not data:
        return 0
    ends = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    return ends if data.endswith((b"\n", b"\r")) else ends + 1


@dataclass
class _Parsed:
    """What a parser made of a file's lines."""

    table: pa.Table
    lines: np.ndarray
    broken: np.ndarray
    skipped: int
    header_lines: int = 1
    line_faults: list[tuple[int, str, str]] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)  # lines read on their own after a stray quote
    repaired: list[int] = field(default_factory=list)  # lines whose unquoted delimiters were merged back


def read_csv_file(path: Path, options: CsvOptions) -> RawFile:
    """Return the file's records as trimmed text columns with exact start lines and line accounting.

    Raises StructuralError for an unreadable encoding, an empty file (no header), or a file
    where most records do not split into the header's fields (wrong delimiter or quote).
    """
    data = read_bytes(path)
    decoded = decode_file(data, path, options.encoding)
    text = decoded.text
    if not text.strip():
        raise StructuralError(
            "empty file: no header line",
            file=path,
            hint="export the table again with its header row, or point the profile at the right file",
        )
    quote = options.quote or '"'
    sample = text[:SAMPLE_BYTES]
    if options.delimiter in (None, "auto"):
        delimiter = detect_delimiter(sample, quote, truncated=len(text) > SAMPLE_BYTES)
    else:
        delimiter = options.delimiter
    header_rows = next(
        iter(
            csv.reader(io.StringIO(sample.lstrip("\r\n"), newline=""), delimiter=delimiter, quotechar=quote)
        ),
        [],
    )
    header = _dedupe(header_rows)
    notes: list[str] = list(decoded.notes)
    notes.extend(
        f"{path.name}: the header names {raw.strip()!r} more than once; column {i + 1} is read as {name!r} "
        f"(the first {raw.strip()!r} is the one used)"
        for i, (raw, name) in enumerate(zip(header_rows, header, strict=True))
        if name != raw.strip()
    )
    utf8 = data if decoded.encoding == "utf-8" else text.encode("utf-8")
    total = count_lines(utf8)
    parsed = _read_fast(utf8, header, delimiter, quote)
    if parsed is None:
        parsed = _read_slow(text, header, delimiter, quote, path, options.repair_ragged is not False)
    if parsed.repaired:
        notes.append(
            f"{path.name}: {len(parsed.repaired)} record(s) had an unquoted {delimiter!r} inside a value "
            f"(lines {_shown(parsed.repaired)}); the parts were joined back "
            "(set csv.repair_ragged: false to refuse such files)"
        )
    if parsed.recovered:
        notes.append(
            f"{path.name}: a quote left open swallowed the following lines; lines {_shown(parsed.recovered)} "
            "were read on their own (the line with the open quote is rejected)"
        )
    if parsed.skipped:
        notes.append(f"{path.name}: {parsed.skipped} line(s) skipped (blank, padding or continuation lines)")
    nulls = list(options.null_tokens if options.null_tokens is not None else ["", "NULL"])
    frame = _clean(parsed.table, nulls)
    data_lines = max(total - parsed.header_lines, 0)
    if data_lines != len(frame) + parsed.skipped:
        raise AssertionError(
            f"{path}: {data_lines} data lines != {len(frame)} records + {parsed.skipped} skipped; "
            "lines were lost by the reader — this is a bug, please report it"
        )
    return RawFile(
        path=path,
        header=header,
        frame=frame,
        lines=parsed.lines,
        encoding=decoded.encoding,
        delimiter=delimiter,
        notes=notes,
        data_lines=data_lines,
        skipped=parsed.skipped,
        broken=parsed.broken,
        line_faults=parsed.line_faults,
    )


def _shown(lines: list[int]) -> str:
    return ", ".join(str(n) for n in lines[:10]) + (f" ... ({len(lines)} lines)" if len(lines) > 10 else "")


def _blank_rows(table: pa.Table) -> np.ndarray:
    """Return a mask of the rows whose every cell is empty or whitespace (padding lines)."""
    mask = np.ones(table.num_rows, dtype=bool)
    for col in table.columns:
        empty = pc.equal(pc.utf8_trim_whitespace(col), "")
        mask &= np.asarray(empty.to_numpy(zero_copy_only=False), dtype=bool)
        if not mask.any():
            break
    return mask


def _read_fast(data: bytes, header: list[str], delimiter: str, quote: str) -> _Parsed | None:
    """Return the parse via pyarrow, or None when the slow path is needed."""
    stripped = data.rstrip(b"\r\n")
    trailing = count_lines(data) - count_lines(stripped)  # blank lines at the end
    data = stripped + b"\n"
    if (
        data.startswith((b"\n", b"\r"))
        or b"\n\n" in data
        or b"\n\r\n" in data
        or data.count(b"\r") != data.count(b"\r\n")
        or data.count(quote.encode("utf-8")) % 2
    ):
        return None
    names = [f"f{i}" for i in range(len(header))]
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=16 << 20),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, quote_char=quote, double_quote=True, newlines_in_values=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
    except pa.ArrowInvalid:
        return None
    if table.num_rows + 1 != count_lines(data):
        return None
    table = table.rename_columns(header)
    lines = np.arange(2, table.num_rows + 2, dtype=np.int64)
    blank = _blank_rows(table)
    skipped = trailing
    if blank.any():
        keep = ~blank
        table = table.filter(pa.array(keep))
        lines = lines[keep]
        skipped += int(blank.sum())
    return _Parsed(table, lines, np.zeros(len(lines), dtype=bool), skipped)


def merge_unquoted_delimiters(row: list[str], width: int, delimiter: str) -> list[str] | None:
    """Return ``row`` with its extra fields merged back, or None when the repair is not unambiguous.

    An unquoted delimiter inside a value (``24, place Kléber``) splits it in two; the
    second part then starts with a space. When exactly as many fields start with
    whitespace as there are extra fields, each is joined to the field before it.
    """
    extra = len(row) - width
    starts = [i for i in range(1, len(row)) if row[i][:1].isspace()]
    if len(starts) != extra:
        return None
    out: list[str] = []
    for i, value in enumerate(row):
        if i in starts:
            out[-1] = out[-1] + delimiter + value
        else:
            out.append(value)
    return out


class _SlowReader:
    """The line-exact parser (Python's csv module) with recovery from stray quotes."""

    def __init__(self, text: str, header: list[str], delimiter: str, quote: str, repair: bool) -> None:
        self.physical = io.StringIO(text, newline="").readlines()
        self.width = len(header)
        self.delimiter = delimiter
        self.quote = quote
        self.repair = repair
        self.rows: list[list[str] | None] = []
        self.lines: list[int] = []
        self.parsed = _Parsed(pa.table({}), np.empty(0, dtype=np.int64), np.empty(0, dtype=bool), 0, 0)

    def fit(self, row: list[str], line: int) -> list[str] | None:
        """Return ``row`` with the header's width (merging unquoted delimiters), or None."""
        if len(row) > self.width and self.repair:
            fixed = merge_unquoted_delimiters(row, self.width, self.delimiter)
            if fixed is not None:
                self.parsed.repaired.append(line)
                return fixed
        return row if len(row) == self.width else None

    def alone(self, text: str) -> list[str] | None:
        """Return the one physical line ``text`` as a complete record of the header's width, or None."""
        if text.count(self.quote) % 2:
            return None
        try:
            rows = list(csv.reader([text], delimiter=self.delimiter, quotechar=self.quote, strict=True))
        except csv.Error:
            return None
        if len(rows) != 1:
            return None
        row = rows[0]
        if len(row) > self.width and self.repair:
            return merge_unquoted_delimiters(row, self.width, self.delimiter)
        return row if len(row) == self.width else None

    def blank(self, text: str) -> bool:
        """Return True for a line of nothing but whitespace and delimiters."""
        return not text.replace(self.delimiter, "").strip()

    def add(self, row: list[str] | None, line: int, rule: str | None = None) -> None:
        """Record a record (None: a broken one, with ``rule``) starting on ``line``."""
        self.rows.append(row)
        self.lines.append(line)
        if row is None and rule is not None:
            text = self.physical[line - 1].rstrip("\r\n")
            self.parsed.line_faults.append((line, rule, text[:MAX_LINE_TEXT]))

    def broken_line(self, line: int) -> None:
        """Record physical ``line`` as a broken record, naming why."""
        text = self.physical[line - 1]
        try:
            list(csv.reader([text], delimiter=self.delimiter, quotechar=self.quote, strict=True))
            rule = RULE_FIELD_COUNT if text.count(self.quote) % 2 == 0 else RULE_UNCLOSED_QUOTE
        except csv.Error:
            rule = RULE_UNCLOSED_QUOTE
        self.add(None, line, rule)

    def span(self, row: list[str], start: int, end: int) -> None:
        """Handle a record that the parser read from lines ``start``..``end``."""
        rest = [self.physical[i] for i in range(start, end)]  # lines start+1 .. end
        alone = [None if self.blank(t) else self.alone(t) for t in rest]
        filled = sum(1 for t in rest if not self.blank(t))
        complete = sum(1 for a in alone if a is not None)
        stray = complete >= 1 and 2 * complete >= filled  # most following lines are records on their own
        fitted = self.fit(row, start) if not stray else None
        if fitted is not None:  # a quoted line break: one record over several lines
            self.add(fitted, start)
            self.parsed.skipped += end - start
            self.parsed.line_faults.append((start, RULE_SPANS_LINES, f"lines {start}-{end}"))
            return
        self.broken_line(start)
        for offset, (rec, t) in enumerate(zip(alone, rest, strict=True)):
            line = start + 1 + offset
            if self.blank(t):
                self.parsed.skipped += 1
            elif rec is not None:
                self.add(rec, line)
                self.parsed.recovered.append(line)
            else:
                self.broken_line(line)

    def run(self) -> _Parsed:
        """Parse every line; return the parse."""
        position = 0  # lines consumed before the current csv reader started
        header_seen = False
        while position < len(self.physical):
            reader = csv.reader(
                io.StringIO("".join(self.physical[position:]), newline=""),
                delimiter=self.delimiter,
                quotechar=self.quote,
            )
            prev = 0
            try:
                for row in reader:
                    start, end = position + prev + 1, position + reader.line_num
                    prev = reader.line_num
                    blank = not row or all(not f.strip() for f in row)
                    if blank and (header_seen or not row):
                        self.parsed.skipped += end - start + 1
                        continue
                    if not header_seen:
                        header_seen = True
                        self.parsed.header_lines = end
                        self.parsed.skipped -= start - 1  # blank lines above the header are not data
                        continue
                    if end > start:
                        self.span(row, start, end)
                        continue
                    fitted = self.fit(row, start)
                    if fitted is None or (
                        self.physical[start - 1].count(self.quote) % 2 and self.alone_strict_fails(start)
                    ):
                        self.broken_line(start)
                    else:
                        self.add(fitted, start)
                position = len(self.physical)
            except csv.Error:
                # e.g. a stray quote swallowing more than the field size limit: the lines it read are
                # handled like any record spanning lines, and parsing resumes after them
                start, end = position + prev + 1, position + max(reader.line_num, prev + 1)
                self.span([], start, end)
                position = end
        return self.result()

    def alone_strict_fails(self, line: int) -> bool:
        """Return True when physical ``line`` does not parse strictly on its own (an open quote)."""
        try:
            list(
                csv.reader(
                    [self.physical[line - 1]], delimiter=self.delimiter, quotechar=self.quote, strict=True
                )
            )
        except csv.Error:
            return True
        return False

    def result(self) -> _Parsed:
        """Return the parse as Arrow columns, start lines and the broken mask."""
        header_width = self.width
        columns: list[list[str | None]] = [[] for _ in range(header_width)]
        for row in self.rows:
            for i in range(header_width):
                columns[i].append(row[i] if row is not None else None)
        names = [f"f{i}" for i in range(header_width)]
        p = self.parsed
        p.table = pa.table(
            {n: pa.array(col, type=pa.string()) for n, col in zip(names, columns, strict=True)}
        )
        p.lines = np.asarray(self.lines, dtype=np.int64)
        p.broken = np.asarray([r is None for r in self.rows], dtype=bool)
        return p


def _read_slow(text: str, header: list[str], delimiter: str, quote: str, path: Path, repair: bool) -> _Parsed:
    """Return the parse via the csv module; StructuralError when most records are broken."""
    parsed = _SlowReader(text, header, delimiter, quote, repair).run()
    parsed.table = parsed.table.rename_columns(header)
    broken = int(parsed.broken.sum())
    records = len(parsed.broken)
    if records >= 2 and broken * 2 > records:
        first = next(f for f in parsed.line_faults if f[1] in BROKEN_RULES)
        raise StructuralError(
            f"{broken} of {records} records do not split into the header's {len(header)} fields "
            f"(first: line {first[0]}, {first[1].replace('_', ' ')})",
            file=path,
            line=first[0],
            hint=(
                f"quote the values that contain {delimiter!r} (or fix a stray {quote}); "
                "or set csv.delimiter / csv.quote for this table in the profile"
            ),
        )
    return parsed


def _clean(table: pa.Table, null_tokens: list[str]) -> pd.DataFrame:
    """Return a DataFrame of trimmed strings where null tokens became nulls."""
    tokens = pa.array(sorted(set(null_tokens)), type=pa.string())
    out: dict[str, pd.Series] = {}
    for name in table.column_names:
        col = pc.utf8_trim_whitespace(table.column(name))
        col = pc.if_else(pc.is_in(col, value_set=tokens), pa.scalar(None, pa.string()), col)
        out[name] = pd.Series(pd.arrays.ArrowStringArray(col), copy=False)
    return pd.DataFrame(out)
