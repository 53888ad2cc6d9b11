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
from collections.abc import Iterator
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
#: bytes of a file the fast path parses at a time (issue 18: the parse's transient is a block's)
READ_BLOCK_BYTES = 4 << 20


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


@dataclass
class _Opened:
    """A file decoded and its layout detected, held once as UTF-8 bytes, before any record is parsed."""

    path: Path
    utf8: bytes
    bom: bool  # ``utf8`` starts with a byte-order mark the text does not have (declared utf-8)
    header: list[str]
    encoding: str
    delimiter: str
    quote: str
    nulls: list[str]
    total: int  # physical lines of the file
    notes: list[str]
    layout: _Layout
    disk: tuple[int, int] | None = None  # (size, mtime) when ``utf8`` is the file's bytes as stored

    def text(self) -> str:
        """Return the file's text (as decoded), for the slow path."""
        text = self.utf8.decode("utf-8")
        return text[1:] if self.bom else text


def _open(path: Path, options: CsvOptions) -> _Opened:
    """Return the file read and decoded, its delimiter and header detected (StructuralError: unreadable)."""
    data = read_bytes(path)
    disk = _signature(path)
    decoded = decode_file(data, path, options.encoding)
    if not decoded.text.strip():
        raise StructuralError(
            "empty file: no header line",
            file=path,
            hint="export the table again with its header row, or point the profile at the right file",
        )
    quote = options.quote or '"'
    sample = decoded.text[:SAMPLE_BYTES]
    truncated = len(decoded.text) > SAMPLE_BYTES
    utf8 = data if decoded.encoding == "utf-8" else decoded.text.encode("utf-8")
    bom = utf8 is data and data.startswith(b"\xef\xbb\xbf") and not decoded.text.startswith("\ufeff")
    # the text is needed again only by the slow path (decoded from ``utf8``: the same text); the
    # fast path holds the file once, as bytes (issue 18: the read step's memory)
    decoded.text = ""
    as_stored = utf8 is data and not bom and disk is not None and disk[0] == len(data)
    del data
    if options.delimiter in (None, "auto"):
        delimiter = detect_delimiter(sample, quote, truncated=truncated)
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
    nulls = list(options.null_tokens if options.null_tokens is not None else ["", "NULL"])
    layout = _layout(utf8, quote)
    disk = disk if as_stored else None
    return _Opened(
        path, utf8, bom, header, decoded.encoding, delimiter, quote, nulls, layout.total, notes, layout, disk
    )


def _signature(path: Path) -> tuple[int, int] | None:
    """Return the file's (size, modification time), or None when it cannot be read."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def read_csv_file(
    path: Path, options: CsvOptions, block_bytes: int | None = None, stream: CsvStream | None = None
) -> RawFile:
    """Return the file's records as trimmed text columns with exact start lines and line accounting.

    The fast path parses, trims and applies the null tokens ``block_bytes`` (default
    :data:`READ_BLOCK_BYTES`, 0: the whole file at once) of the file at a time, each block's
    parse buffers freed before the next; the result does not depend on the block size (a file
    whose blocks do not parse is parsed in one block, as before, so the same file takes the same
    path).

    Raises StructuralError for an unreadable encoding, an empty file (no header), or a file
    where most records do not split into the header's fields (wrong delimiter or quote).
    ``stream``: the file as opened for :class:`CsvStream` whose blocks did not hold (not read again).
    """
    opened = stream.opened if stream is not None and stream.opened.utf8 else _open(path, options)
    whole = opened.layout.end + 1  # one block: block_bytes 0
    parsed = _read_fast(opened, READ_BLOCK_BYTES if block_bytes is None else block_bytes or whole)
    if parsed is None:
        text = opened.text()
        opened.utf8 = b""
        parsed = _read_slow(
            text, opened.header, opened.delimiter, opened.quote, path, options.repair_ragged is not False
        )
        del text
        parsed.table = _clean_table(parsed.table, opened.nulls)
    opened.utf8 = b""
    notes = opened.notes
    if parsed.repaired:
        notes.append(
            f"{path.name}: {len(parsed.repaired)} record(s) had an unquoted {opened.delimiter!r} inside a "
            f"value (lines {_shown(parsed.repaired)}); the parts were joined back "
            "(set csv.repair_ragged: false to refuse such files)"
        )
    if parsed.recovered:
        notes.append(
            f"{path.name}: a quote left open swallowed the following lines; lines {_shown(parsed.recovered)} "
            "were read on their own (the line with the open quote is rejected)"
        )
    notes.extend(_skipped_note(path, parsed.skipped))
    frame = _frame(parsed.table)
    parsed.table = pa.table({})
    data_lines = _data_lines(opened, parsed.header_lines, len(frame), parsed.skipped)
    return RawFile(
        path=path,
        header=opened.header,
        frame=frame,
        lines=parsed.lines,
        encoding=opened.encoding,
        delimiter=opened.delimiter,
        notes=notes,
        data_lines=data_lines,
        skipped=parsed.skipped,
        broken=parsed.broken,
        line_faults=parsed.line_faults,
    )


def _skipped_note(path: Path, skipped: int) -> list[str]:
    return (
        [f"{path.name}: {skipped} line(s) skipped (blank, padding or continuation lines)"] if skipped else []
    )


def _data_lines(opened: _Opened, header_lines: int, records: int, skipped: int) -> int:
    """Return the file's data lines (AssertionError when records and skipped lines do not add up to them)."""
    data_lines = max(opened.total - header_lines, 0)
    if data_lines != records + skipped:
        raise AssertionError(
            f"{opened.path}: {data_lines} data lines != {records} records + {skipped} skipped; "
            "lines were lost by the reader — this is a bug, please report it"
        )
    return data_lines


