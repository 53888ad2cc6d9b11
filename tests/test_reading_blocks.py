"""Reading and typing in blocks (issue 18): every table equals the one read and typed from the whole file.

``read_source(..., block_bytes=0)`` reads and types every file whole (the reader before blocks);
small block sizes put block boundaries everywhere: inside the first records, on the last one,
in a quoted line break, before a value that cannot be typed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from salesbi import contract
from salesbi.errors import StructuralError
from salesbi.reading.csvfile import READ_BLOCK_BYTES, open_csv_stream, read_csv_file
from salesbi.reading.profile import CsvOptions, load_profile
from salesbi.reading.reader import SourceData, _SourceReader, read_source


def assert_same_read(blocks: SourceData, whole: SourceData) -> None:
    """Assert two reads of a source are identical: frames (values, dtypes), faults, notes, counts."""
    assert blocks.notes == whole.notes
    assert list(blocks.tables) == list(whole.tables)
    for name, b in blocks.tables.items():
        w = whole.tables[name]
        pd.testing.assert_frame_equal(b.frame, w.frame, check_exact=True, obj=f"{name} frame")
        pd.testing.assert_frame_equal(b.faults, w.faults, check_exact=True, obj=f"{name} faults")
        counts = (b.read, b.lines, b.skipped, b.files, b.notes)
        assert counts == (w.read, w.lines, w.skipped, w.files, w.notes), name


def streamed(source: Path, profile: str) -> list[str]:
    """Return the tables of ``source`` the reader takes in blocks."""
    prof = load_profile(profile)
    reader = _SourceReader(source, prof)
    return [t.name for t in contract.TABLES if reader.streamable(t.name, prof.spec(t.name))]


def copy_company(src: Path, dst: Path, lines: int = 300) -> Path:
    """Return the header and first ``lines`` lines of each canonical CSV of ``src``, in ``dst``.

    Small, so that tiny blocks stay quick (reading does not check references between tables).
    """
    dst.mkdir(parents=True, exist_ok=True)
    for t in contract.TABLES:
        with (src / f"{t.name}.csv").open("rb") as f:
            head = [f.readline() for _ in range(lines + 1)]
        (dst / f"{t.name}.csv").write_bytes(b"".join(head))
    return dst


@pytest.mark.parametrize("block_bytes", [20_000, 256 << 10, READ_BLOCK_BYTES])
def test_generated_company_in_blocks_equals_whole_files(sample_company: Path, block_bytes: int) -> None:
    assert streamed(sample_company, "canonical") == [t.name for t in contract.TABLES]
    whole = read_source(sample_company, "canonical", block_bytes=0)
    assert whole.tables["order_items"].read == 20_000
    assert_same_read(read_source(sample_company, "canonical", block_bytes=block_bytes), whole)


@pytest.mark.realdata
def test_classicmodels_in_blocks_equals_whole_files(classicmodels_dir: Path) -> None:
    # every table is read in blocks: the derived columns (customers, product lines, order lines) are
    # computed from each row alone (constants, copies, templates)
    assert streamed(classicmodels_dir, "classicmodels") == [t.name for t in contract.TABLES]
    whole = read_source(classicmodels_dir, "classicmodels", block_bytes=0)
    for size in (512, 4096, None):
        assert_same_read(read_source(classicmodels_dir, "classicmodels", block_bytes=size), whole)


@pytest.mark.realdata
def test_northwind_is_read_whole_and_unchanged(northwind_dir: Path) -> None:
    # Northwind's profile reads files for several tables (lookups, derived offices): no blocks
    assert streamed(northwind_dir, "northwind") == []
    whole = read_source(northwind_dir, "northwind", block_bytes=0)
    assert_same_read(read_source(northwind_dir, "northwind", block_bytes=1), whole)


def write_items(folder: Path, sample_company: Path, body: str, encoding: str = "utf-8") -> Path:
    """Return a copy of the sample company whose order_items file is ``body``."""
    copy_company(sample_company, folder)
    (folder / "order_items.csv").write_bytes(body.encode(encoding))
    return folder


def item_lines(sample_company: Path, n: int) -> list[str]:
    """Return the header and the first ``n`` lines of the sample company's order_items."""
    return (sample_company / "order_items.csv").read_text().splitlines()[: n + 1]


def test_bad_value_in_the_last_block_names_its_line(sample_company: Path, tmp_path: Path) -> None:
    lines = item_lines(sample_company, 300)
    header = lines[0].split(",")
    cells = lines[-1].split(",")
    cells[header.index("quantity")] = "three"
    lines[-1] = ",".join(cells)
    folder = write_items(tmp_path / "c", sample_company, "\n".join(lines) + "\n")
    whole = read_source(folder, "canonical", block_bytes=0)
    blocks = read_source(folder, "canonical", block_bytes=2000)
    assert_same_read(blocks, whole)
    faults = blocks.tables["order_items"].faults
    assert faults[["file", "line", "column", "rule", "value"]].values.tolist() == [
        ["order_items.csv", 301, "quantity", "invalid_integer", "three"]
    ]
    assert blocks.tables["order_items"].frame["quantity"].isna().sum() == 1


