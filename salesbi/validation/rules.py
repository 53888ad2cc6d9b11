"""The catalogue of validation rules: generated from the contract plus the hand-written business rules.

A :class:`Rule` is what a rejected row's ``rule`` column names. Rules with an
``expectation`` are evaluated by Great Expectations (one expectation each);
``foreign_key`` and ``parent_rejected`` are evaluated in pandas by
:mod:`salesbi.validation.references` (see there why).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from salesbi import contract
from salesbi.errors import ConfigurationError
from salesbi.kinds import EARLIEST_DATE, LATEST_DATE
from salesbi.schema import Column, Table
from salesbi.types import decimal_limit, pandas_dtype, text_limit
from salesbi.validation.config import load_rules_file

Level = Literal["row", "table"]

# Characters no value may hold: C0/C1 controls (NUL included), DEL, byte-order marks, zero-width and
# direction marks. Keys and short text may not hold tabs or line breaks either; long text may.
CONTROL_REGEX_LONG = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]"
CONTROL_REGEX = CONTROL_REGEX_LONG[:-1] + "\t\n\r]"

READER_RULES: dict[str, str] = {
    "invalid_date": "could not read {value} as a date in the profile's date format",
    "invalid_number": "could not read {value} as a number",
    "invalid_integer": "could not read {value} as a whole number",
    "invalid_boolean": "could not read {value} as true/false",
    "unmapped_value": "value {value} is not an allowed value and no mapping in the profile covers it",
    "not_finite": "{value} is not a finite number (infinity or not-a-number); "
    "write a number or leave the cell empty",
    "unclosed_quote": "a quote opened on this line is never closed, so the line cannot be split into "
    "fields; it is rejected and the lines after it are read on their own: {value}",
    "field_count": "the line does not split into as many fields as the header has (quote values that "
    "contain the delimiter): {value}",
    "decimal_scale": "{value} has more decimals than the warehouse column keeps (it would be rounded); "
    "round it in the source",
    "key_collision": "",
    "record_spans_lines": "a quoted value holds a line break: one record read from {value}",
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
    rules.extend(limit_rules(table))
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


def limit_rules(table: Table) -> list[Rule]:
    """Return the rules that keep every value storable on every backend (checked before the load).

    Text no longer than its DDL size, no control or invisible characters, numbers within their
    DECIMAL precision, dates within [earliest_date, latest_date]. A value that breaks one is
    quarantined with the rule named — never truncated, nulled or left to abort the load.
    """
    rules: list[Rule] = []
    for c in table.columns:
        rules.extend(LIMIT_RULES[limit](table.name, c) for limit in c.spec.limits)
    return rules


def _text_too_long(table: str, c: Column) -> Rule:
    limit = text_limit(c)
    return Rule(
        "text_too_long",
        table,
        c.name,
        "expect_column_value_lengths_to_be_between",
        {"column": c.name, "max_value": limit},
        f"{c.name} is longer than {limit} characters, the most the warehouse column holds: {{value}}",
    )


def _control_character(table: str, c: Column) -> Rule:
    breaks = c.spec.line_breaks_allowed
    return Rule(
        "control_character",
        table,
        c.name,
        "expect_column_values_to_not_match_regex",
        {"column": c.name, "regex": CONTROL_REGEX_LONG if breaks else CONTROL_REGEX},
        f"{c.name} holds a control or invisible character (NUL, byte-order mark, "
        f"zero-width space{'' if breaks else ', tab, line break'} ...): "
        "{value}; remove it in the source",
    )


def _number_out_of_range(table: str, c: Column) -> Rule:
    decimal = decimal_limit(c)
    if decimal is None:
        raise ValueError(f"column {c.name!r}: kind {c.kind!r} names number_out_of_range but has no DECIMAL")
    precision, scale = decimal
    bound = 10.0 ** (precision - scale)
    return Rule(
        "number_out_of_range",
        table,
        c.name,
        "expect_column_values_to_be_between",
        {
            "column": c.name,
            "min_value": -bound,
            "max_value": bound,
            "strict_min": True,
            "strict_max": True,
        },
        f"{c.name} {{value}} does not fit DECIMAL({precision},{scale}) "
        f"(it must be between -{bound:.0e} and {bound:.0e})",
    )


def _date_out_of_range(table: str, c: Column) -> Rule:
    earliest, latest = c.spec.date_range or (EARLIEST_DATE, LATEST_DATE)
    return Rule(
        "date_out_of_range",
        table,
        c.name,
        "expect_column_values_to_be_between",
        {
            "column": c.name,
            "min_value": {"$PARAMETER": "earliest_date"},
            "max_value": {"$PARAMETER": "latest_date"},
        },
        f"{c.name} {{value}} is not a plausible date (accepted: {earliest} to {latest})",
    )


# One rule builder per limit a kind can name (salesbi.kinds.LIMITS).
LIMIT_RULES: dict[str, Callable[[str, Column], Rule]] = {
    "text_too_long": _text_too_long,
    "control_character": _control_character,
    "number_out_of_range": _number_out_of_range,
    "date_out_of_range": _date_out_of_range,
}


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


def derived_columns(table: str, directory: Path | None = None) -> dict[str, tuple[str, str, float]]:
    """Return ``{helper_column: (source_column, operation, operand)}`` computed before GX runs on ``table``.

    ``operation`` is ``multiply`` (column × operand) or ``add_days`` (a date column + operand days).
    """
    doc = load_rules_file(directory).get("derived_columns") or {}
    spec = doc.get(table) or {}
    out: dict[str, tuple[str, str, float]] = {}
    for k, v in spec.items():
        op = "add_days" if "add_days" in v else "multiply"
        out[str(k)] = (str(v["column"]), op, float(v[op]))
    return out
