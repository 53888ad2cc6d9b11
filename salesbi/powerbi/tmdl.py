"""Small TMDL writing helpers: quoting, M literals, default summarisation.

A column's TMDL ``dataType``, M type and format string come from its kind
(:mod:`salesbi.kinds`); the format strings are re-exported here for measures.
"""

from __future__ import annotations

import re

from salesbi.kinds import CURRENCY_FORMAT, DECIMAL_FORMAT, INTEGER_FORMAT, PERCENT_FORMAT
from salesbi.schema import Column

__all__ = [
    "CURRENCY_FORMAT",
    "DECIMAL_FORMAT",
    "INTEGER_FORMAT",
    "PERCENT_FORMAT",
    "TEXT_FORMAT",
    "dax_table",
    "description_lines",
    "m_string",
    "quote",
    "summarize_by",
]

_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

TEXT_FORMAT = "@"  # text measures (labels): shown as they are


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
    if is_key or column.spec.identifier or not column.spec.summable or table.startswith("dim_"):
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
