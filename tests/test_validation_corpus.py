"""Corpora of bad inputs: where every fault ends up, its message, and the accounting of every line.

``company`` (validation of one small source) and ``hostile`` (one bad input per line, ingested through
the CLI on SQLite and on PostgreSQL: identical exit code, quarantined rows and line accounting), plus
file-level cases (encodings, structural faults). See tests/data/bad_inputs/README.md.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from salesbi.warehouse.engine import create_engine
from tests.conftest import drop_pg_schemas

BAD_INPUTS = Path(__file__).parent / "data" / "bad_inputs"
COMPANY = BAD_INPUTS / "company"
HOSTILE = BAD_INPUTS / "hostile"
TODAY = date(2025, 6, 1)


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
        "customers": (6, 3, 3),
        "product_lines": (2, 2, 0),
        "products": (5, 4, 1),
        "orders": (15, 5, 10),
        "order_items": (15, 6, 9),
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
    assert sorted(outcome.accepted["orders"]["order_id"]) == ["1001", "1002", "1010", "1011", "1013"]


def test_formula_like_text_is_data_and_loads_with_its_children(outcome) -> None:  # type: ignore[no-untyped-def]
    customers = outcome.accepted["customers"]
    name = customers.loc[customers["customer_id"] == "C3", "customer_name"].tolist()
    assert name == ['=HYPERLINK("http://evil.example","click")']
    assert "1011" in set(outcome.accepted["orders"]["order_id"])
    assert "1011" in set(outcome.accepted["order_items"]["order_id"])


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


def test_truncated_last_line_is_a_rejected_line_of_its_own(tmp_path: Path) -> None:
    from salesbi.reading.reader import read_source
    from salesbi.validation.validate import validate_staged

    folder = tmp_path / "company"
    shutil.copytree(COMPANY, folder)
    with (folder / "order_items.csv").open("a", encoding="utf-8") as f:
        f.write("1013,8,P2,1")  # cut off mid-record, no newline
    data = read_source(folder, "canonical")
    out = validate_staged(data.tables, run_id="t", today=TODAY)
    r = out.rejected_rows
    last = r[(r["table_name"] == "order_items") & (r["source_line"] == 17)]
    assert last[["rule", "value"]].values.tolist() == [["field_count", "1013,8,P2,1"]]
    c = out.counts["order_items"]
    assert (c.lines, c.loaded, c.rejected, c.skipped) == (16, 6, 10, 0)


# ------------------------------------------------------------------------------------------- hostile
# One bad input per line of tests/data/bad_inputs/hostile (written by make_hostile.py), ingested by
# the CLI on SQLite and PostgreSQL. (table, line, {(rule, column)}, text of the message, value)
HOSTILE_REJECTS = [
    ("offices", 7, {("field_count", None)}, "does not split into as many fields", "75001,extra"),
    ("offices", 8, {("control_character", "office_id")}, "control or invisible character", "5\\x00"),
    ("offices", 9, {("text_too_long", "postal_code")}, "longer than 32 characters", "1" * 33),
    ("employees", 4, {("date_out_of_range", "hire_date")}, "1899-12-31 is not a plausible date", None),
    ("employees", 5, {("date_out_of_range", "hire_date")}, "0001-01-01 is not a plausible date", None),
    ("employees", 6, {("control_character", "job_title")}, "job_title holds a control", "Clerk\tNight"),
    ("employees", 8, {("date_out_of_range", "hire_date")}, "9999-12-31 is not a plausible date", None),
    ("customers", 5, {("text_too_long", "customer_name")}, "longer than 255 characters", None),
    ("customers", 6, {("not_finite", "credit_limit")}, "inf is not a finite number", "inf"),
    ("customers", 7, {("not_finite", "credit_limit")}, "NaN is not a finite number", "NaN"),
    ("customers", 8, {("number_out_of_range", "credit_limit")}, "does not fit DECIMAL(18,2)", "1e+20"),
    ("customers", 9, {("number_out_of_range", "credit_limit")}, "does not fit DECIMAL(18,2)", "1e+300"),
    ("customers", 10, {("key_collision", "customer_id")}, "(C9 / c9)", "C9"),
    ("customers", 11, {("key_collision", "customer_id")}, "(C9 / c9)", "c9"),
    ("customers", 12, {("control_character", "customer_id")}, "byte-order mark", "\ufeffC10"),
    ("customers", 13, {("decimal_scale", "credit_limit")}, "12.345 has more decimals", "12.345"),
    ("customers", 18, {("key_collision", "customer_id")}, "once case, spaces and Unicode form", "CÄ1"),
    ("customers", 19, {("key_collision", "customer_id")}, "once case, spaces and Unicode form", "CA\u03081"),
    ("customers", 20, {("control_character", "customer_name")}, "zero-width space", "Zero\u200bWidth"),
    ("customers", 21, {("control_character", "customer_name")}, "control or invisible", "Bell\x07Corp"),
    ("customers", 22, {("not_finite", "credit_limit")}, "-Infinity is not a finite number", "-Infinity"),
    ("customers", 23, {("invalid_number", "credit_limit")}, "could not read lots as a number", "lots"),
    ("customers", 24, {("foreign_key", "sales_rep_id")}, "99 is not a known employees", "99"),
    ("customers", 25, {("field_count", None)}, "does not split", "C21,Too,Few,Fields"),
    ("product_lines", 6, {("control_character", "description")}, "NUL", None),
    ("products", 5, {("parent_rejected", "product_line_id")}, "product_line_id=PL4 was rejected", "PL4"),
    ("products", 6, {("number_out_of_range", "unit_cost")}, "does not fit DECIMAL(18,2)", None),
    ("products", 7, {("not_finite", "list_price")}, "-inf is not a finite number", "-inf"),
    ("products", 8, {("invalid_integer", "quantity_in_stock")}, "99999999999999999999 as a whole", None),
    ("products", 10, {("invalid_integer", "quantity_in_stock")}, "could not read 3.5 as a whole", "3.5"),
    ("orders", 3, {("unclosed_quote", None)}, "a quote opened on this line is never closed", None),
    (
        "orders",
        6,
        {("date_out_of_range", "shipped_date"), ("shipped_date_far_from_order", "shipped_date")},
        "9999-12-31 is not a plausible date",
        None,
    ),
    ("orders", 7, {("required_date_far_from_order", "required_date")}, "more than a year after", None),
    ("orders", 8, {("shipped_date_far_from_order", "shipped_date")}, "2026-03-01 is more than a year", None),
    ("orders", 11, {("parent_rejected", "customer_id")}, "customer_id=C4 was rejected", "C4"),
    ("orders", 13, {("field_count", None)}, "does not split", "1012,C1,10,2024-03-05,,,placed,Paris"),
    (
        "orders",
        15,
        {("unclosed_quote", None)},
        "never closed",
        '1013,C1,10,2024-03-06,,,placed,Paris,"France',
    ),
    (
        "order_items",
        3,
        {("not_finite", "unit_price"), ("not_null", "unit_price")},
        "inf is not a finite number",
        None,
    ),
    ("order_items", 4, {("not_finite", "discount")}, "nan is not a finite number", "nan"),
    ("order_items", 5, {("number_out_of_range", "unit_price")}, "does not fit DECIMAL(18,2)", None),
    ("order_items", 6, {("decimal_scale", "discount")}, "0.12345 has more decimals", "0.12345"),
    ("order_items", 9, {("parent_rejected", "order_id")}, "orders order_id=1010 was rejected", None),
    ("order_items", 11, {("parent_rejected", "product_id")}, "products product_id=P4 was rejected", None),
    ("order_items", 12, {("foreign_key", "order_id")}, "1002 is not a known orders", "1002"),
]
# (table, line, column, value): inputs that look hostile but are data and must load unchanged
HOSTILE_LOADS = [
    ("employees", 7, "first_name", "=1+cmd|' /C calc'!A0"),
    ("customers", 3, "customer_name", "Café Zürich"),  # UTF-8 in a file with a cp1252 line
    ("customers", 4, "contact_name", "Hans Müller"),  # the cp1252 line
    ("customers", 4, "city", "Zürich"),
    ("customers", 14, "customer_name", '=HYPERLINK("http://x","y")'),
    ("customers", 15, "customer_name", "+SUM(A1:A2)"),
    ("customers", 16, "customer_name", "@SUM(1+1)"),
    ("customers", 17, "customer_name", "-2+3+cmd|' /C calc'!A0"),
    ("product_lines", 2, "description", "=1+cmd|' /C calc'!A0 and other formulas"),
    ("product_lines", 3, "description", "Board games\nand card games"),  # a quoted line break
    ("product_lines", 7, "description", "t" * 5000),  # long text has no limit
    ("orders", 4, "ship_city", "Zürich"),  # read on its own after the unclosed quote on line 3
    ("orders", 9, "order_date", "2024-03-01"),  # 00:30+02:00 is Feb 29 in UTC: the day written is kept
    ("orders", 10, "order_date", "2024-03-02"),  # -05:00 offset in the same column: no traceback
    ("orders", 12, "customer_id", "C12"),  # the formula customer's order
    ("order_items", 10, "order_id", "1011"),
]
# per table: (physical lines after the header, loaded, rejected, skipped)
HOSTILE_ACCOUNTING = {
    "offices": (8, 3, 3, 2),  # line 4 padding, line 5 blank
    "employees": (7, 3, 4, 0),
    "customers": (24, 7, 17, 0),
    "product_lines": (6, 4, 1, 1),  # line 4 continues line 3
    "products": (9, 4, 5, 0),
    "orders": (14, 6, 7, 1),  # line 14 blank
    "order_items": (13, 5, 7, 1),  # line 13 padding
}


def _cli(*args: str) -> int:
    from salesbi.cli import main

    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.integration])],
)
def hostile_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Ingest the hostile corpus with the CLI; return exit code, summary, rejected rows and core."""
    tmp = tmp_path_factory.mktemp(f"hostile_{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'warehouse.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        drop_pg_schemas(url)
    # the corpus is mostly bad rows on purpose: lift the completeness limit that would stop the load
    code = _cli(
        "ingest",
        *("--source", str(HOSTILE), "--profile", "canonical", "--warehouse", url, "--out", str(tmp)),
        *("--max-rejected-share", "1"),
    )
    summary = json.loads((tmp / "run_summary.json").read_text(encoding="utf-8"))
    engine = create_engine(url)
    with engine.connect() as conn:
        rejected = pd.read_sql_query(sa.text("SELECT * FROM audit.rejected_rows"), conn)
        core = {
            t: pd.read_sql_query(sa.text(f"SELECT * FROM core.{t}"), conn)
            for t in (
                "offices",
                "employees",
                "customers",
                "product_lines",
                "products",
                "orders",
                "order_items",
            )
        }
        staging_orders = int(conn.execute(sa.text("SELECT COUNT(*) FROM staging.orders")).scalar_one())
    engine.dispose()
    yield {
        "code": code,
        "summary": summary,
        "rejected": rejected,
        "core": core,
        "backend": request.param,
        "staging_orders": staging_orders,
    }
    if request.param != "sqlite":
        drop_pg_schemas(url)


def _at(rejected: pd.DataFrame, table: str, line: int) -> pd.DataFrame:
    return rejected[(rejected["table_name"] == table) & (rejected["source_line"] == line)]


@pytest.mark.parametrize(
    ("table", "line", "expected", "text", "value"),
    HOSTILE_REJECTS,
    ids=[f"{r[0]}:{r[1]}" for r in HOSTILE_REJECTS],
)
def test_hostile_line_is_quarantined_with_file_line_column_and_rule(  # type: ignore[no-untyped-def]
    hostile_run, table, line, expected, text, value
) -> None:
    sub = _at(hostile_run["rejected"], table, line)
    got = {(str(x.rule), None if pd.isna(x.column_name) else str(x.column_name)) for x in sub.itertuples()}
    assert got == expected, sub[["rule", "column_name", "message"]].to_string()
    assert set(sub["severity"]) == {"reject"}
    assert set(sub["source_file"]) == {f"{table}.csv"}
    assert sub["message"].str.contains(text, regex=False).any(), sub["message"].tolist()
    if value is not None:
        assert any(value in v for v in sub["value"].dropna()), sub["value"].tolist()


@pytest.mark.parametrize(
    ("table", "line", "column", "value"), HOSTILE_LOADS, ids=[f"{r[0]}:{r[1]}" for r in HOSTILE_LOADS]
)
def test_hostile_looking_data_loads_unchanged(hostile_run, table, line, column, value) -> None:  # type: ignore[no-untyped-def]
    core = hostile_run["core"][table]
    assert set(_at(hostile_run["rejected"], table, line)["severity"]) <= {"warn"}
    assert value in set(core[column].astype(str).str.slice(0, 10) if column == "order_date" else core[column])


def test_hostile_run_succeeds_and_accounts_for_every_line(hostile_run) -> None:  # type: ignore[no-untyped-def]
    # loaded, with warnings: every table's rejected share is above the 2 % warning limit
    assert hostile_run["code"] == 3
    summary = hostile_run["summary"]
    assert summary["status"] == "succeeded_with_warnings"
    assert {w["kind"] for w in summary["warnings"]} == {"completeness"}
    got = {
        name: (t["lines"], t["loaded"], t["rejected"], t["skipped"]) for name, t in summary["tables"].items()
    }
    assert got == HOSTILE_ACCOUNTING
    for name, t in summary["tables"].items():
        assert t["lines"] == t["loaded"] + t["rejected"] + t["skipped"]
        assert t["warehouse_rows"] == t["loaded"] == len(hostile_run["core"][name])
        rejected = hostile_run["rejected"]
        quarantined = rejected[(rejected["table_name"] == name) & (rejected["severity"] == "reject")]
        assert quarantined["source_line"].nunique() == t["rejected"]
    # every rejected record is also in staging, its refused cells nulled there
    assert hostile_run["staging_orders"] == 13
    notes = " ".join(summary["notes"])
    assert "customers.csv: mixed encodings — most lines are UTF-8, lines 4 are not" in notes
    assert "orders.csv: a quote left open swallowed the following lines; lines 4, 5" in notes


def test_hostile_quoted_line_break_is_a_listed_warning(hostile_run) -> None:  # type: ignore[no-untyped-def]
    sub = _at(hostile_run["rejected"], "product_lines", 3)
    assert sub[["rule", "severity", "value"]].values.tolist() == [["record_spans_lines", "warn", "lines 3-4"]]


@pytest.mark.postgres
@pytest.mark.integration
def test_sqlite_and_postgresql_quarantine_identical_rows(pg_url: str, tmp_path: Path) -> None:
    outcomes = []
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'w.db'}"), ("postgresql", pg_url)):
        if name == "postgresql":
            drop_pg_schemas(url)
        out = tmp_path / name
        args = ("--source", str(HOSTILE), "--warehouse", url, "--out", str(out), "--max-rejected-share", "1")
        assert _cli("ingest", *args) == 3  # loaded, with completeness warnings
        engine = create_engine(url)
        with engine.connect() as conn:
            rows = pd.read_sql_query(
                sa.text(
                    "SELECT table_name, source_file, source_line, column_name, rule, severity, value, "
                    "natural_key, message FROM audit.rejected_rows"
                ),
                conn,
            )
        engine.dispose()
        if name == "postgresql":
            drop_pg_schemas(url)
        summary = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
        counts = {
            t: (c["lines"], c["loaded"], c["rejected"], c["skipped"]) for t, c in summary["tables"].items()
        }
        outcomes.append((rows.sort_values(list(rows.columns)).reset_index(drop=True), counts))
    pd.testing.assert_frame_equal(outcomes[0][0], outcomes[1][0], check_dtype=False)
    assert outcomes[0][1] == outcomes[1][1] == HOSTILE_ACCOUNTING


