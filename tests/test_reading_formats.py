"""Detection of encoding, delimiter, quoting and date formats; typing faults kept with their line."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from salesbi.reading.detect import detect_date_format, detect_delimiter, detect_encoding
from salesbi.reading.reader import read_source
from salesbi.validation.validate import validate_staged

MINI = Path(__file__).parent / "data" / "reading" / "mini"

CUSTOMERS_HEADER = [
    "customer_id",
    "customer_name",
    "contact_name",
    "city",
    "state",
    "country",
    "postal_code",
    "sales_rep_id",
    "credit_limit",
]
ACCENTED = [
    ["C1", "Café Müller", "José Ñúñez", "Zürich", "", "Switzerland", "8001", "10", "5000"],
    ["C2", "Beta Games", "Kim Lee", "Dallas", "TX", "USA", "75201", "11", "12000.50"],
    ["C3", "Crème Brûlée SARL", "Zoë Dupré", "Orléans", "", "France", "45000", "10", ""],
]


@pytest.fixture()
def src(tmp_path: Path) -> Path:
    out = tmp_path / "src"
    shutil.copytree(MINI, out)
    return out


def _write(path: Path, rows: list[list[str]], delimiter: str = ",", encoding: str = "utf-8") -> None:
    text = "\n".join(delimiter.join(r) for r in rows) + "\n"
    path.write_bytes(text.encode(encoding))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_encodings_are_detected(src: Path, encoding: str) -> None:
    _write(src / "customers.csv", [CUSTOMERS_HEADER, *ACCENTED], encoding=encoding)
    assert detect_encoding((src / "customers.csv").read_bytes(), src / "customers.csv") == encoding
    frame = read_source(src, "canonical").tables["customers"].frame
    assert list(frame.columns[:2]) == ["customer_id", "customer_name"]  # no BOM glued to the header
    assert frame["customer_name"].tolist() == ["Café Müller", "Beta Games", "Crème Brûlée SARL"]
    assert frame["contact_name"][0] == "José Ñúñez"
    assert frame["city"][2] == "Orléans"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_are_detected(src: Path, delimiter: str) -> None:
    _write(src / "customers.csv", [CUSTOMERS_HEADER, *ACCENTED], delimiter=delimiter)
    assert detect_delimiter((src / "customers.csv").read_text(encoding="utf-8")) == delimiter
    frame = read_source(src, "canonical").tables["customers"].frame
    assert frame["credit_limit"].tolist()[:2] == [5000.0, 12000.5]


def test_embedded_newlines_and_delimiters_keep_exact_source_lines(src: Path) -> None:
    (src / "customers.csv").write_text(
        ";".join(CUSTOMERS_HEADER) + "\n"  # line 1
        'C1;"Alpha; Toys";"Jo\nRay";Paris;;France;75001;10;5000\n'  # lines 2-3
        'C2;"Beta\n\nGames";Kim Lee;Dallas;TX;USA;75201;11;12000.50\n'  # lines 4-6
        "\n"  # line 7, blank
        'C3;Gamma Kids;"Lu ""the boss"" Ma";Nice;;France;06000;10;\n',  # line 8
        encoding="utf-8",
    )
    data = read_source(src, "canonical")
    frame = data.tables["customers"].frame
    assert frame["_source_line"].tolist() == [2, 4, 8]
    assert frame["customer_name"].tolist() == ["Alpha; Toys", "Beta\n\nGames", "Gamma Kids"]
    assert frame["contact_name"].tolist() == ["Jo\nRay", "Kim Lee", 'Lu "the boss" Ma']
    assert frame["_source_file"].tolist() == ["customers.csv"] * 3


def test_values_are_trimmed_and_null_tokens_applied(src: Path) -> None:
    (src / "customers.csv").write_text(
        ",".join(CUSTOMERS_HEADER) + "\n"
        "  C1 , Alpha Toys ,NULL,Paris,  ,France,75001,10, 5000 \n"
        'C2,"  Beta Games",Kim Lee,Dallas,TX,USA,75201,11,""\n'
        "C3,Gamma,Lu,Nice,,France,06000,NULL,\n",
        encoding="utf-8",
    )
    frame = read_source(src, "canonical").tables["customers"].frame
    assert frame["customer_id"].tolist() == ["C1", "C2", "C3"]
    assert frame["customer_name"].tolist() == ["Alpha Toys", "Beta Games", "Gamma"]
    assert frame["contact_name"].isna().tolist() == [True, False, False]
    assert frame["state"].isna().tolist() == [True, False, True]
    assert frame["credit_limit"][0] == 5000.0
    assert frame["credit_limit"][1:].isna().all()
    assert pd.isna(frame["sales_rep_id"][2])


ORDERS_HEADER = (
    "order_id,customer_id,employee_id,order_date,required_date,shipped_date,status,ship_city,ship_country"
)


def _orders(src: Path, dates: list[str]) -> pd.DataFrame:
    lines = [ORDERS_HEADER]
    for i, d in enumerate(dates):
        lines.append(f"{1001 + i},C1,10,{d},,,placed,Paris,France")
    (src / "orders.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = read_source(src, "canonical")
    st = data.tables["orders"]
    st.frame.attrs["notes"] = data.notes
    st.frame.attrs["faults"] = st.faults
    return st.frame


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["2003-01-06", "2003-12-31"], ["2003-01-06", "2003-12-31"]),
        (["1996-07-04 00:00:00.000", "1998-05-06 00:00:00.000"], ["1996-07-04", "1998-05-06"]),
        (["2003-01-06T14:30:00"], ["2003-01-06"]),
        (["20030106", "20031231"], ["2003-01-06", "2003-12-31"]),
        (["25/12/2003", "01/02/2004"], ["2003-12-25", "2004-02-01"]),  # 25 > 12: day first
        (["12/25/2003", "01/02/2004"], ["2003-12-25", "2004-01-02"]),  # 25 > 12: month first
        (["25.12.2003", "1.2.2004"], ["2003-12-25", "2004-02-01"]),
    ],
)
def test_date_formats(src: Path, values: list[str], expected: list[str]) -> None:
    frame = _orders(src, values)
    assert frame["order_date"].tolist() == [pd.Timestamp(v) for v in expected]
    assert str(frame["order_date"].dtype) == "datetime64[s]"
    assert len(frame.attrs["faults"]) == 0


def test_ambiguous_dates_use_day_first_with_a_note(src: Path) -> None:
    frame = _orders(src, ["01/02/2004", "03/04/2004"])
    assert frame["order_date"].tolist() == [pd.Timestamp("2004-02-01"), pd.Timestamp("2004-04-03")]
    notes = " ".join(frame.attrs["notes"])
    assert "orders.order_date: dates are ambiguous" in notes
    assert "day-first (dd/mm/yyyy)" in notes


def test_profile_overrides_the_date_format(tmp_path: Path, src: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\ntables:\n  orders:\n    dates: {order_date: '%m/%d/%Y'}\n", encoding="utf-8")
    (src / "orders.csv").write_text(ORDERS_HEADER + "\n1001,C1,10,01/02/2004,,,placed,Paris,France\n")
    frame = read_source(src, profile).tables["orders"].frame
    assert frame["order_date"][0] == pd.Timestamp("2004-01-02")


def test_detect_date_format_directly() -> None:
    assert detect_date_format(["2001-02-03"], dayfirst_default=True, column="d").format == "ISO8601"
    assert detect_date_format(["13/01/2001"], dayfirst_default=False, column="d").format == "%d/%m/%Y"
    amb = detect_date_format(["01/02/2001"], dayfirst_default=False, column="d")
    assert amb.format == "%m/%d/%Y" and amb.note is not None and "month-first" in amb.note


def test_typing_faults_keep_the_row(src: Path) -> None:
    (src / "orders.csv").write_text(
        ORDERS_HEADER + "\n"
        "1001,C1,10,2024-01-05,,,shipped,Paris,France\n"
        '1002,C2,11,"2024-02-30",,,Shipped,Dallas,USA\n'  # impossible date; status word in other case
        "1003,C3,10,2024-02-11,,,lost,Nice,France\n",  # a status the contract does not know
        encoding="utf-8",
    )
    (src / "order_items.csv").write_text(
        "order_id,line_number,product_id,quantity,unit_price,discount\n"
        "1001,1,P1,2,19.90,0\n"
        "1001,2,P3,two,39.00,0.1\n"
        "1002,1,P2,5,12.5O,\n"
        "1003,1,P1,1.5,19.90,\n",
        encoding="utf-8",
    )
    data = read_source(src, "canonical")
    orders = data.tables["orders"]
    assert orders.read == 3
    assert orders.faults.to_dict("records") == [
        {
            "file": "orders.csv",
            "line": 3,
            "column": "order_date",
            "rule": "invalid_date",
            "value": "2024-02-30",
        },
        {"file": "orders.csv", "line": 4, "column": "status", "rule": "unmapped_value", "value": "lost"},
    ]
    assert orders.frame["status"].tolist()[:2] == ["shipped", "shipped"]
    assert pd.isna(orders.frame["status"][2]) and pd.isna(orders.frame["order_date"][1])
    items = data.tables["order_items"]
    assert items.read == 4
    assert items.faults.to_dict("records") == [
        {
            "file": "order_items.csv",
            "line": 3,
            "column": "quantity",
            "rule": "invalid_integer",
            "value": "two",
        },
        {
            "file": "order_items.csv",
            "line": 4,
            "column": "unit_price",
            "rule": "invalid_number",
            "value": "12.5O",
        },
        {
            "file": "order_items.csv",
            "line": 5,
            "column": "quantity",
            "rule": "invalid_integer",
            "value": "1.5",
        },
    ]
    assert items.frame["quantity"].isna().tolist() == [False, True, False, True]
    assert items.frame["discount"].tolist() == [0.0, 0.1, 0.0, 0.0]  # the profile default fills nulls


def test_invalid_number_fault(src: Path) -> None:
    (src / "products.csv").write_text(
        "product_id,product_name,product_line_id,vendor,unit_cost,list_price,quantity_in_stock\n"
        "P1,Castle 1000,PL1,Ravenwood,7.50,19.90,120\n"
        "P2,Ocean 500,PL1,Ravenwood,abc,12.50,80\n",
        encoding="utf-8",
    )
    st = read_source(src, "canonical").tables["products"]
    assert st.faults.to_dict("records") == [
        {"file": "products.csv", "line": 3, "column": "unit_cost", "rule": "invalid_number", "value": "abc"}
    ]
    assert st.frame["unit_cost"].isna().tolist() == [False, True]
    assert st.frame["list_price"].tolist() == [19.9, 12.5]


def test_crlf_line_endings_with_and_without_embedded_breaks(src: Path) -> None:
    rows = [",".join(CUSTOMERS_HEADER), *(",".join(r) for r in ACCENTED)]
    (src / "customers.csv").write_bytes("\r\n".join(rows).encode("utf-8") + b"\r\n")
    frame = read_source(src, "canonical").tables["customers"].frame
    assert frame["_source_line"].tolist() == [2, 3, 4]
    assert frame["credit_limit"].tolist()[:2] == [5000.0, 12000.5]
    rows[1] = rows[1].replace("José Ñúñez", '"José\r\nÑúñez"')
    (src / "customers.csv").write_bytes("\r\n".join(rows).encode("utf-8") + b"\r\n")
    frame = read_source(src, "canonical").tables["customers"].frame
    assert frame["_source_line"].tolist() == [2, 4, 5]
    assert frame["contact_name"][0] == "José\r\nÑúñez"


def test_a_glob_reads_every_matching_file_in_name_order(tmp_path: Path, src: Path) -> None:
    header = "order_id,line_number,product_id,quantity,unit_price,discount\n"
    (src / "order_items.csv").unlink()
    (src / "items_2024_02.csv").write_text(header + "1003,1,P1,1,19.90,0\n", encoding="utf-8")
    (src / "items_2024_01.csv").write_text(
        header + "1001,1,P1,2,19.90,0\n1002,1,P2,5,12.50,\n", encoding="utf-8"
    )
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\ntables:\n  order_items:\n    file: 'items_*.csv'\n", encoding="utf-8")
    st = read_source(src, profile).tables["order_items"]
    assert [p.name for p in st.files] == ["items_2024_01.csv", "items_2024_02.csv"]
    assert st.frame["order_id"].tolist() == ["1001", "1002", "1003"]
    assert st.frame["_source_file"].tolist() == [
        "items_2024_01.csv",
        "items_2024_01.csv",
        "items_2024_02.csv",
    ]
    assert st.frame["_source_line"].tolist() == [2, 3, 2]


def test_a_fault_in_one_of_several_files_rejects_only_its_own_row(src: Path, tmp_path: Path) -> None:
    # orders split over two files read by a glob: line 2 of each file is a different order, and
    # both have shipped_date null after reading (one unreadable, one genuinely empty)
    header = (MINI / "orders.csv").read_text(encoding="utf-8").splitlines()[0] + "\n"
    (src / "orders.csv").unlink()
    (src / "orders_a.csv").write_text(
        header + "1001,C1,10,2024-01-05,2024-01-12,2024-01-38,shipped,Paris,France\n", encoding="utf-8"
    )
    (src / "orders_b.csv").write_text(
        header
        + "1002,C2,11,2024-01-09,2024-01-16,,placed,Dallas,USA\n"
        + "1003,C3,10,2024-02-11,2024-02-18,2024-02-13,cancelled,Nice,France\n",
        encoding="utf-8",
    )
    profile = tmp_path / "split.yaml"
    profile.write_text("tables:\n  orders:\n    file: orders_*.csv\n", encoding="utf-8")
    data = read_source(src, profile)
    orders = data.tables["orders"]
    assert orders.frame["_source_file"].tolist() == ["orders_a.csv", "orders_b.csv", "orders_b.csv"]
    assert orders.faults[["file", "line", "column", "rule"]].to_dict("records") == [
        {"file": "orders_a.csv", "line": 2, "column": "shipped_date", "rule": "invalid_date"}
    ]
    outcome = validate_staged(data.tables, run_id="r", today=date(2025, 6, 1))
    rejected = outcome.rejected_rows
    assert rejected[["table_name", "natural_key", "source_file", "source_line", "rule"]].to_dict(
        "records"
    ) == [
        {
            "table_name": "orders",
            "natural_key": "order_id=1001",
            "source_file": "orders_a.csv",
            "source_line": 2,
            "rule": "invalid_date",
        },
        *[
            {
                "table_name": "order_items",
                "natural_key": key,
                "source_file": "order_items.csv",
                "source_line": line,
                "rule": "parent_rejected",
            }
            for key, line in (("order_id=1001|line_number=1", 2), ("order_id=1001|line_number=2", 3))
        ],
    ]
    assert sorted(outcome.accepted["orders"]["order_id"]) == ["1002", "1003"]


def test_a_header_naming_a_column_twice_reads_the_first_with_a_note(src: Path) -> None:
    header = [*CUSTOMERS_HEADER[:5], "state", *CUSTOMERS_HEADER[5:]]
    rows = [[*r[:5], "XX", *r[5:]] for r in ACCENTED]
    _write(src / "customers.csv", [header, *rows])
    data = read_source(src, "canonical")
    frame = data.tables["customers"].frame
    assert frame["state"].isna().tolist() == [True, False, True] and frame["state"][1] == "TX"
    assert frame["country"].tolist()[0] == "Switzerland"
    notes = " ".join(data.tables["customers"].notes + data.notes)
    assert "customers.csv: the header names 'state' more than once; column 6 is read as 'state.1'" in notes
