"""A corpus of bad inputs (tests/data/bad_inputs/company): where every fault ends up, and its message."""

from __future__ import annotations

import importlib.util
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from salesbi.errors import StructuralError

COMPANY = Path(__file__).parent / "data" / "bad_inputs" / "company"
TODAY = date(2025, 6, 1)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("salesbi.reading.reader") is None, reason="salesbi.reading.reader not landed yet"
)


@pytest.fixture(scope="module")
def outcome():  # type: ignore[no-untyped-def]
    from salesbi.reading.reader import read_source
    from salesbi.validation.validate import validate_staged

    data = read_source(COMPANY, "canonical")
    return validate_staged(data.tables, run_id="corpus", today=TODAY)


def reasons(outcome, table: str, key: str) -> set[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    r = outcome.rejected_rows
    sub = r[(r["table_name"] == table) & (r["natural_key"] == key)]
    return {(str(x.rule), None if pd.isna(x.column_name) else str(x.column_name)) for x in sub.itertuples()}


# (table, natural key, source line, {(rule, column)}, text the user reads in the message)
REJECTS = [
    ("employees", "employee_id=13", 4, {("foreign_key", "office_id")}, "office_id 9 is not a known offices"),
    ("employees", "employee_id=14", 5, {("email_invalid", "email")}, "eve(at)example does not look like"),
    ("employees", "employee_id=15", 6, {("parent_rejected", "manager_id")}, "employees employee_id=13 was"),
    (
        "customers",
        "customer_id=C3",
        4,
        {("text_formula", "customer_name")},
        "starts like a spreadsheet formula",
    ),
    ("customers", "customer_id=C4", 5, {("not_null", "city")}, "city is required but empty"),
    ("customers", "customer_id=C5", 6, {("parent_rejected", "sales_rep_id")}, "employee_id=13 was rejected"),
    (
        "customers",
        "customer_id=C6",
        7,
        {("invalid_number", "credit_limit")},
        "could not read lots as a number",
    ),
    (
        "products",
        "product_id=P5",
        6,
        {("foreign_key", "product_line_id")},
        "PL7 is not a known product_lines",
    ),
    ("orders", "order_id=1003", 4, {("foreign_key", "customer_id")}, "C99 is not a known customers"),
    (
        "orders",
        "order_id=1004",
        5,
        {("shipped_before_ordered", "shipped_date")},
        "2024-01-30 is before order_date 2024-02-03",
    ),
    ("orders", "order_id=1005", 6, {("order_date_in_future", "order_date")}, "2099-01-01 is in the future"),
    (
        "orders",
        "order_id=1006",
        7,
        {("order_date_too_old", "order_date")},
        "1970-06-01 is before the earliest",
    ),
    (
        "orders",
        "order_id=1007",
        8,
        {("unmapped_value", "status"), ("not_null", "status")},
        "Teleported is not an allowed value",
    ),
    (
        "orders",
        "order_id=1008",
        9,
        {("invalid_date", "order_date"), ("not_null", "order_date")},
        "could not read 15.03.2024 as a date",
    ),
    (
        "orders",
        "order_id=1011",
        14,
        {("parent_rejected", "customer_id")},
        "customers customer_id=C3 was rejected",
    ),
    (
        "orders",
        "order_id=1012",
        15,
        {("parent_rejected", "customer_id"), ("parent_rejected", "employee_id")},
        "customer_id=C5 was rejected",
    ),
    (
        "order_items",
        "order_id=1003|line_number=1",
        5,
        {("parent_rejected", "order_id")},
        "orders order_id=1003",
    ),
    (
        "order_items",
        "order_id=1009|line_number=1",
        6,
        {("parent_rejected", "order_id")},
        "orders order_id=1009",
    ),
    (
        "order_items",
        "order_id=1011|line_number=1",
        8,
        {("parent_rejected", "order_id")},
        "orders order_id=1011",
    ),
    (
        "order_items",
        "order_id=1012|line_number=1",
        9,
        {("parent_rejected", "order_id")},
        "orders order_id=1012",
    ),
    (
        "order_items",
        "order_id=1013|line_number=1",
        10,
        {("invalid_integer", "quantity"), ("not_null", "quantity")},
        "could not read two as a whole number",
    ),
    (
        "order_items",
        "order_id=1013|line_number=2",
        11,
        {("quantity_not_positive", "quantity")},
        "quantity -3 is negative on an order that is not cancelled",
    ),
    (
        "order_items",
        "order_id=1013|line_number=3",
        12,
        {("unit_price_negative", "unit_price")},
        "unit_price must be 0 or more, got -1",
    ),
    (
        "order_items",
        "order_id=1013|line_number=4",
        13,
        {("discount_out_of_range", "discount")},
        "must be in [0, 1), got 1.5",
    ),
    (
        "order_items",
        "order_id=1013|line_number=5",
        14,
        {("foreign_key", "product_id")},
        "P77 is not a known products",
    ),
    (
        "order_items",
        "order_id=1013|line_number=6",
        15,
        {("parent_rejected", "product_id")},
        "products product_id=P5 was rejected",
    ),
]


@pytest.mark.parametrize(("table", "key", "line", "expected", "text"), REJECTS, ids=[r[1] for r in REJECTS])
def test_fault_is_rejected_with_reason_and_message(outcome, table, key, line, expected, text) -> None:  # type: ignore[no-untyped-def]
    assert reasons(outcome, table, key) == expected
    r = outcome.rejected_rows
    sub = r[(r["table_name"] == table) & (r["natural_key"] == key)]
    assert set(sub["source_line"]) == {line}
    assert set(sub["source_file"]) == {f"{table}.csv"}
    assert set(sub["severity"]) == {"reject"}
    assert sub["message"].str.contains(text, regex=False).any(), sub["message"].tolist()
    spec_key = key.split("|")[0].split("=")
    accepted = outcome.accepted[table]
    if table != "order_items":
        assert spec_key[1] not in set(accepted[spec_key[0]])


def test_conflicting_duplicates_are_all_rejected(outcome) -> None:  # type: ignore[no-untyped-def]
    r = outcome.rejected_rows
    dup = r[r["rule"] == "duplicate_key"]
    assert sorted(dup["source_line"]) == [10, 11]
    assert set(dup["natural_key"]) == {"order_id=1009"}
    assert "with different values" in dup["message"].iloc[0]


def test_identical_duplicate_keeps_first_copy(outcome) -> None:  # type: ignore[no-untyped-def]
    r = outcome.rejected_rows
    copy = r[r["rule"] == "duplicate_identical"]
    assert list(copy["source_line"]) == [13]
    orders = outcome.accepted["orders"]
    assert list(orders.loc[orders["order_id"] == "1010", "_source_line"]) == [12]
    lines = outcome.accepted["order_items"]
    assert "1010" in set(lines["order_id"])  # its line is loaded: the order key was accepted


def test_cost_above_three_times_list_price_is_a_warning_and_loaded(outcome) -> None:  # type: ignore[no-untyped-def]
    w = outcome.warnings
    assert list(w["natural_key"]) == ["product_id=P4"]
    assert list(w["rule"]) == ["unit_cost_above_3x_list_price"]
    assert list(w["severity"]) == ["warn"]
    assert "unit_cost 95 is more than 3 × list_price (3 × list_price = 60)" in w["message"].iloc[0]
    assert "P4" in set(outcome.accepted["products"]["product_id"])
    lines = outcome.accepted["order_items"]
    assert list(lines.loc[lines["product_id"] == "P4", "line_number"]) == [7]


def test_bom_file_reads_and_loads(outcome) -> None:  # type: ignore[no-untyped-def]
    assert list(outcome.accepted["offices"]["office_id"]) == ["1", "2", "3"]


def test_counts_add_up_to_hand_counts(outcome) -> None:  # type: ignore[no-untyped-def]
    counted = {n: (c.read, c.loaded, c.rejected) for n, c in outcome.counts.items()}
    assert counted == {
        "offices": (3, 3, 0),
        "employees": (5, 2, 3),
        "customers": (6, 2, 4),
        "product_lines": (2, 2, 0),
        "products": (5, 4, 1),
        "orders": (15, 4, 11),
        "order_items": (15, 5, 10),
    }
    for name, c in outcome.counts.items():
        assert c.read == c.loaded + c.rejected
        assert c.loaded == len(outcome.accepted[name])
        # a record with several reasons is counted once
        rej = outcome.rejected_rows
        assert (
            c.rejected
            == rej.loc[rej["table_name"] == name, ["source_file", "source_line"]].drop_duplicates().shape[0]
        )
    assert sorted(outcome.accepted["orders"]["order_id"]) == ["1001", "1002", "1010", "1013"]


def test_rejected_rows_match_the_audit_table(outcome) -> None:  # type: ignore[no-untyped-def]
    from salesbi.validation.tables import REJECTED_ROWS

    both = pd.concat([outcome.rejected_rows, outcome.warnings], ignore_index=True)
    assert list(both.columns) == REJECTED_ROWS.column_names
    assert both["reject_id"].is_unique
    assert list(both["reject_id"]) == list(range(1, len(both) + 1))
    assert set(both["run_id"]) == {"corpus"}
    assert both[list(REJECTED_ROWS.required_columns)].notna().all().all()


def test_accepted_frames_keep_staged_columns_and_index(outcome) -> None:  # type: ignore[no-untyped-def]
    from salesbi.reading.reader import read_source

    data = read_source(COMPANY, "canonical")
    for name, t in data.tables.items():
        acc = outcome.accepted[name]
        assert list(acc.columns) == list(t.frame.columns)
        assert set(acc.index) <= set(t.frame.index)


def test_truncated_last_line_stops_before_validation(tmp_path: Path) -> None:
    from salesbi.reading.reader import read_source

    folder = tmp_path / "company"
    shutil.copytree(COMPANY, folder)
    with (folder / "order_items.csv").open("a", encoding="utf-8") as f:
        f.write("1013,8,P2,1")  # cut off mid-record, no newline
    with pytest.raises(StructuralError) as err:
        read_source(folder, "canonical")
    assert err.value.line == 17
    assert "record has 4 fields but the header has 6" in err.value.message