# ------------------------------------------------------------------------------- the issue's cases
# The company corpus with four faults from issue 16 added; each test below failed before the fix
# (unclosed quote swallowed 13 orders; inf loaded; a 300-character name loaded; Zürich became ZÃ¼rich).
ISSUE_NAME = "Overlong " + "n" * 291


@pytest.fixture(scope="module")
def issue_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a copy of the company corpus with the issue's unclosed quote, inf, long name, mixed encoding."""
    folder = tmp_path_factory.mktemp("issue16") / "company"
    shutil.copytree(COMPANY, folder)
    orders = (folder / "orders.csv").read_text(encoding="utf-8").splitlines()
    assert orders[2] == "1002,C2,11,2024-01-09,2024-01-16,,placed,Dallas,USA"
    orders[2] = '1002,C2,11,2024-01-09,2024-01-16,,placed,Dallas,"USA'  # line 3: a quote left open
    (folder / "orders.csv").write_text("\n".join(orders) + "\n", encoding="utf-8")
    items = (folder / "order_items.csv").read_text(encoding="utf-8")
    (folder / "order_items.csv").write_text(items.replace("1001,2,P3,1,39.00,0.1", "1001,2,P3,1,inf,0.1"))
    customers = (folder / "customers.csv").read_bytes()
    customers = customers.replace(b"C2,Beta Games,", f"C2,{ISSUE_NAME},".encode())
    customers += "C7,Café Zürich,Ann Weiß,Zürich,,Switzerland,8001,10,100\n".encode()  # line 8, UTF-8
    customers += "C8,Müller AG,Hans Müller,Zürich,,Switzerland,3000,10,100\n".encode("cp1252")  # line 9
    (folder / "customers.csv").write_bytes(customers)
    return folder


