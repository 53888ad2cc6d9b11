"""Line accounting of the CSV reader: every physical line is a record, skipped, or a broken record."""

from __future__ import annotations

from pathlib import Path

import pytest

from salesbi.reading.csvfile import count_lines, read_csv_file
from salesbi.reading.detect import decode_file
from salesbi.reading.profile import CsvOptions

BIG_SWALLOW = (
    "a,b,c\n"
    + '1,x,"y\n'  # a quote left open; 4,998 lines of 56 characters follow: beyond csv's field limit
    + "".join(f"{i},{'z' * 50},w\n" for i in range(2, 5000))
    + '5000,x,"q"\n'
)

# (id, file text, records' start lines, broken lines with rule, skipped lines)
CASES = [
    ("clean", "a,b,c\n1,x,y\n2,x,y\n", [2, 3], [], 0),
    ("crlf-with-blank", "a,b,c\r\n1,x,y\r\n\r\n2,x,y\r\n", [2, 4], [], 1),
    ("cr-only", "a,b,c\r1,x,y\r2,x,y\r", [2, 3], [], 0),
    ("blank-lines-before-header", "\n\na,b,c\n1,x,y\n", [4], [], 0),
    ("whitespace-and-padding", "a,b,c\n1,x,y\n   \n\t\n,, \n2,x,y\n\n\n", [2, 6], [], 5),
    ("padding-fast-path", "a,b,c\n1,x,y\n,,\n2,x,y\n", [2, 4], [], 1),
    (
        "too-many-and-too-few",
        "a,b,c\n1,x,y,z\n2,x\n3,x,y\n4,x,y\n5,x,y\n",
        [2, 3, 4, 5, 6],
        [(2, "field_count"), (3, "field_count")],
        0,
    ),
    (
        "stray-quote-recovered",
        'a,b,c\n1,x,"y\n2,x,y\n3,x,"q, r"\n4,x,y\n',
        [2, 3, 4, 5],
        [(2, "unclosed_quote")],
        0,
    ),
    ("unclosed-on-last-line", 'a,b,c\n1,x,y\n2,x,"y\n', [2, 3], [(3, "unclosed_quote")], 0),
    ("crlf-stray-quote", 'a,b,c\r\n1,x,"y\r\n2,x,y\r\n3,x,y\r\n', [2, 3, 4], [(2, "unclosed_quote")], 0),
    ("quoted-line-break", 'a,b,c\n1,"x\nmore, stuff",y\n2,x,y\n', [2, 4], [], 1),
    ("beyond-field-size-limit", BIG_SWALLOW, list(range(2, 5002)), [(2, "unclosed_quote")], 0),
]


@pytest.mark.parametrize(("case", "text", "starts", "broken", "skipped"), CASES, ids=[c[0] for c in CASES])
def test_every_line_is_accounted_for(
    tmp_path: Path, case: str, text: str, starts: list[int], broken: list[tuple[int, str]], skipped: int
) -> None:
    path = tmp_path / f"{case}.csv"
    path.write_bytes(text.encode("utf-8"))
    raw = read_csv_file(path, CsvOptions())
    assert raw.lines.tolist() == starts
    assert [(line, rule) for line, rule, _ in raw.line_faults if rule != "record_spans_lines"] == broken
    assert raw.lines[raw.broken].tolist() == [line for line, _ in broken]
    assert raw.skipped == skipped
    above_header = len(text) - len(text.lstrip("\r\n"))  # blank lines before the header are not data
    assert raw.data_lines == raw.rows + raw.skipped == count_lines(text.encode()) - 1 - above_header
    good = raw.frame[~raw.broken]
    assert good.notna().all().all() and len(good) == len(starts) - len(broken)
    assert raw.frame[raw.broken].isna().all().all()


def test_recovered_lines_are_named_in_a_note(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(BIG_SWALLOW.encode())
    raw = read_csv_file(path, CsvOptions())
    assert raw.notes[0].startswith(
        "orders.csv: a quote left open swallowed the following lines; lines 3, 4, 5"
    )
    assert raw.frame["b"].str.len().max() == 50  # no value holds the swallowed lines


def test_quoted_line_break_is_listed_with_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(b'a,b,c\n1,"x\nmore\nstill",y\n2,x,y\n')
    raw = read_csv_file(path, CsvOptions())
    assert raw.line_faults == [(2, "record_spans_lines", "lines 2-4")]
    assert raw.frame["b"].tolist() == ["x\nmore\nstill", "x"]
    assert (raw.data_lines, raw.rows, raw.skipped) == (4, 2, 2)


@pytest.mark.parametrize(
    ("data", "encoding", "text"),
    [
        (b"\xef\xbb\xbfZ\xc3\xbcrich\n", "utf-8-sig", "Zürich\n"),
        ("Zürich\n".encode("utf-16"), "utf-16", "Zürich\n"),
        ("Zürich\n".encode("utf-32"), "utf-32", "Zürich\n"),
        ("Zürich,Kraków\n".encode("utf-16-le"), "utf-16", "Zürich,Kraków\n"),
        ("Zürich\n".encode() + "Zürich\n".encode("cp1252"), "utf-8+cp1252", "Zürich\nZürich\n"),
        ("Příliš žluťoučký kůň, Łódź\n".encode("iso8859_2"), "iso8859_2", "Příliš žluťoučký kůň, Łódź\n"),
    ],
    ids=["utf-8-bom", "utf-16", "utf-32", "utf-16-no-bom", "mixed", "latin-2"],
)
def test_encoding_is_decided_from_evidence(tmp_path: Path, data: bytes, encoding: str, text: str) -> None:
    decoded = decode_file(data, tmp_path / "f.csv")
    assert (decoded.encoding, decoded.text) == (encoding, text)
    if encoding == "utf-8+cp1252":
        assert decoded.fallback_lines == [2]
        assert "lines 2 are not and were read as cp1252" in decoded.notes[0]
        assert "charset-normalizer" in decoded.notes[0]


def test_distinct_collapses_duplicates_but_never_broken_records(tmp_path: Path) -> None:
    import shutil

    from salesbi.reading.reader import read_source

    src = tmp_path / "src"
    shutil.copytree(Path(__file__).parent / "data" / "reading" / "mini", src)
    path = src / "customers.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([*lines, lines[1], "X1,too,few", "X2,too,few"]) + "\n", encoding="utf-8")
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\ntables:\n  customers:\n    distinct: [customer_id]\n", encoding="utf-8")
    customers = read_source(src, profile).tables["customers"]
    n = len(lines) - 1
    assert customers.read == n + 2  # the duplicate collapsed; both broken records kept
    assert customers.lines == n + 3 and customers.skipped == 1
    staged = set(customers.frame["_source_line"])
    assert set(customers.faults["line"]) == {n + 3, n + 4} <= staged
