"""Reading one CSV file into trimmed text columns plus the physical line where each record starts.

Fast path: pyarrow's CSV reader, used when every record is one physical line
(cheaply checked by counting newlines against records). Files with quoted
embedded newlines or blank lines go through Python's ``csv`` module instead, so
``_source_line`` is exact either way.
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
from salesbi.reading.detect import SAMPLE_BYTES, check_encoding, detect_delimiter, detect_encoding
from salesbi.reading.profile import CsvOptions

STRING_DTYPE = pd.StringDtype()


@dataclass
class RawFile:
    """One file read as text: trimmed string columns (nulls applied) and record start lines."""

    path: Path
    header: list[str]
    frame: pd.DataFrame  # source column names → string Series; plus nothing else
    lines: np.ndarray  # int64, 1-based physical line where each record starts
    encoding: str
    delimiter: str
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Return the number of data records."""
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


def _text_of(data: bytes, encoding: str) -> str:
    return data.decode("utf-8-sig" if encoding == "utf-8-sig" else encoding)


def read_bytes(path: Path) -> bytes:
    """Return the file's bytes (StructuralError when it cannot be opened)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StructuralError(
            f"cannot open file: {exc.strerror}", file=path, hint="check the path and the file permissions"
        ) from None


def read_csv_file(path: Path, options: CsvOptions) -> RawFile:
    """Return the file's records as trimmed text columns with exact start lines.

    Raises StructuralError for an unreadable encoding, an empty file (no header)
    or a record whose field count differs from the header's.
    """
    data = read_bytes(path)
    if options.encoding in (None, "auto"):
        encoding = detect_encoding(data, path)
    else:
        encoding = options.encoding
        check_encoding(
            data[3:] if encoding == "utf-8-sig" and data.startswith(b"\xef\xbb\xbf") else data, encoding, path
        )
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    if not body.strip():
        raise StructuralError(
            "empty file: no header line",
            file=path,
            hint="export the table again with its header row, or point the profile at the right file",
        )
    quote = options.quote or '"'
    sample_bytes = body[:SAMPLE_BYTES]
    sample = sample_bytes.decode("cp1252" if encoding == "cp1252" else "utf-8", errors="replace")
    if options.delimiter in (None, "auto"):
        delimiter = detect_delimiter(sample, quote, truncated=len(body) > SAMPLE_BYTES)
    else:
        delimiter = options.delimiter
    header_rows = next(
        iter(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter, quotechar=quote)), []
    )
    header = _dedupe(header_rows)
    repaired: list[int] = []
    notes: list[str] = [
        f"{path.name}: the header names {raw.strip()!r} more than once; column {i + 1} is read as {name!r} "
        f"(the first {raw.strip()!r} is the one used)"
        for i, (raw, name) in enumerate(zip(header_rows, header, strict=True))
        if name != raw.strip()
    ]
    utf8 = body if encoding != "cp1252" else body.decode("cp1252").encode("utf-8")
    frame, lines = _read_fast(utf8, header, delimiter, quote, path)
    if frame is None:
        frame, lines = _read_slow(
            _text_of(utf8, "utf-8"),
            header,
            delimiter,
            quote,
            path,
            options.repair_ragged is not False,
            repaired,
        )
    if encoding == "cp1252" and options.encoding in (None, "auto"):
        notes.append(f"{path.name}: not valid UTF-8; read as cp1252 (Windows Western European)")
    if repaired:
        shown = ", ".join(str(n) for n in repaired[:10]) + (" ..." if len(repaired) > 10 else "")
        notes.append(
            f"{path.name}: {len(repaired)} record(s) had an unquoted {delimiter!r} inside a value "
            f"(lines {shown}); the parts were joined back (set csv.repair_ragged: false to refuse such files)"
        )
    nulls = list(options.null_tokens if options.null_tokens is not None else ["", "NULL"])
    frame = _clean(frame, nulls)
    return RawFile(
        path=path,
        header=header,
        frame=frame,
        lines=lines,
        encoding=encoding,
        delimiter=delimiter,
        notes=notes,
    )


def _physical_lines(data: bytes) -> int:
    n = data.count(b"\n")
    return n if data.endswith(b"\n") else n + 1


def _read_fast(
    data: bytes, header: list[str], delimiter: str, quote: str, path: Path
) -> tuple[pa.Table | None, np.ndarray]:
    """Return (table, lines) via pyarrow, or (None, empty) when the slow path is needed."""
    data = data.rstrip(b"\r\n") + b"\n"  # trailing blank lines do not count
    if b"\n\n" in data or b"\n\r\n" in data or (b"\r" in data and b"\n" not in data):
        return None, np.empty(0, dtype=np.int64)
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
        return None, np.empty(0, dtype=np.int64)
    if table.num_rows + 1 != _physical_lines(data):
        return None, np.empty(0, dtype=np.int64)
    table = table.rename_columns(header)
    return table, np.arange(2, table.num_rows + 2, dtype=np.int64)


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


def _read_slow(
    text: str, header: list[str], delimiter: str, quote: str, path: Path, repair: bool, repaired: list[int]
) -> tuple[pa.Table, np.ndarray]:
    """Return (table, lines) via the csv module, tracking the line where each record starts.

    Lines whose extra fields were merged back are appended to ``repaired``.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quote)
    columns: list[list[str]] = [[] for _ in header]
    lines: list[int] = []
    width = len(header)
    first = True
    prev = 0
    try:
        for row in reader:
            start = prev + 1
            prev = reader.line_num
            if not row:
                continue
            if first:
                first = False
                continue
            if len(row) > width and repair:
                fixed = merge_unquoted_delimiters(row, width, delimiter)
                if fixed is not None:
                    row = fixed
                    repaired.append(start)
            if len(row) != width:
                raise StructuralError(
                    f"record has {len(row)} fields but the header has {width}",
                    file=path,
                    line=start,
                    hint=(
                        f"quote the values on that line that contain {delimiter!r} (or fix a stray {quote}); "
                        "or set csv.delimiter / csv.quote for this table in the profile"
                    ),
                )
            for i, v in enumerate(row):
                columns[i].append(v)
            lines.append(start)
    except csv.Error as exc:
        raise StructuralError(
            f"cannot parse CSV: {exc}",
            file=path,
            line=reader.line_num,
            hint="check the quoting near that line, or set csv.quote / csv.delimiter in the profile",
        ) from None
    table = pa.table({h: pa.array(col, type=pa.string()) for h, col in zip(header, columns, strict=True)})
    return table, np.asarray(lines, dtype=np.int64)


def _clean(table: pa.Table, null_tokens: list[str]) -> pd.DataFrame:
    """Return a DataFrame of trimmed strings where null tokens became nulls."""
    tokens = pa.array(sorted(set(null_tokens)), type=pa.string())
    out: dict[str, pd.Series] = {}
    for name in table.column_names:
        col = pc.utf8_trim_whitespace(table.column(name))
        col = pc.if_else(pc.is_in(col, value_set=tokens), pa.scalar(None, pa.string()), col)
        out[name] = pd.Series(pd.arrays.ArrowStringArray(col), copy=False)
    return pd.DataFrame(out)