@pytest.fixture(scope="module")
def issue_outcome(issue_source: Path):  # type: ignore[no-untyped-def]
    from salesbi.reading.reader import read_source
    from salesbi.validation.validate import validate_staged

    data = read_source(issue_source, "canonical")
    return data, validate_staged(data.tables, run_id="issue16", today=TODAY)


def test_issue_unclosed_quote_rejects_its_line_and_keeps_every_later_order(issue_outcome) -> None:  # type: ignore[no-untyped-def]
    data, out = issue_outcome
    orders = data.tables["orders"]
    assert orders.read == 15 and orders.lines == 15  # no line swallowed
    r = out.rejected_rows
    bad = r[(r["table_name"] == "orders") & (r["source_line"] == 3)]
    assert bad["rule"].tolist() == ["unclosed_quote"]
    assert bad["value"].tolist() == ['1002,C2,11,2024-01-09,2024-01-16,,placed,Dallas,"USA']
    assert "1013" in set(out.accepted["orders"]["order_id"])  # line 16, after the quote
    assert out.accepted["orders"]["ship_country"].str.len().max() < 20
    c = out.counts["orders"]
    assert c.lines == c.loaded + c.rejected + c.skipped == 15


def test_issue_inf_price_is_rejected_not_loaded(issue_outcome) -> None:  # type: ignore[no-untyped-def]
    _, out = issue_outcome
    r = out.rejected_rows
    bad = r[(r["natural_key"] == "order_id=1001|line_number=2") & (r["rule"] == "not_finite")]
    assert bad[["column_name", "value", "source_line"]].values.tolist() == [["unit_price", "inf", 3]]
    assert np.isfinite(out.accepted["order_items"]["unit_price"]).all()


