"""The catalogue of validation rules: generated from the contract plus the hand-written business rules.

A :class:`Rule` is what a rejected row's ``rule`` column names. Rules with an
``expectation`` are evaluated by Great Expectations (one expectation each);
``foreign_key`` and ``parent_rejected`` are evaluated in pandas by
:mod:`salesbi.validation.references` (see there why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from salesbi import contract
from salesbi.errors import ConfigurationError
from salesbi.schema import Table
from salesbi.types import pandas_dtype
from salesbi.validation.config import load_rules_file

Level = Literal["row", "table"]

# A value that a spreadsheet would run as a formula: =, +, - or @ followed by a letter or "(".
FORMULA_REGEX = r"^[=+\-@][A-Za-z(]"
TEXT_KINDS = ("id", "text", "long_text")

READER_RULES: dict[str, str] = {
    "invalid_date": "could not read {value} as a date in the profile's date format",
    "invalid_number": "could not read {value} as a number",
    "invalid_integer": "could not read {value} as a whole number",
    "invalid_boolean": "could not read {value} as true/false",
    "unmapped_value": "value {value} is not an allowed value and no mapping in the profile covers it",
}


def gx_type_name(dtype: str) -> str:
    """Return the type name GX's pandas engine reports for a column of pandas ``dtype``."""
    # dates reach GX as datetime64[ns] (see gxrun.for_gx): its range checks are vectorised only then
    names = {"string": "str", "Int64": "int64", "boolean": "bool", "datetime64[s]": "datetime64[ns]"}
    return names.get(dtype, dtype)


@dataclass(frozen=True)
class Rule:
    """One rule on one table (and column): how it is checked and what a person is told."""

    id: str
    table: str
    column: str | None
    expectation: str | None
    kwargs: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    level: Level = "row"
    origin: str = "contract"
    other_column: str | None = None  # column_B of a column-pair rule ({other} in the message)


def contract_rules(table: Table) -> list[Rule]:
    """Return the rules the contract implies for ``table``, in a stable order."""
    name = table.name
    rules: list[Rule] = [
        Rule(
            "zero_rows",
            name,
            None,
            "expect_table_row_count_to_be_between",
            {"min_value": 1},
            f"{name} has no rows",
            level="table",
        )
    ]
    for c in table.columns:
        rules.append(
            Rule(
                "column_type",
                name,
                c.name,
                "expect_column_values_to_be_of_type",
                {"column": c.name, "type_": gx_type_name(pandas_dtype(c))},
                f"{c.name} must hold {pandas_dtype(c)} values ({c.kind})",
                level="table",
            )
        )
    for col in table.required_columns:
        rules.append(
            Rule(
                "not_null",
                name,
                col,
                "expect_column_values_to_not_be_null",
                {"column": col},
                f"{col} is required but empty",
            )
        )
    if len(table.key) == 1:
        rules.append(
            Rule(
                "duplicate_key",
                name,
                table.key[0],
                "expect_column_values_to_be_unique",
                {"column": table.key[0]},
                f"{table.key[0]} {{value}} appears more than once",
            )
        )
    else:
        rules.append(
            Rule(
                "duplicate_key",
                name,
                None,
                "expect_compound_columns_to_be_unique",
                {"column_list": list(table.key)},
                f"the key ({', '.join(table.key)}) appears more than once",
            )
        )
    for c in table.columns:
        if c.allowed is not None:
            rules.append(
                Rule(
                    "allowed_values",
                    name,
                    c.name,
                    "expect_column_values_to_be_in_set",
                    {"column": c.name, "value_set": list(c.allowed)},
                    f"{c.name} {{value}} is not one of {', '.join(c.allowed)}",
                )
            )
    for c in table.columns:
        if c.kind in TEXT_KINDS:
            rules.append(
                Rule(
                    "text_formula",
                    name,
                    c.name,
                    "expect_column_values_to_not_match_regex",
                    {"column": c.name, "regex": FORMULA_REGEX},
                    f"{c.name} {{value}} starts like a spreadsheet formula; remove the leading character "
                    "or quote it in the source",
                )
            )
    for col, parent, pcol in table.foreign_keys:
        rules.append(
            Rule(
                "foreign_key",
                name,
                col,
                None,
                {"column": col, "parent_table": parent, "parent_column": pcol},
                f"{col} {{value}} is not a known {parent}.{pcol} (neither in this source nor in the "
                f"warehouse); add the {parent} row or fix the reference",
            )
        )
    return rules


def business_rules(table: Table, rules_doc: dict[str, Any]) -> list[Rule]:
    """Return the hand-written rules of ``business_rules.yaml`` that apply to ``table``."""
    out: list[Rule] = []
    for i, entry in enumerate(rules_doc.get("rules") or []):
        try:
            rule_id = str(entry["id"])
            tname = str(entry["table"])
            expectation = str(entry["expectation"])
            kwargs = dict(entry.get("kwargs") or {})
        except (KeyError, TypeError) as exc:
            raise ConfigurationError(
                f"business rule #{i + 1} is incomplete ({exc})",
                file="expectations/business_rules.yaml",
                hint="each rule needs id, table, expectation and kwargs",
            ) from None
        if tname not in contract.TABLES_BY_NAME:
            raise ConfigurationError(
                f"business rule {rule_id!r} names unknown table {tname!r}",
                file="expectations/business_rules.yaml",
                hint=f"use one of {', '.join(contract.TABLES_BY_NAME)}",
            )
        if tname != table.name:
            continue
        column = entry.get("column") or kwargs.get("column") or kwargs.get("column_A")
        other = kwargs.get("column_B") if "column_B" in kwargs else None
        if entry.get("column") and other == entry.get("column"):
            other = kwargs.get("column_A")
        out.append(
            Rule(
                rule_id,
                tname,
                column,
                expectation,
                kwargs,
                str(entry.get("message") or rule_id),
                origin="business",
                other_column=other,
            )
        )
    return out


def rules_for(table: Table, directory: Path | None = None) -> list[Rule]:
    """Return every rule of ``table``: contract rules first, then business rules."""
    return contract_rules(table) + business_rules(table, load_rules_file(directory))


def derived_columns(table: str, directory: Path | None = None) -> dict[str, tuple[str, float]]:
    """Return ``{helper_column: (source_column, factor)}`` computed before GX runs on ``table``."""
    doc = load_rules_file(directory).get("derived_columns") or {}
    spec = doc.get(table) or {}
    return {str(k): (str(v["column"]), float(v["multiply"])) for k, v in spec.items()}