@dataclass
class RawBlock:
    """Consecutive records of a file: trimmed text columns (nulls applied) and each one's start line."""

    frame: pd.DataFrame
    lines: np.ndarray


class CsvStream:
    """A file's records in blocks of about ``block_bytes`` (the fast path only: every record one line).

    Iterate it for :class:`RawBlock` s; afterwards ``complete`` says whether the fast path held to
    the end. When it did not (a block that does not parse, or records spanning lines) the blocks
    seen so far are to be thrown away and the file read whole with :func:`read_csv_file`, which
    then takes the path it always takes. ``notes``, ``data_lines`` and ``skipped`` are final once
    the iteration is complete.
    """

    def __init__(self, opened: _Opened, block_bytes: int) -> None:
        self.opened = opened
        self.block_bytes = block_bytes
        self.complete = False
        self.data_lines = 0
        self.skipped = 0
        self.notes: list[str] = list(opened.notes)

    @property
    def candidate(self) -> bool:
        """Return True when the file may take the fast path and has records (else read it whole)."""
        return self.opened.layout.candidate and self.opened.layout.records > 1

    @property
    def header(self) -> list[str]:
        """Return the header's column names (de-duplicated)."""
        return self.opened.header

    def __iter__(self) -> Iterator[RawBlock]:
        """Yield the file's blocks; set ``complete`` at the end."""
        if not self.candidate:
            return
        if self.opened.disk is not None:
            self.opened.utf8 = b""  # the blocks are read from the file: its bytes are not held (issue 18)
        end = _Ends()
        for batch, lines in _fast_blocks(self.opened, self.block_bytes, end):
            yield RawBlock(_frame(pa.Table.from_batches([batch]).rename_columns(self.header)), lines)
        if not end.complete:
            return
        self.opened.utf8 = b""
        self.skipped = end.skipped
        self.notes.extend(_skipped_note(self.opened.path, end.skipped))
        self.data_lines = _data_lines(self.opened, 1, end.records, end.skipped)
        self.complete = True


def open_csv_stream(path: Path, options: CsvOptions, block_bytes: int | None = None) -> CsvStream:
    """Return the file as a stream of blocks (``candidate`` False: it cannot take the fast path).

    Raises what :func:`read_csv_file` raises for the file's encoding or an empty file.
    """
    return CsvStream(_open(path, options), block_bytes or READ_BLOCK_BYTES)


def _shown(lines: list[int]) -> str:
    return ", ".join(str(n) for n in lines[:10]) + (f" ... ({len(lines)} lines)" if len(lines) > 10 else "")