def test_issue_overlong_name_is_quarantined(issue_outcome) -> None:  # type: ignore[no-untyped-def]
    _, out = issue_outcome
    r = out.rejected_rows
    bad = r[(r["natural_key"] == "customer_id=C2") & (r["rule"] == "text_too_long")]
    assert bad[["column_name", "value", "source_line"]].values.tolist() == [["customer_name", ISSUE_NAME, 3]]
    assert out.accepted["customers"]["customer_name"].str.len().max() <= 255


def test_issue_mixed_encoding_keeps_utf8_lines_and_reads_the_others(issue_outcome) -> None:  # type: ignore[no-untyped-def]
    data, _ = issue_outcome
    frame = data.tables["customers"].frame.set_index("customer_id")
    assert frame.loc["C7", "city"] == "Zürich"  # a UTF-8 line
    assert frame.loc["C7", "contact_name"] == "Ann Weiß"
    assert frame.loc["C8", "contact_name"] == "Hans Müller"  # the cp1252 line
    assert any("customers.csv: mixed encodings" in n and "lines 9 are not" in n for n in data.notes)


# ------------------------------------------------------------------------------------- whole files
CUSTOMERS_HEADER = (
    "customer_id,customer_name,contact_name,city,state,country,postal_code,sales_rep_id,credit_limit"
)
CENTRAL = [
    "C1,Příliš žluťoučký kůň,Łukasz Żółć,Kraków,,Poland,30-001,10,5000",
    "C2,Świętochłowice Sp.,Ján Šťastný,Košice,,Slovakia,04001,11,100",
    "C3,Ďábelské ódy,Zdeněk Řezník,Plzeň,,Czechia,30100,11,100",
    "C4,Gdańsk Handel,Źdźbło Ąę,Wrocław,,Poland,50-001,11,100",
    "C5,Brno Trade,Tomáš Čapek,Brno,,Czechia,60200,11,100",
    "C6,Last Co,Ann Lee,Oslo,,Norway,0150,11,100",
]
# (id, encoding, delimiter, bytes prefix) — every one must read the names exactly
WHOLE_FILES = [
    ("excel-unicode-text", "utf-16", "\t", b""),  # Python's utf-16 writes a BOM, as Excel does
    ("utf-16-be-bom", "utf-16-be", ",", b"\xfe\xff"),
    ("utf-16-le-no-bom", "utf-16-le", ",", b""),
    ("utf-32-bom", "utf-32", ",", b""),
    ("utf-8-bom-semicolon", "utf-8-sig", ";", b""),
    ("latin-2", "iso8859_2", ",", b""),
    ("cp1250", "cp1250", ";", b""),
]


