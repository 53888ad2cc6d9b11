"""Reading the real classicmodels and Northwind exports through their shipped profiles.

Expected counts come from the dataset README and were cross-checked with
Python's csv module; spot values are compared with the raw files read that way.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from salesbi import contract
from salesbi.reading.reader import SourceData, core_frames, read_source
from salesbi.schema import SOURCE_FILE, SOURCE_LINE
from salesbi.types import pandas_dtype

pytestmark = pytest.mark.realdata


def _raw_rows(path: Path, delimiter: str) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


@pytest.fixture(scope="module")
def classic(classicmodels_dir: Path) -> SourceData:
    return read_source(classicmodels_dir, "classicmodels")


@pytest.fixture(scope="module")
def northwind(northwind_dir: Path) -> SourceData:
    return read_source(northwind_dir, "northwind")


def _assert_shape(data: SourceData) -> None:
    assert list(data.tables) == [t.name for t in contract.TABLES]
    for name, st in data.tables.items():
        expected = [*st.table.column_names, SOURCE_FILE, SOURCE_LINE]
        assert list(st.frame.columns) == expected, name
        for col in st.table.columns:
            assert str(st.frame[col.name].dtype) == pandas_dtype(col), (name, col.name)
        assert str(st.frame["_source_line"].dtype) == "Int64"
        assert st.read == len(st.frame)
        assert list(st.faults.columns) == ["file", "line", "column", "rule", "value"]


def test_classicmodels_counts_and_no_faults(classic: SourceData) -> None:
    counts = {name: st.read for name, st in classic.tables.items()}
    assert counts == {
        "offices": 7,
        "employees": 23,
        "customers": 122,
        "product_lines": 7,
        "products": 110,
        "orders": 326,
        "order_items": 2996,
    }
    # the only findings: seven product descriptions with quoted line breaks (loaded, listed as warnings)
    faults = {name: len(st.faults) for name, st in classic.tables.items()}
    assert faults == {**dict.fromkeys(counts, 0), "products": 7}
    spans = classic.tables["products"].faults
    assert set(spans["rule"]) == {"record_spans_lines"}
    assert spans["value"].tolist()[:2] == ["lines 5-6", "lines 40-42"]
    assert {n: (st.lines, st.skipped) for n, st in classic.tables.items()}["products"] == (118, 8)
    _assert_shape(classic)
    core = core_frames(classic)
    assert all("_source_file" not in f.columns for f in core.values())
    assert list(core["orders"].columns) == contract.ORDERS.column_names


def test_classicmodels_values_match_raw_files(classic: SourceData, classicmodels_dir: Path) -> None:
    customers = classic.tables["customers"].frame.set_index("customer_id")
    raw_cust = {r["customerNumber"]: r for r in _raw_rows(classicmodels_dir / "customers.csv", ";")}
    assert customers.loc["103", "customer_name"] == raw_cust["103"]["customerName"] == "Atelier graphique"
    assert customers.loc["103", "country"] == "France"
    assert customers.loc["103", "contact_name"] == "Carine Schmitt"  # "Carine " trimmed + last name
    assert customers.loc["103", "sales_rep_id"] == raw_cust["103"]["salesRepEmployeeNumber"] == "1370"
    assert customers.loc["112", "credit_limit"] == float(raw_cust["112"]["creditLimit"]) == 71800.0

    orders = classic.tables["orders"].frame.set_index("order_id")
    assert orders.loc["10100", "order_date"] == pd.Timestamp("2003-01-06")
    assert orders.loc["10100", "status"] == "shipped"
    raw_orders = _raw_rows(classicmodels_dir / "orders.csv", ";")
    words = {r["orderNumber"]: r["status"] for r in raw_orders}
    mapping = {
        "Shipped": "shipped",
        "Resolved": "shipped",
        "Cancelled": "cancelled",
        "On Hold": "on_hold",
        "Disputed": "disputed",
        "In Process": "placed",
    }
    assert {k: mapping[v] for k, v in words.items()} == orders["status"].to_dict()
    assert orders.loc["10164", "status"] == "shipped"  # Resolved
    assert orders["status"].value_counts().to_dict() == {
        "shipped": 307,
        "cancelled": 6,
        "placed": 6,
        "on_hold": 4,
        "disputed": 3,
    }
    assert orders["employee_id"].isna().all()

    items = classic.tables["order_items"].frame.set_index(["order_id", "line_number"])
    assert items.loc[("10100", 3), "product_id"] == "S18_1749"
    assert items.loc[("10100", 3), "unit_price"] == 136.00
    assert items.loc[("10100", 3), "quantity"] == 30
    assert (classic.tables["order_items"].frame["discount"] == 0).all()

    products = classic.tables["products"].frame.set_index("product_id")
    assert products.loc["S10_1678", "unit_cost"] == 48.81
    assert products.loc["S10_1678", "list_price"] == 95.70
    lines = classic.tables["product_lines"].frame
    assert (lines["name"] == lines["product_line_id"]).all()
    assert "Classic Cars" in set(lines["product_line_id"])


def test_classicmodels_source_lines_point_at_the_record(classic: SourceData, classicmodels_dir: Path) -> None:
    """products.csv has quoted embedded newlines (119 physical lines, 110 records)."""
    physical = (classicmodels_dir / "products.csv").read_text(encoding="utf-8").split("\n")
    assert len(physical) - 1 > 111  # the file really has embedded newlines
    frame = classic.tables["products"].frame
    for code, line in zip(frame["product_id"], frame["_source_line"], strict=True):
        assert physical[line - 1].lstrip('"').startswith(f"{code};"), (code, line)
    assert frame["_source_line"].is_monotonic_increasing
    assert frame["_source_line"].iloc[-1] > 111


def test_northwind_counts_and_no_faults(northwind: SourceData) -> None:
    counts = {name: st.read for name, st in northwind.tables.items()}
    # offices by hand from employees.csv: Seattle, Tacoma, Kirkland, Redmond (USA), London (UK)
    assert counts == {
        "offices": 5,
        "employees": 9,
        "customers": 91,
        "product_lines": 8,
        "products": 77,
        "orders": 830,
        "order_items": 2155,
    }
    assert {name: len(st.faults) for name, st in northwind.tables.items()} == dict.fromkeys(counts, 0)
    _assert_shape(northwind)
    assert northwind.tables["offices"].files == ()


def test_northwind_derivations(northwind: SourceData, northwind_dir: Path) -> None:
    offices = northwind.tables["offices"].frame
    assert sorted(offices["office_id"]) == [
        "UK-London",
        "USA-Kirkland",
        "USA-Redmond",
        "USA-Seattle",
        "USA-Tacoma",
    ]
    assert offices.set_index("office_id").loc["USA-Seattle", "state"] == "WA"
    employees = northwind.tables["employees"].frame.set_index("employee_id")
    raw_emp = {r["employeeID"]: r for r in _raw_rows(northwind_dir / "employees.csv", ",")}
    for emp_id, row in raw_emp.items():
        assert employees.loc[emp_id, "office_id"] == f"{row['country']}-{row['city']}"
    assert set(employees["office_id"]) == set(offices["office_id"])
    assert pd.isna(employees.loc["2", "manager_id"])  # the literal NULL
    assert employees.loc["1", "hire_date"] == pd.Timestamp("1992-05-01")

    products = northwind.tables["products"].frame
    assert products["unit_cost"].isna().all()
    assert any("gross profit will be null" in n for n in northwind.notes)
    assert products.set_index("product_id").loc["1", "vendor"] == "Exotic Liquids"

    orders = northwind.tables["orders"].frame.set_index("order_id")
    assert orders.loc["10248", "order_date"] == pd.Timestamp("1996-07-04")
    assert orders.loc["10248", "status"] == "shipped"
    with (northwind_dir / "orders.csv").open(encoding="utf-8", newline="") as fh:
        raw_orders = {r[0]: r for r in list(csv.reader(fh))[1:]}
    unshipped = [k for k, r in raw_orders.items() if r[5] == "NULL"]  # shippedDate, before any ragged field
    assert len(unshipped) == 21
    assert set(orders.index[orders["status"] == "placed"]) == set(unshipped)

    items = northwind.tables["order_items"].frame
    first = items[items["order_id"] == "10248"]
    assert first["line_number"].tolist() == [1, 2, 3]
    assert first["product_id"].tolist() == ["11", "42", "72"]
    assert first["unit_price"].tolist() == [14.0, 9.8, 34.8]
    assert not items.duplicated(["order_id", "line_number"]).any()
    customers = northwind.tables["customers"].frame.set_index("customer_id")
    assert customers.loc["ALFKI", "customer_name"] == "Alfreds Futterkiste"
    assert customers.loc["ALFKI", "country"] == "Germany"
    assert customers["sales_rep_id"].isna().all()


def test_northwind_unquoted_commas_are_joined_back(northwind: SourceData) -> None:
    """customers.csv line 8 reads `...,24, place Kléber,Strasbourg,...` with no quotes."""
    customers = northwind.tables["customers"].frame.set_index("customer_id")
    assert customers.loc["BLONP", "city"] == "Strasbourg"
    assert customers.loc["BLONP", "postal_code"] == "67000"
    assert customers.loc["BLONP", "_source_line"] == 8
    orders = northwind.tables["orders"].frame.set_index("order_id")
    assert orders.loc["10250", "ship_city"] == "Rio de Janeiro"
    assert orders.loc["10250", "ship_country"] == "Brazil"
    assert any("customers.csv: 24 record(s)" in n for n in northwind.notes)
