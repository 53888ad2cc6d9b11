"""The profile language for real exports: absent tables, constant rows, when/coalesce/abs, keep last,
lookups that keep the source value, several date formats, and paths that cannot leave the source."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from salesbi.errors import ProfileError
from salesbi.reading.detect import detect_date_format
from salesbi.reading.profile import parse_profile
from salesbi.reading.reader import NO_PRODUCT_LINE, SourceData, read_source
from salesbi.validation.config import ValidationConfig
from salesbi.validation.suites import suite_dict

SALES = (
    "Invoice,Stock,Description,Qty,When,Price,Customer,Country,Supplier\n"
    "536365,85123A,WHITE HANGING HEART,6,12/01/2010 08:26,2.55,17850,United Kingdom,S1\n"
    "536365,71053,WHITE METAL LANTERN,6,12/01/2010 08:26,3.39,17850,United Kingdom,S2\n"
    "536366,85123A,CREAM HANGING HEART,2,2/20/11 11:39,2.55,,France,S9\n"
    "C536367,71053,WHITE METAL LANTERN,-6,2/21/11 09:00,3.39,17850,United Kingdom,S2\n"
)
SUPPLIERS = "id,name\nS1,Acme\nS2,Bolt\n"

PROFILE = """
name: shop
tables:
  offices: {absent: "a web shop"}
  employees: {absent: "no reps"}
  product_lines:
    rows: [{product_line_id: ALL, name: All products}]
  products:
    from_table: order_items
    rename: {Stock: product_id}
    distinct: [product_id]
    keep: last
    derive:
      product_name: {coalesce: [Description, product_id]}
      product_line_id: {constant: ALL}
      vendor: {lookup: {file: suppliers.csv, key: id, value: name, column: Supplier}}
  customers:
    from_table: order_items
    rename: {Country: country}
    derive:
      customer_id: {coalesce: [Customer, {template: "GUEST-{country}"}]}
      customer_name: {coalesce: [{template: "Customer {Customer}"}, {template: "Guests ({country})"}]}
      city: {constant: "(not given)"}
    distinct: [customer_id]
  orders:
    from_table: order_items
    rename: {Invoice: order_id, When: order_date}
    distinct: [order_id]
    derive:
      customer_id: {coalesce: [Customer, {template: "GUEST-{Country}"}]}
      status:
        when:
          cases:
            - {column: order_id, prefix: C, then: cancelled}
            - {column: Country, regex: "^Fr", then: on_hold}
          else: shipped
  order_items:
    file: sales.csv
    rename: {Invoice: order_id, Stock: product_id, Price: unit_price}
    derive:
      line_number: {row_number: {within: [order_id]}}
      quantity: {abs: Qty}
