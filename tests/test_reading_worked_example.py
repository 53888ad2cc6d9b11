"""The worked example of docs/profiles.md: the documented profile reads the example files."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from salesbi.reading.profile import parse_profile
from salesbi.reading.reader import SourceData, read_source

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "tests" / "data" / "reading" / "worked_example"
DOC = ROOT / "docs" / "profiles.md"


def _documented_profile() -> str:
    found = re.search(r"```yaml fjordbikes\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert found, "docs/profiles.md lost its worked-example profile block"
    return found.group(1)


def test_docs_profile_is_the_checked_in_one() -> None:
    assert _documented_profile() == (EXAMPLE / "fjordbikes.yaml").read_text(encoding="utf-8")


def test_documented_headers_match_the_files() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for path in sorted(EXAMPLE.glob("*.csv")):
        header = path.read_text(encoding="utf-8").splitlines()[0]
        assert re.search(rf"^{re.escape(path.name)}\s+{re.escape(header)}$", doc, re.M), path.name


@pytest.fixture(scope="module")
def data() -> SourceData:
    profile = parse_profile(_documented_profile(), path=Path("fjordbikes.yaml"))
    return read_source(EXAMPLE, profile)


def test_documented_profile_reads_the_example(data: SourceData) -> None:
    assert {n: t.read for n, t in data.tables.items()} == {
        "offices": 2,
        "employees": 3,
        "customers": 3,
        "product_lines": 2,
        "products": 3,
        "orders": 4,
        "order_items": 6,
    }
    assert all(len(t.faults) == 0 for t in data.tables.values())
    assert "offices.territory: Fjord Bikes has no sales territories" in data.notes


def test_example_values(data: SourceData) -> None:
    orders = data.tables["orders"].frame.set_index("order_id")
    assert orders["status"].to_dict() == {
        "5001": "shipped",
        "5002": "placed",
        "5003": "cancelled",
        "5004": "returned",
    }
    assert orders.loc["5001", "order_date"] == pd.Timestamp("2024-01-03")  # 03.01.2024, day first
    assert orders.loc["5002", "ship_city"] == "Hamburg"  # looked up from clients.csv
    assert pd.isna(orders.loc["5002", "shipped_date"])
    items = data.tables["order_items"].frame
    assert items["line_number"].tolist() == [1, 2, 1, 1, 1, 2]
    assert items["discount"].tolist() == [0.0, 0.05, 0.1, 0.0, 0.0, 0.0]
    customers = data.tables["customers"].frame.set_index("customer_id")
    assert customers.loc["K-002", "customer_name"] == "Velo; Friends GmbH"
    assert customers.loc["K-001", "postal_code"] == "0150"  # ids and codes stay text
    employees = data.tables["employees"].frame.set_index("employee_id")
    assert employees.loc["2", "hire_date"] == pd.Timestamp("2019-08-15")
