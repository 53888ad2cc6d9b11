"""The checked-in GX suites match what the contract and rules generate; configuration errors are clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from salesbi import contract
from salesbi.errors import ConfigurationError
from salesbi.validation.config import EXPECTATIONS_DIR, load_config
from salesbi.validation.suites import render, suite_dict, write_suites


@pytest.mark.parametrize("table", [t.name for t in contract.TABLES])
def test_checked_in_suite_matches_contract_and_rules(table: str) -> None:
    path = EXPECTATIONS_DIR / f"{table}.json"
    assert path.read_text(encoding="utf-8") == render(suite_dict(table)), (
        f"{path} drifted from salesbi/contract.py + expectations/*.yaml; "
        "run: python -m salesbi.validation.suites"
    )


def test_write_suites_writes_seven_files(tmp_path: Path) -> None:
    paths = write_suites(tmp_path)
    assert sorted(p.name for p in paths) == sorted(f"{t.name}.json" for t in contract.TABLES)
    for p in paths:
        assert p.read_text(encoding="utf-8") == (EXPECTATIONS_DIR / p.name).read_text(encoding="utf-8")


def test_suite_content_follows_contract() -> None:
    doc = suite_dict("order_items")
    by_rule: dict[str, list[dict]] = {}
    for e in doc["expectations"]:
        by_rule.setdefault(e["meta"]["rule"], []).append(e)
    assert by_rule["duplicate_key"][0]["type"] == "expect_compound_columns_to_be_unique"
    assert by_rule["duplicate_key"][0]["kwargs"] == {"column_list": ["order_id", "line_number"]}
    assert sorted(e["kwargs"]["column"] for e in by_rule["not_null"]) == sorted(
        contract.table("order_items").required_columns
    )
    orders = suite_dict("orders")
    in_set = [e for e in orders["expectations"] if e["type"] == "expect_column_values_to_be_in_set"]
    assert in_set[0]["kwargs"]["value_set"] == list(contract.ORDER_STATUSES)
    products = suite_dict("products")
    cost = [e for e in products["expectations"] if e["meta"]["rule"] == "unit_cost_above_3x_list_price"]
    assert cost[0]["severity"] == "warning"
    assert [r["column"] for r in orders["meta"]["checked_in_pandas"]] == ["customer_id", "employee_id"]


@pytest.mark.slow
def test_suites_load_as_gx_expectation_suites() -> None:
    from salesbi.validation.suites import gx_suite

    for t in contract.TABLES:
        suite = gx_suite(suite_dict(t.name))
        assert len(suite.expectations) == len(suite_dict(t.name)["expectations"])


def _copy_config(tmp_path: Path, severity_text: str) -> Path:
    (tmp_path / "business_rules.yaml").write_text(
        (EXPECTATIONS_DIR / "business_rules.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (tmp_path / "severity.yaml").write_text(severity_text, encoding="utf-8")
    return tmp_path


def test_fixed_rule_cannot_be_warn(tmp_path: Path) -> None:
    folder = _copy_config(tmp_path, "rules:\n  foreign_key: warn\n")
    with pytest.raises(ConfigurationError) as err:
        load_config(folder)
    assert "rule 'foreign_key' cannot be set to 'warn'" in err.value.message
    assert "set foreign_key: reject" in err.value.message


def test_unknown_severity_and_table_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="use reject or warn"):
        load_config(_copy_config(tmp_path, "rules:\n  email_invalid: maybe\n"))
    with pytest.raises(ConfigurationError, match=r"allow_shrink names unknown tables \['order'\]"):
        load_config(_copy_config(tmp_path, "tables:\n  allow_shrink: [order]\n"))


def test_default_config() -> None:
    cfg = load_config()
    assert cfg.max_shrink_fraction == 0.5
    assert cfg.severity_of("unit_cost_above_3x_list_price") == "warn"
    assert cfg.severity_of("quantity_not_positive") == "reject"
    assert str(cfg.min_order_date) == "1990-01-01"
