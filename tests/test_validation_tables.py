"""Table-level failures, known keys and reports, on frames built here (no reader needed)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salesbi import contract
from salesbi.errors import ValidationFailed
from salesbi.types import conform, pandas_dtype
from salesbi.validation.config import load_config
from salesbi.validation.validate import StagedTableData, validate_staged

TODAY = date(2025, 6, 1)


def staged(name: str, rows: list[dict]) -> StagedTableData:
    spec = contract.table(name)
    raw = pd.DataFrame(rows)
    for c in spec.columns:
        if c.name not in raw.columns:
            raw[c.name] = pd.Series(None, index=raw.index, dtype=pandas_dtype(c))
    frame = conform(raw, spec)
    frame["_source_file"] = pd.Series(f"{name}.csv", index=frame.index, dtype="string")
    frame["_source_line"] = pd.Series(np.arange(2, len(frame) + 2), index=frame.index, dtype="Int64")
    return StagedTableData(table=spec, frame=frame, files=(Path(f"{name}.csv"),))


def company(orders: int = 4) -> dict[str, StagedTableData]:
    return {
        "offices": staged("offices", [{"office_id": "1", "city": "Lyon", "country": "France"}]),
        "employees": staged(
            "employees", [{"employee_id": "10", "first_name": "A", "last_name": "B", "office_id": "1"}]
        ),
        "customers": staged(
            "customers",
            [
                {
                    "customer_id": "C1",
                    "customer_name": "X",
                    "city": "Lyon",
                    "country": "France",
                    "sales_rep_id": "10",
                }
            ],
        ),
        "product_lines": staged("product_lines", [{"product_line_id": "L1", "name": "Toys"}]),
        "products": staged(
            "products",
            [{"product_id": "P1", "product_name": "Ball", "product_line_id": "L1", "list_price": 2.0}],
        ),
        "orders": staged(
            "orders",
            [
                {"order_id": str(i), "customer_id": "C1", "order_date": "2024-01-01", "status": "placed"}
                for i in range(1, orders + 1)
            ],
        ),
        "order_items": staged(
            "order_items",
            [
                {
                    "order_id": str(i),
                    "line_number": 1,
                    "product_id": "P1",
                    "quantity": 1,
                    "unit_price": 2.0,
                    "discount": 0.0,
                }
                for i in range(1, orders + 1)
            ],
        ),
    }


def test_clean_company_has_no_rejects() -> None:
    out = validate_staged(company(), run_id="r", today=TODAY)
    assert len(out.rejected_rows) == 0 and len(out.warnings) == 0
    assert {n: c.loaded for n, c in out.counts.items()}["order_items"] == 4


def test_zero_rows_fails_with_hint() -> None:
    tables = company()
    tables["products"] = staged("products", [])
    with pytest.raises(ValidationFailed) as err:
        validate_staged(tables, run_id="r", today=TODAY)
    msg = err.value.message
    assert "products: 0 rows read (rule zero_rows)" in msg
    assert "tables.allow_empty" in msg


def test_shrink_beyond_fraction_fails_and_can_be_allowed() -> None:
    tables = company(orders=4)
    with pytest.raises(ValidationFailed) as err:
        validate_staged(tables, run_id="r", today=TODAY, previous_counts={"orders": 10})
    msg = err.value.message
    assert (
        "orders: 4 rows read, 60% fewer than the 10 of the last good run (rule table_shrank, limit 50%)"
        in msg
    )
    assert "allow_shrink" in msg
    # 5 of 10 is exactly at the limit: allowed
    validate_staged(company(orders=5), run_id="r", today=TODAY, previous_counts={"orders": 10})
    relaxed = load_config().with_changes(allow_shrink=frozenset({"orders", "order_items"}))
    out = validate_staged(
        tables, run_id="r", today=TODAY, config=relaxed, previous_counts={"orders": 10, "order_items": 10}
    )
    assert out.counts["orders"].loaded == 4


def test_schema_mismatch_missing_column_and_wrong_type() -> None:
    tables = company()
    tables["orders"].frame = tables["orders"].frame.drop(columns=["status"])
    with pytest.raises(
        ValidationFailed, match=r"orders: schema mismatch \(rule schema\): column 'status' is missing"
    ):
        validate_staged(tables, run_id="r", today=TODAY)
    tables = company()
    tables["order_items"].frame["quantity"] = tables["order_items"].frame["quantity"].astype("float64")
    with pytest.raises(ValidationFailed, match="column 'quantity' is float64, the contract needs Int64"):
        validate_staged(tables, run_id="r", today=TODAY)
    tables = company()
    del tables["offices"]
    with pytest.raises(ValidationFailed, match=r"table\(s\) offices were not staged"):
        validate_staged(tables, run_id="r", today=TODAY)  # type: ignore[arg-type]


def test_references_resolve_against_known_keys() -> None:
    tables = company()
    tables["orders"] = staged(
        "orders", [{"order_id": "1", "customer_id": "C7", "order_date": "2024-01-01", "status": "placed"}]
    )
    tables["order_items"] = staged(
        "order_items",
        [
            {
                "order_id": "1",
                "line_number": 1,
                "product_id": "P9",
                "quantity": 1,
                "unit_price": 2.0,
                "discount": 0,
            }
        ],
    )
    out = validate_staged(tables, run_id="r", today=TODAY)
    got = list(
        zip(
            out.rejected_rows["table_name"],
            out.rejected_rows["rule"],
            out.rejected_rows["value"],
            strict=True,
        )
    )
    assert got == [
        ("orders", "foreign_key", "C7"),
        ("order_items", "foreign_key", "P9"),
        ("order_items", "parent_rejected", "1"),
    ]
    known = {
        "customers": pd.DataFrame({"customer_id": ["C7"]}, dtype="string"),
        "products": pd.DataFrame({"product_id": ["P9"]}, dtype="string"),
    }
    out = validate_staged(tables, run_id="r", today=TODAY, known_keys=known)
    assert len(out.rejected_rows) == 0
    assert out.counts["order_items"].loaded == 1


def test_reports(tmp_path: Path) -> None:
    from salesbi.validation.report import build_data_docs, render_validation_summary

    tables = company()
    tables["order_items"].frame.loc[0, "quantity"] = 0
    out = validate_staged(tables, run_id="rep", today=TODAY)
    text = render_validation_summary(out)
    assert "| order_items |  | 0 | 4 | 0 | 3 | 1 | 0 |" in text  # no files: no line accounting
    assert "| order_items | quantity_not_positive | quantity | 1 | `0` ×1 |" in text
    index = build_data_docs(out, tmp_path / "data_docs")
    assert index == tmp_path / "data_docs" / "index.html"
    assert index.exists()
    pages = list((tmp_path / "data_docs").rglob("order_items*.html"))
    assert pages
    # one expectation-suite page per table, linked from the index, listing the suite's rules
    suites = tmp_path / "data_docs" / "expectations"
    assert sorted(p.stem for p in suites.glob("*.html")) == sorted(t.name for t in contract.TABLES)
    assert "expectations/orders.html" in index.read_text(encoding="utf-8")
    assert "order_date" in (suites / "orders.html").read_text(encoding="utf-8")


def test_dates_beyond_the_nanosecond_range_are_rejected_with_their_own_value() -> None:
    # GX sees nanosecond dates (gxrun.for_gx clips 1500 and 2400 to 1677/2262): the rows must still
    # be rejected by the date rules, and the messages must quote the values as read
    tables = company(orders=4)
    frame = tables["orders"].frame
    frame.loc[0, "order_date"] = pd.Timestamp("1500-03-01").as_unit("s")
    frame.loc[1, "order_date"] = np.datetime64("2400-01-01", "s")
    assert str(frame["order_date"].dtype) == "datetime64[s]"
    out = validate_staged(tables, run_id="r", today=TODAY)
    r = out.rejected_rows
    orders = r[(r["table_name"] == "orders") & (r["severity"] == "reject")]
    by_key = dict(zip(orders["natural_key"], orders["rule"], strict=True))
    assert by_key == {"order_id=1": "order_date_too_old", "order_id=2": "order_date_in_future"}
    messages = " ".join(orders["message"])
    assert "1500-03-01" in messages and "2400-01-01" in messages
    assert out.counts["orders"].loaded == 2
    # their lines go with them (parent rejected); the other two orders load
    assert out.counts["order_items"].loaded == 2


def test_range_rules_hold_on_nullable_integers_with_and_without_nulls() -> None:
    # a null-free Int64 column reaches GX as int64 (vectorised); one with a null stays Int64
    for null_in_column in (False, True):
        tables = company(orders=4)
        items = tables["order_items"].frame
        items.loc[0, "quantity"] = -3
        if null_in_column:
            items.loc[1, "quantity"] = pd.NA
        out = validate_staged(tables, run_id="r", today=TODAY)
        r = out.rejected_rows
        rules = r[r["table_name"] == "order_items"].groupby("natural_key")["rule"].apply(set).to_dict()
        expected = {"order_id=1|line_number=1": {"quantity_not_positive"}}
        if null_in_column:
            expected["order_id=2|line_number=1"] = {"not_null"}
        assert rules == expected, rules