"""


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "src"
    src.mkdir()
    (src / "sales.csv").write_text(SALES, encoding="utf-8")
    (src / "suppliers.csv").write_text(SUPPLIERS, encoding="utf-8")
    prof = tmp_path / "shop.yaml"
    prof.write_text(PROFILE, encoding="utf-8")
    return src, prof


def _read(shop: tuple[Path, Path], text: str | None = None) -> SourceData:
    src, prof = shop
    if text is not None:
        prof.write_text(text, encoding="utf-8")
    return read_source(src, prof)


def test_a_transaction_file_fills_the_seven_tables(shop: tuple[Path, Path]) -> None:
    data = _read(shop)
    t = {name: st.frame for name, st in data.tables.items()}
    assert len(t["offices"]) == 0 and len(t["employees"]) == 0
    assert data.absent_tables == {"offices": "a web shop", "employees": "no reps"}
    assert data.allow_empty == {"offices", "employees"}
    assert t["product_lines"][["product_line_id", "name"]].values.tolist() == [["ALL", "All products"]]
    products = t["products"].set_index("product_id")
    # keep: last — the latest description of 85123A wins, and a note says that one code changed
    assert products.loc["85123A", "product_name"] == "CREAM HANGING HEART"
    assert "products: 1 of the distinct product_id have rows that differ (in Description" in " ".join(
        data.notes
    )
    # a lookup that fails keeps the source value, and says so
    assert products.loc["71053", "vendor"] == "Bolt"
    vendors = dict(zip(t["products"]["product_id"], t["products"]["vendor"], strict=True))
    assert vendors["85123A"] == "S9"
    assert any("not found in suppliers.csv" in n and "'S9'" in n for n in data.notes)
    customers = t["customers"].set_index("customer_id")
    assert sorted(customers.index) == ["17850", "GUEST-France"]
    assert customers.loc["GUEST-France", "customer_name"] == "Guests (France)"
    assert customers.loc["17850", "customer_name"] == "Customer 17850"
    orders = t["orders"].set_index("order_id")
    assert orders["status"].to_dict() == {"536365": "shipped", "536366": "on_hold", "C536367": "cancelled"}
    assert orders.loc["536366", "customer_id"] == "GUEST-France"
    # one column, two formats (four- and two-digit years), month-first decided by 2/20/11
    assert orders["order_date"].tolist() == [
        pd.Timestamp("2010-12-01"),
        pd.Timestamp("2011-02-20"),
        pd.Timestamp("2011-02-21"),
    ]
    note = next(n for n in data.notes if n.startswith("orders.order_date"))
    assert "month-first" in note and "'2/20/11 11:39' has a second part above 12" in note
    items = t["order_items"]
    assert items["line_number"].tolist() == [1, 2, 1, 1]
    assert items["quantity"].tolist() == [6, 6, 2, 6]  # abs: the credit note's -6 read as 6


def test_equals_empty_and_below_cases_and_else_copy(shop: tuple[Path, Path]) -> None:
    text = PROFILE.replace(
        """            - {column: Country, regex: "^Fr", then: on_hold}
          else: shipped""",
        """            - {column: Customer, empty: true, then: disputed}
            - {column: Qty, below: 0, then: returned}
            - {column: Country, equals: [united kingdom], then: placed}
          else: shipped""",
    )
    orders = _read(shop, text).tables["orders"].frame.set_index("order_id")
    assert orders["status"].to_dict() == {"536365": "placed", "536366": "disputed", "C536367": "cancelled"}


def test_product_lines_absent_give_one_placeholder_line(shop: tuple[Path, Path]) -> None:
    text = PROFILE.replace(
        "    rows: [{product_line_id: ALL, name: All products}]", '    absent: "no categories"'
    )
    data = _read(shop, text)
    lines = data.tables["product_lines"].frame
    assert lines["product_line_id"].tolist() == [NO_PRODUCT_LINE]
    assert set(data.tables["products"].frame["product_line_id"]) == {NO_PRODUCT_LINE}
    assert "product_lines: not in this source (no categories)" in data.notes


WHEN = "tables:\n  orders:\n    derive:\n      status:\n        when:\n          cases: [{}]\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tables:\n  orders: {absent: nope}\n", "table 'orders' cannot be declared absent"),
        ("tables:\n  offices: {absent: nope}\n", "offices is declared absent but employees is not"),
        ("tables:\n  offices: {absent: nope, file: x.csv}\n", "a table declared absent"),
        ("tables:\n  offices: {rows: [{office_id: A, city: Oslo}]}\n", "lacks required column 'country'"),
        ("tables:\n  offices: {rows: [{office_id: A, town: Oslo}]}\n", "unknown column 'town'"),
        ("allow_empty: true\n", "unknown key 'allow_empty'"),
        (
            WHEN.format("{column: a, then: x}"),
            "exactly one of prefix, regex, equals, empty, below",
        ),
        (
            WHEN.format("{column: a, prefx: C, then: x}"),
            "unknown key 'prefx'",
        ),
        (
            WHEN.format("{column: a, regex: '(', then: x}"),
            "invalid regex",
        ),
        ("tables:\n  orders: {completeness: {fail: 2}}\n", "completeness.fail"),
        (
            "tables:\n  customers:\n    derive:\n      customer_id: {coalesce: [a, {tempate: x}]}\n",
            "unknown key 'tempate' in tables.customers.derive.customer_id.coalesce.1",
        ),
        ("tables:\n  orders: {file: ../orders.csv}\n", "goes up out of the source folder"),
        ("tables:\n  orders: {file: /etc/passwd}\n", "is an absolute path"),
        (
            "tables:\n  products:\n    derive:\n      vendor:\n"
            "        lookup: {file: ../s.csv, key: a, value: b, column: c}\n",
            "goes up out of the source folder",
        ),
    ],
)
def test_profile_mistakes_are_errors(text: str, message: str) -> None:
    with pytest.raises(ProfileError) as exc:
        parse_profile(text)
    assert message in str(exc.value)


def test_symlinks_out_of_the_source_folder_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("order_id\n1\n", encoding="utf-8")
    src = tmp_path / "src"
    src.mkdir()
    os.symlink(outside, src / "orders.csv")
    for text in ("tables:\n  orders: {file: orders.csv}\n", "tables:\n  orders: {file: '*.csv'}\n"):
        with pytest.raises(ProfileError) as exc:
            read_source(src, parse_profile(text))
        assert "outside the source folder" in str(exc.value)


def test_allow_empty_drops_the_zero_rows_expectation() -> None:
    def rules(config: ValidationConfig) -> list[str]:
        return [e["meta"]["rule"] for e in suite_dict("employees", config)["expectations"]]

    assert "zero_rows" in rules(ValidationConfig())
    assert "zero_rows" not in rules(ValidationConfig(allow_empty=frozenset({"employees"})))


def test_two_digit_years_and_the_deciding_value_are_in_the_note() -> None:
    fmt = detect_date_format(["25/12/10", "01/02/2011"], dayfirst_default=False, column="d")
    assert fmt.all_formats == ("%d/%m/%Y", "%d/%m/%y")
    assert fmt.note is not None and "'25/12/10' has a first part above 12" in fmt.note
    ambiguous = detect_date_format(["01/02/10"], dayfirst_default=True, column="d")
    assert ambiguous.note is not None and "no value in the column" in ambiguous.note


def test_absent_and_constant_tables_pass_validation(shop: tuple[Path, Path]) -> None:
    from salesbi.ingest import validate_step

    outcome = validate_step(_read(shop), run_id="t")
    counts = {name: (c.read, c.loaded, c.rejected) for name, c in outcome.counts.items()}
    assert counts["employees"] == (0, 0, 0) and counts["offices"] == (0, 0, 0)
    assert counts["product_lines"] == (1, 1, 0)
    assert counts["orders"] == (3, 3, 0)
    assert counts["order_items"] == (4, 4, 0)


def test_replace_and_else_template(shop: tuple[Path, Path]) -> None:
    text = PROFILE.replace(
        """      customer_id: {coalesce: [Customer, {template: "GUEST-{country}"}]}
      customer_name: {coalesce: [{template: "Customer {Customer}"}, {template: "Guests ({country})"}]}
""",
        """      customer_id:
        coalesce:
          - {replace: {column: Customer, pattern: '^(\\d+)$', with: 'K-\\1'}}
          - {template: "G-{country}"}
      customer_name:
        when:
          cases: [{column: Customer, empty: true, then: Guests}]
          else_template: "Customer {customer_id}"
""",
    )
    customers = _read(shop, text).tables["customers"].frame.set_index("customer_id")
    assert customers["customer_name"].to_dict() == {"K-17850": "Customer K-17850", "G-France": "Guests"}
    with pytest.raises(ProfileError, match="at most one of else, else_copy, else_template"):
        parse_profile(
            WHEN.format("{column: a, prefix: C, then: x}").rstrip() + "\n          else: y\n"
            "          else_copy: z\n"
        )