@pytest.mark.parametrize(
    ("case", "encoding", "delimiter", "prefix"), WHOLE_FILES, ids=[w[0] for w in WHOLE_FILES]
)
def test_whole_file_encodings_are_read_from_evidence(
    tmp_path: Path, case: str, encoding: str, delimiter: str, prefix: bytes
) -> None:
    from salesbi.reading.reader import read_source

    folder = tmp_path / "company"
    shutil.copytree(COMPANY, folder)
    text = "\n".join(line.replace(",", delimiter) for line in [CUSTOMERS_HEADER, *CENTRAL]) + "\n"
    (folder / "customers.csv").write_bytes(prefix + text.encode(encoding))
    data = read_source(folder, "canonical")
    frame = data.tables["customers"].frame
    assert frame["customer_name"].tolist() == [line.split(",")[1] for line in CENTRAL]
    assert frame["contact_name"].tolist() == [line.split(",")[2] for line in CENTRAL]
    assert frame["_source_line"].tolist() == [2, 3, 4, 5, 6, 7]
    assert data.tables["customers"].lines == 6


# (id, how the source is broken, text of the message, line) — the CLI stops with exit code 2 before
# the warehouse is touched
STRUCTURAL = [
    (
        "wrong-delimiter",
        lambda d: (d / "orders.csv").write_text(
            (d / "orders.csv").read_text(encoding="utf-8").replace(",", ";", 3), encoding="utf-8"
        ),
        "records do not split into the header's",
        2,
    ),
    (
        "bom-promises-utf8",
        lambda d: (d / "products.csv").write_bytes(
            b"\xef\xbb\xbf" + (d / "products.csv").read_bytes() + b"\xff\n"
        ),
        "unreadable encoding: byte 0xff",
        7,
    ),
    ("empty-file", lambda d: (d / "offices.csv").write_bytes(b""), "empty file: no header line", None),
    (
        "header-only-orders",
        lambda d: (d / "orders.csv").write_text(
            (d / "orders.csv").read_text(encoding="utf-8").splitlines()[0] + "\n",
            encoding="utf-8",
        ),
        "orders: the file has a header but no data rows",
        None,
    ),
]


