"""Small TMDL writing helpers: quoting, data types, format strings and M types per column kind."""

from __future__ import annotations

import re

from salesbi.schema import Column

_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

TMDL_DATA_TYPE: dict[str, str] = {
    "id": "string",
    "text": "string",
    "long_text": "string",
    "int": "int64",
    "money": "decimal",
    "fraction": "double",
    "float": "double",
    "date": "dateTime",
    "datetime": "dateTime",
    "bool": "boolean",
}

M_TYPE: dict[str, str] = {
    "id": "type text",
    "text": "type text",
    "long_text": "type text",
    "int": "Int64.Type",
    "money": "Currency.Type",
    "fraction": "type number",
    "float": "type number",
    "date": "type date",
    "datetime": "type datetime",
    "bool": "type logical",
}

CURRENCY_FORMAT = r"\$#,0.00;(\$#,0.00);\$#,0.00"
PERCENT_FORMAT = "0.0%;-0.0%;0.0%"
INTEGER_FORMAT = "#,0"
DECIMAL_FORMAT = "#,0.00"
TEXT_FORMAT = "@"  # text measures (labels): shown as they are

COLUMN_FORMAT: dict[str, str] = {
    "int": "0",
    "money": CURRENCY_FORMAT,
    "fraction": PERCENT_FORMAT,
    "float": DECIMAL_FORMAT,
    "date": "yyyy-mm-dd",
    "datetime": "yyyy-mm-dd hh:nn:ss",
}


def quote(name: str) -> str:
    """Return ``name`` as a TMDL object name: bare when it is a plain identifier, else single-quoted."""
    if _PLAIN_NAME.match(name):
        return name
    return "'" + name.replace("'", "''") + "'"


def dax_table(name: str) -> str:
    """Return a table name as written in DAX (quoted when it is not a plain identifier)."""
    return quote(name)


def m_string(value: str) -> str:
    """Return ``value`` as a Power Query M text literal."""
    return '"' + value.replace('"', '""') + '"'


ATTRIBUTE_INTS = ("year", "quarter", "month", "rank", "segment_order", "bin_number", "periods", "level")
ATTRIBUTE_PREFIXES = ("year_", "fiscal_", "iso_", "day_", "month_", "quarter_", "rank_", "date_")
ATTRIBUTE_SUFFIXES = ("_id", "_key", "_order", "_rank", "_number", "_days", "_step", "_year", "_month")


def summarize_by(column: Column, *, is_key: bool, table: str = "") -> str:
    """Return the default aggregation of a column: ``sum`` for additive amounts and counts, else ``none``.

    Keys, ranks, calendar parts (year, quarter, month, ISO week ...), ordinals and every
    column of a ``dim_*`` table are attributes: summing them means nothing.
    """
    if is_key or column.kind not in ("int", "money") or table.startswith("dim_"):
        return "none"
    name = column.name
    if (
        name in ATTRIBUTE_INTS
        or name.startswith(ATTRIBUTE_PREFIXES)
        or name.endswith(ATTRIBUTE_SUFFIXES)
        or "rank" in name
    ):
        return "none"
    return "sum"


def description_lines(text: str, indent: str) -> list[str]:
    """Return TMDL ``///`` description lines for ``text`` (none when empty)."""
    return [f"{indent}/// {line}".rstrip() for line in text.strip().splitlines()] if text.strip() else []