def test_quoted_line_break_across_a_block_boundary(sample_company: Path, tmp_path: Path) -> None:
    lines = item_lines(sample_company, 50)
    header = lines[0].split(",")
    cells = lines[20].split(",")
    cells[header.index("product_id")] = '"P\n0011"'  # a value with a line break, quoted
    lines[20] = ",".join(cells)
    text = "\n".join(lines) + "\n"
    folder = write_items(tmp_path / "c", sample_company, text)
    whole = read_source(folder, "canonical", block_bytes=0)
    split_at = text.index("\n0011")  # a block ends inside the quoted value
    for size in (split_at, split_at + 1, 2048):
        assert_same_read(read_source(folder, "canonical", block_bytes=size), whole)
    items = whole.tables["order_items"]
    assert items.read == 50 and items.lines == 51 and items.skipped == 1
    assert items.frame["product_id"].iloc[19] == "P\n0011"
    assert items.faults["rule"].tolist() == ["record_spans_lines"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp1252", "utf-16"])
def test_encodings_in_blocks(sample_company: Path, tmp_path: Path, encoding: str) -> None:
    lines = item_lines(sample_company, 120)
    header = lines[0].split(",")
    cells = lines[5].split(",")
    cells[header.index("product_id")] = "Pé"  # not ASCII: an unknown product, but the text must survive
    lines[5] = ",".join(cells)
    folder = write_items(tmp_path / "c", sample_company, "\r\n".join(lines) + "\r\n", encoding)
    whole = read_source(folder, "canonical", block_bytes=0)
    assert_same_read(read_source(folder, "canonical", block_bytes=1500), whole)
    assert whole.tables["order_items"].frame["product_id"].iloc[4] == "Pé"


def test_file_smaller_than_a_block_blank_lines_and_long_lines(sample_company: Path, tmp_path: Path) -> None:
    lines = item_lines(sample_company, 30)
    body = [*lines[:10], "", ",,,,,", *lines[10:20], "  ", *lines[20:]]
    header = lines[0].split(",")
    cells = lines[25].split(",")
    cells[header.index("product_id")] = "P" + "9" * 5000  # longer than a block
    body[-5] = ",".join(cells)
    folder = write_items(tmp_path / "c", sample_company, "\n".join(body) + "\n\n\n")
    whole = read_source(folder, "canonical", block_bytes=0)
    items = whole.tables["order_items"]
    assert items.read == 30 and items.skipped == 5
    for size in (1000, READ_BLOCK_BYTES):
        assert_same_read(read_source(folder, "canonical", block_bytes=size), whole)


def test_header_only_and_empty_files(sample_company: Path, tmp_path: Path) -> None:
    header = item_lines(sample_company, 0)[0]
    folder = write_items(tmp_path / "h", sample_company, header + "\n")
    with pytest.raises(StructuralError) as whole_error:
        read_source(folder, "canonical", block_bytes=0)
    with pytest.raises(StructuralError) as block_error:
        read_source(folder, "canonical", block_bytes=4096)
    assert block_error.value.message == whole_error.value.message
    assert "order_items: the file has a header but no data rows" in whole_error.value.message

    (folder / "order_items.csv").write_bytes(b"")
    with pytest.raises(StructuralError, match="empty file: no header line"):
        read_source(folder, "canonical", block_bytes=4096)


def test_date_formats_are_detected_over_the_whole_column(sample_company: Path, tmp_path: Path) -> None:
    # ambiguous dates (both parts <= 12, day-first by default) until the last line shows month-first
    orders = (sample_company / "orders.csv").read_text().splitlines()[:200]
    header = orders[0].split(",")
    at = header.index("order_date")
    out = [orders[0]]
    for i, line in enumerate(orders[1:], start=1):
        cells = line.split(",")
        cells[at] = "01/25/2024" if i == len(orders) - 1 else f"{(i % 12) + 1:02d}/{(i % 7) + 1:02d}/2024"
        out.append(",".join(cells))
    copy_company(sample_company, tmp_path / "c")
    (tmp_path / "c" / "orders.csv").write_text("\n".join(out) + "\n")
    whole = read_source(tmp_path / "c", "canonical", block_bytes=0)
    blocks = read_source(tmp_path / "c", "canonical", block_bytes=2000)
    assert_same_read(blocks, whole)
    dates = blocks.tables["orders"].frame["order_date"]
    assert dates.iloc[9] == pd.Timestamp("2024-11-04")  # 11/04/2024, month first: 4 November
    assert dates.iloc[-1] == pd.Timestamp("2024-01-25")
    assert blocks.tables["orders"].faults.empty


def test_stream_reads_the_file_in_pieces_without_holding_it(sample_company: Path, tmp_path: Path) -> None:
    path = copy_company(sample_company, tmp_path / "c", lines=3000) / "order_items.csv"
    stream = open_csv_stream(path, CsvOptions(), block_bytes=4096)
    assert stream.candidate and stream.opened.disk is not None
    blocks = list(stream)
    assert stream.complete and stream.opened.utf8 == b""  # read from the file, piece by piece
    assert len(blocks) > 20 and max(len(b.frame) for b in blocks) < 200
    whole = read_csv_file(path, CsvOptions(), block_bytes=0)
    joined = pd.concat([b.frame for b in blocks], ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole.frame, check_exact=True)
    assert [int(n) for b in blocks for n in b.lines] == whole.lines.tolist()
    assert (stream.data_lines, stream.skipped) == (whole.data_lines, whole.skipped)


def test_a_changed_file_is_not_taken_from_blocks(sample_company: Path, tmp_path: Path) -> None:
    folder = copy_company(sample_company, tmp_path / "c")
    path = folder / "order_items.csv"
    stream = open_csv_stream(path, CsvOptions(), block_bytes=4096)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:100]) + "\n")  # truncated after it was checked
    list(stream)
    assert not stream.complete  # the reader then reads the file whole, as it is now