def _blank_rows(table: pa.Table | pa.RecordBatch) -> np.ndarray:
    """Return a mask of the rows whose every cell is empty or whitespace (padding lines)."""
    mask = np.ones(table.num_rows, dtype=bool)
    for col in table.columns:
        empty = pc.equal(pc.utf8_trim_whitespace(col), "")
        mask &= np.asarray(empty.to_numpy(zero_copy_only=False), dtype=bool)
        if not mask.any():
            break
    return mask


@dataclass
class _Layout:
    """What one scan of a file's bytes tells the fast path (no copy of the bytes is made)."""

    total: int  # physical lines (as count_lines)
    end: int  # length without the trailing line ends
    records: int  # physical lines of ``data[:end]``: the header's and every record's if each is one line
    candidate: bool  # no blank line inside, one kind of line end, an even number of quotes


def _layout(data: bytes, quote: str) -> _Layout:
    """Return the lines of ``data`` and whether every record may be one line."""
    lf, cr, crlf = data.count(b"\n"), data.count(b"\r"), data.count(b"\r\n")
    ends = lf + cr - crlf
    total = 0 if not data else (ends if data.endswith((b"\n", b"\r")) else ends + 1)
    end = len(data)
    while end and data[end - 1] in (10, 13):  # \n, \r
        end -= 1
    tail = data[end:]  # line ends only (short)
    tail_cr, tail_crlf = tail.count(b"\r"), tail.count(b"\r\n")
    trailing = tail.count(b"\n") + tail_cr - tail_crlf  # line ends in the tail: blank lines at the end
    records = 0 if end == 0 else total - (trailing - 1 if tail else 0)
    candidate = not (
        end == 0
        or data.startswith((b"\n", b"\r"))
        or cr - tail_cr != crlf - tail_crlf
        or data.find(b"\n\n", 0, end) >= 0
        or data.find(b"\n\r\n", 0, end) >= 0
        or data.count(quote.encode("utf-8"), 0, end) % 2
    )
    return _Layout(total, end, records, candidate)


@dataclass
class _Ends:
    """How a fast parse ended: whether it held, and its counts."""

    complete: bool = False
    records: int = 0  # records kept (blank lines removed)
    skipped: int = 0  # blank lines, inside the file and at its end


def _pieces(opened: _Opened, block_bytes: int) -> Iterator[pa.Buffer]:
    """Yield the file's bytes up to its trailing line ends, about ``block_bytes`` at a time, cut after a LF.

    From ``opened.utf8``, or (when those were let go) read from the file. A piece holds at
    least one whole line however long; with no lone CR in the file every line ends with a LF.
    """
    end = opened.layout.end
    data = opened.utf8
    block = max(block_bytes, 1)
    if data:
        view = memoryview(data)
        pos = 0
        while pos < end:
            stop = min(pos + block, end)
            cut = end if stop == end else data.rfind(b"\n", pos, stop) + 1
            if cut <= pos:  # a line longer than a block: up to its end
                cut = data.find(b"\n", stop, end) + 1 or end
            yield pa.py_buffer(view[pos:cut])
            pos = cut
        return
    with open(opened.path, "rb") as f:
        pending = b""
        pos = 0
        while pos < end:
            piece = f.read(min(block, end - pos))
            if not piece:
                raise OSError(f"{opened.path} is shorter than when it was checked")
            pos += len(piece)
            buffer = pending + piece if pending else piece
            if pos >= end:
                yield pa.py_buffer(buffer)
                return
            cut = buffer.rfind(b"\n") + 1
            if cut == 0:  # a line longer than a block: read on
                pending = buffer
                continue
            pending = buffer[cut:]
            yield pa.py_buffer(memoryview(buffer)[:cut])