@pytest.mark.parametrize(("case", "breaks", "text", "line"), STRUCTURAL, ids=[s[0] for s in STRUCTURAL])
def test_structural_fault_exits_2_naming_file_and_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    breaks,
    text: str,
    line: int | None,  # type: ignore[no-untyped-def]
) -> None:
    folder = tmp_path / "company"
    shutil.copytree(COMPANY, folder)
    breaks(folder)
    db = tmp_path / "w.db"
    code = _cli(
        "ingest", "--source", str(folder), "--warehouse", f"sqlite:///{db}", "--out", str(tmp_path / "o")
    )
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert text in err, err
    if line is not None:
        assert f"line {line}" in err
    assert "Traceback" not in err
    assert not db.exists() or db.stat().st_size == 0  # nothing was written


def test_validation_summary_says_what_the_cascade_removed(outcome) -> None:  # type: ignore[no-untyped-def]
    from salesbi.validation.report import cascade, render_validation_summary

    found = cascade(outcome.rejected_rows)
    by_parent = {(r.table_name, r.parent): r.rows for r in found.itertuples()}
    # counted by hand from the corpus: rows whose only reasons are parent_rejected
    assert by_parent == {
        ("employees", "employees employee_id=13"): 1,
        ("customers", "employees employee_id=13"): 1,
        ("orders", "customers customer_id=C5"): 1,
        ("orders", "employees employee_id=13"): 1,
        ("order_items", "orders order_id=1003"): 1,
        ("order_items", "orders order_id=1009"): 1,
        ("order_items", "orders order_id=1012"): 1,
        ("order_items", "products product_id=P5"): 1,
    }
    text = render_validation_summary(outcome)
    assert "## Rejected only because a parent row was rejected (cascade)" in text
    assert "| order_items | product_id | products product_id=P5 | 1 |" in text
    assert "| offices | 3 | 0 | 3 | 0 | 3 | 0 | 0 |" in text
