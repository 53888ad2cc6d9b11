"""Structural faults stop the read with one message naming file, column and what to do."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from salesbi.errors import ProfileError, StructuralError
from salesbi.reading.reader import read_source

MINI = Path(__file__).parent / "data" / "reading" / "mini"


@pytest.fixture()
def src(tmp_path: Path) -> Path:
    """A copy of the small canonical company, to break."""
    out = tmp_path / "src"
    shutil.copytree(MINI, out)
    return out


def _rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_the_intact_copy_reads(src: Path) -> None:
    data = read_source(src, "canonical")
    assert data.tables["order_items"].read == 4


def test_missing_file_names_file_and_profile_key(src: Path) -> None:
    (src / "orders.csv").unlink()
    with pytest.raises(StructuralError) as exc:
        read_source(src, "canonical")
    msg = str(exc.value)
    assert exc.value.file == str(src / "orders.csv")
    assert "orders: expected file 'orders.csv' not found" in msg
    assert "change tables.orders.file in profile canonical" in msg
    assert "CSV files there: customers.csv, employees.csv" in msg


def test_missing_required_column_names_column_file_columns_and_rename(src: Path) -> None:
    _rewrite(src / "customers.csv", "customer_name", "company")
    with pytest.raises(StructuralError) as exc:
        read_source(src, "canonical")
    err = exc.value
    assert err.file == str(src / "customers.csv")
    assert err.column == "customer_name"
    msg = str(err)
    assert "customers: required column 'customer_name' is missing" in msg
    assert "columns there: customer_id, company, contact_name, city" in msg
    assert "add a rename under tables.customers.rename" in msg
    assert "rename: {company: customer_name}" in msg


def test_renamed_source_column_absent_is_structural(tmp_path: Path, src: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\ntables:\n  orders:\n    rename: {orderDate: order_date}\n", encoding="utf-8")
    with pytest.raises(StructuralError) as exc:
        read_source(src, profile)
    msg = str(exc.value)
    assert exc.value.column == "orderDate"
    assert "orders: column 'orderDate' named in the profile's rename is not in the file" in msg
    assert "fix tables.orders.rename" in msg and "columns there: order_id, customer_id" in msg


def test_empty_file_without_header(src: Path) -> None:
    (src / "products.csv").write_bytes(b"")
    with pytest.raises(StructuralError) as exc:
        read_source(src, "canonical")
    assert exc.value.file == str(src / "products.csv")
    assert "empty file: no header line" in str(exc.value)
    assert "export the table again with its header row" in str(exc.value)


@pytest.mark.parametrize("table", ["orders", "order_items", "customers"])
def test_header_only_for_a_table_that_must_have_rows(src: Path, table: str) -> None:
    path = src / f"{table}.csv"
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    with pytest.raises(StructuralError) as exc:
        read_source(src, "canonical")
    assert f"{table}: the file has a header but no data rows" in str(exc.value)
    assert f"tables.{table}.file" in str(exc.value)


def test_header_only_is_fine_for_other_tables(src: Path) -> None:
    path = src / "offices.csv"
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    data = read_source(src, "canonical")
    assert data.tables["offices"].read == 0


def test_unreadable_encoding_names_offset_line_and_fix(src: Path) -> None:
    # a UTF-8 byte-order mark promises UTF-8; 0x81 is invalid as a UTF-8 start byte
    raw = b"\xef\xbb\xbf" + (src / "customers.csv").read_bytes().replace(b"Gamma Kids", b"Gamma \x81Kids")
    (src / "customers.csv").write_bytes(raw)
    offset = raw.index(b"\x81")
    with pytest.raises(StructuralError) as exc:
        read_source(src, "canonical")
    err = exc.value
    assert err.file == str(src / "customers.csv")
    assert err.line == 4
    assert f"unreadable encoding: byte 0x81 at byte offset {offset}" in str(err)
    assert "save the file as UTF-8" in str(err)


def test_byte_undefined_in_cp1252_is_read_and_left_to_validation(src: Path) -> None:
    # without a BOM, 0x81 (undefined in cp1252) is read by the next code page as the C1 control U+0081,
    # which the control_character rule rejects with file, line and column
    raw = (src / "customers.csv").read_bytes().replace(b"Gamma Kids", b"Gamma \x81Kids")
    (src / "customers.csv").write_bytes(raw)
    data = read_source(src, "canonical")
    assert data.tables["customers"].frame["customer_name"][2] == "Gamma \x81Kids"
    assert any("not valid UTF-8; read as iso8859_2" in n for n in data.notes)


def test_declared_encoding_that_does_not_fit(tmp_path: Path, src: Path) -> None:
    (src / "customers.csv").write_bytes((src / "customers.csv").read_bytes().replace(b"Jo Ray", b"J\xe9 Ray"))
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\ncsv: {encoding: utf-8}\n", encoding="utf-8")
    with pytest.raises(StructuralError) as exc:
        read_source(src, profile)
    assert "is not valid utf-8" in str(exc.value)
    assert exc.value.line == 2


def test_unknown_profile_lists_the_available_ones(src: Path) -> None:
    with pytest.raises(ProfileError) as exc:
        read_source(src, "nortwind")
    msg = str(exc.value)
    assert "unknown profile 'nortwind'" in msg
    assert "canonical, classicmodels, northwind" in msg


def test_source_folder_missing(tmp_path: Path) -> None:
    with pytest.raises(StructuralError) as exc:
        read_source(tmp_path / "nothing", "canonical")
    assert "source folder not found" in str(exc.value)
    assert "--source DIR" in str(exc.value)


def test_all_structural_problems_are_reported_together(src: Path) -> None:
    (src / "order_items.csv").unlink()
    (src / "products.csv").write_bytes(b"")
    _rewrite(src / "customers.csv", "customer_name", "company")
    with pytest.raises(StructuralError) as exc:
        read_source(src, "canonical")
    msg = str(exc.value)
    assert msg.startswith("3 structural problems in the source: (1) ")
    assert f"{src / 'customers.csv'}, column 'customer_name'" in msg
    assert f"{src / 'products.csv'}: empty file" in msg
    assert "expected file 'order_items.csv' not found" in msg
    assert msg.endswith("fix them all, then run again")


def test_ragged_record_that_cannot_be_repaired_is_a_rejected_line(src: Path) -> None:
    _rewrite(src / "customers.csv", "C2,Beta Games", "C2,Beta,Games")
    customers = read_source(src, "canonical").tables["customers"]
    assert customers.faults[["line", "rule"]].values.tolist() == [[3, "field_count"]]
    assert customers.faults["value"][0].startswith("C2,Beta,Games,")
    assert customers.frame.iloc[1].drop(["_source_file", "_source_line"]).isna().all()
    assert customers.lines == customers.read + customers.skipped


def test_ragged_repair_can_be_refused(tmp_path: Path, src: Path) -> None:
    _rewrite(src / "customers.csv", "C2,Beta Games", "C2,Beta, Games")
    assert read_source(src, "canonical").tables["customers"].frame["customer_name"][1] == "Beta, Games"
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\ncsv: {repair_ragged: false}\n", encoding="utf-8")
    faults = read_source(src, profile).tables["customers"].faults
    assert faults[["line", "rule"]].values.tolist() == [[3, "field_count"]]


def test_most_records_broken_is_structural(src: Path) -> None:
    path = src / "customers.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([lines[0], *(line + ",x" for line in lines[1:])]) + "\n", encoding="utf-8")
    with pytest.raises(StructuralError) as exc:
        read_source(src, "canonical")
    assert exc.value.line == 2
    assert "records do not split into the header's 9 fields (first: line 2, field count)" in str(exc.value)