def _one_chunk(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Return ``col`` as one array (no copy when it is one chunk)."""
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


def _fast_blocks(
    opened: _Opened, block_bytes: int, ends: _Ends
) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
    """Yield the file's records via pyarrow, ``block_bytes`` at a time: (cleaned batch, start lines).

    The bytes are cut after a line end (every record is one line here, else the counts below
    disagree) and each piece is parsed, trimmed, its null tokens applied and its blank rows
    dropped before the next is read: the parse holds one piece. ``ends.complete`` is set only
    when every piece parsed and the records are as many as the lines after the header (else the
    file needs the slow path).
    """
    layout = opened.layout
    if not layout.candidate:
        return
    records = layout.records  # lines up to the trailing blank ones (not parsed), the header's included
    trailing = layout.total - records  # blank lines at the end
    names = [f"f{i}" for i in range(len(opened.header))]
    from_file = not opened.utf8
    blank_rows = rows = 0
    if records > 1:
        tokens = _tokens(opened.nulls)
        parse_options = pacsv.ParseOptions(
            delimiter=opened.delimiter, quote_char=opened.quote, double_quote=True, newlines_in_values=False
        )
        convert_options = pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            null_values=[],
        )
        try:
            for number, piece in enumerate(_pieces(opened, block_bytes)):
                read_options = pacsv.ReadOptions(
                    column_names=names,
                    skip_rows=0 if number else 1,
                    block_size=piece.size + 1,
                    use_threads=False,
                )
                table = pacsv.read_csv(
                    piece,
                    read_options=read_options,
                    parse_options=parse_options,
                    convert_options=convert_options,
                )
                del piece
                lines = np.arange(rows + 2, rows + 2 + table.num_rows, dtype=np.int64)
                rows += table.num_rows
                if rows + 1 > records:
                    return
                blank = _blank_rows(table)
                if blank.any():
                    table = table.filter(pa.array(~blank))
                    lines = lines[~blank]
                    blank_rows += int(blank.sum())
                cleaned = pa.RecordBatch.from_arrays(
                    [_one_chunk(_clean_column(col, tokens)) for col in table.columns], names=names
                )
                del table
                yield cleaned, lines
        except (pa.ArrowInvalid, OSError):
            return
    if rows + 1 != records or (from_file and _signature(opened.path) != opened.disk):
        return  # records spanning lines, or (read from the file) the file changed since it was checked
    ends.complete = True
    ends.records = rows - blank_rows
    ends.skipped = trailing + blank_rows


def _read_fast(opened: _Opened, block_bytes: int) -> _Parsed | None:
    """Return the parse via pyarrow (cells trimmed, null tokens applied), or None: the slow path is needed.

    Parsed in blocks (:func:`_fast_blocks`); should the blocks not hold, the file is parsed again
    in one block, so the decision (fast or slow path) is the one a whole-file parse makes.
    """
    end = opened.layout.end
    for size in (block_bytes, end + 1) if block_bytes < end else (end + 1,):
        ends = _Ends()
        batches: list[pa.RecordBatch] = []
        starts: list[np.ndarray] = []
        for batch, lines in _fast_blocks(opened, size, ends):
            batches.append(batch)
            starts.append(lines)
        if ends.complete:
            schema = pa.schema([(h, pa.string()) for h in opened.header])
            table = pa.Table.from_batches([b.rename_columns(opened.header) for b in batches], schema=schema)
            lines = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)
            return _Parsed(table, lines, np.zeros(len(lines), dtype=bool), ends.skipped)
        del batches, starts
    return None


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


def _clean_column(col: pa.Array | pa.ChunkedArray, tokens: pa.Array) -> pa.Array | pa.ChunkedArray:
    """Return ``col`` trimmed, with the null tokens as nulls."""
    col = pc.utf8_trim_whitespace(col)
    return pc.if_else(pc.is_in(col, value_set=tokens), pa.scalar(None, pa.string()), col)


def _tokens(null_tokens: list[str]) -> pa.Array:
    return pa.array(sorted(set(null_tokens)), type=pa.string())


def _clean_table(table: pa.Table, null_tokens: list[str]) -> pa.Table:
    """Return ``table`` with trimmed cells and the null tokens as nulls."""
    tokens = _tokens(null_tokens)
    return pa.table({name: _clean_column(table.column(name), tokens) for name in table.column_names})


def _frame(table: pa.Table) -> pd.DataFrame:
    """Return the cleaned text columns as a DataFrame of Arrow-backed strings (no copy)."""
    out: dict[str, pd.Series] = {}
    for name in table.column_names:
        out[name] = pd.Series(pd.arrays.ArrowStringArray(table.column(name)), copy=False)
    return pd.DataFrame(out)
