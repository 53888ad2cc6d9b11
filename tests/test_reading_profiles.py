"""Loading and validating profiles: names, paths, SALESBI_PROFILES_DIR and precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from salesbi.errors import ProfileError
from salesbi.reading.profile import available_profiles, load_profile, parse_profile


@pytest.mark.parametrize(
    "name", ["canonical", "classicmodels", "northwind", "online_retail", "online_retail_ii"]
)
def test_shipped_profiles_load(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert profile.path is not None and profile.path.name == f"{name}.yaml"


def test_a_profile_object_and_a_path_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("tables:\n  orders:\n    file: sales.csv\n", encoding="utf-8")
    profile = load_profile(path)
    assert profile.name == "mine"  # defaults to the file name
    assert profile.file_pattern("orders") == "sales.csv"
    assert profile.file_pattern("customers") == "customers.csv"  # unlisted table: <table>.csv
    assert load_profile(profile) is profile
    assert load_profile(str(path)).name == "mine"


def test_profiles_dir_env_var_is_searched_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "canonical.yaml").write_text("name: overridden\n", encoding="utf-8")
    (tmp_path / "acme.yaml").write_text("name: acme\n", encoding="utf-8")
    monkeypatch.setenv("SALESBI_PROFILES_DIR", str(tmp_path))
    assert load_profile("canonical").name == "overridden"
    assert load_profile("acme").name == "acme"
    assert available_profiles() == [
        "acme",
        "canonical",
        "classicmodels",
        "northwind",
        "online_retail",
        "online_retail_ii",
    ]


def test_unknown_name_lists_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SALESBI_PROFILES_DIR", raising=False)
    with pytest.raises(ProfileError) as exc:
        load_profile("acme")
    assert "unknown profile 'acme'" in str(exc.value)
    assert "use one of: canonical, classicmodels, northwind" in str(exc.value)


def test_missing_profile_path(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as exc:
        load_profile(tmp_path / "nope.yaml")
    assert exc.value.file == str(tmp_path / "nope.yaml")
    assert "profile file not found" in str(exc.value)


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ntables:\n  orders:\n    file: [orders.csv\n", encoding="utf-8")
    with pytest.raises(ProfileError) as exc:
        load_profile(path)
    assert exc.value.file == str(path)
    assert exc.value.line == 5
    assert "malformed YAML" in str(exc.value)


def test_unknown_key_names_file_line_key_and_allowed_keys(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(
        "name: typo\ntables:\n  orders:\n    file: o.csv\n    renmae:\n      a: order_id\n", encoding="utf-8"
    )
    with pytest.raises(ProfileError) as exc:
        load_profile(path)
    err = exc.value
    assert err.file == str(path)
    assert err.line == 5
    assert err.column == "renmae"
    assert "unknown key 'renmae' in tables.orders" in str(err)
    assert "allowed keys there: file, from_table, distinct, rename" in str(err)


def test_unknown_key_inside_a_derivation(tmp_path: Path) -> None:
    text = "tables:\n  orders:\n    derive:\n      status: {if_present: {column: x, then: a, otherwise: b}}\n"
    with pytest.raises(ProfileError) as exc:
        parse_profile(text, path=tmp_path / "p.yaml")
    assert "unknown key 'otherwise' in tables.orders.derive.status.if_present" in str(exc.value)
    assert "column, then, else" in str(exc.value)
    assert exc.value.line == 4


def test_rename_to_a_column_the_contract_lacks(tmp_path: Path) -> None:
    text = "name: p\ntables:\n  orders:\n    rename:\n      orderDate: order_day\n"
    with pytest.raises(ProfileError) as exc:
        parse_profile(text, path=tmp_path / "p.yaml")
    assert exc.value.line == 5
    assert "rename 'orderDate' → unknown column 'order_day'" in str(exc.value)
    assert "orders has columns order_id, customer_id" in str(exc.value)


def test_unknown_table(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as exc:
        parse_profile("tables:\n  invoices:\n    file: i.csv\n", path=tmp_path / "p.yaml")
    assert exc.value.line == 2
    assert "unknown table 'invoices'" in str(exc.value)
    assert "offices, employees, customers" in str(exc.value)


def test_a_derivation_sets_exactly_one_kind() -> None:
    with pytest.raises(ProfileError) as exc:
        parse_profile("tables:\n  order_items:\n    derive:\n      discount: {constant: 0, copy: x}\n")
    assert "exactly one of copy, constant" in str(exc.value)


def test_bad_option_value() -> None:
    with pytest.raises(ProfileError) as exc:
        parse_profile("csv:\n  delimiter: ':'\n")
    assert "invalid value for csv.delimiter" in str(exc.value)
    assert exc.value.line == 2


def test_csv_options_merge_table_over_profile_over_defaults() -> None:
    profile = parse_profile("csv: {delimiter: ';'}\ntables:\n  orders:\n    csv: {encoding: cp1252}\n")
    orders = profile.csv_options("orders")
    assert (orders.delimiter, orders.encoding, orders.null_tokens) == (";", "cp1252", ["", "NULL"])
    assert profile.csv_options("customers").encoding == "auto"
