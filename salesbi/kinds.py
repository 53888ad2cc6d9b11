"""The registry of column kinds: each kind is one object that knows every representation of it.

A :class:`Kind` holds the SQL type (with its SQL Server variant), the pandas dtype, the
Arrow/Parquet type, the reader's parser, the limit expectations it implies, the Power BI
(TMDL and M) types, format and default summarisation, and its limits (text length,
DECIMAL precision/scale, plausible date range). ``salesbi.types``, ``reading.coerce``,
``validation.rules``, ``powerbi`` and ``contract_doc`` all derive from :data:`KINDS`; no
other module spells a kind's type. Adding a kind means adding one entry here (the tests
check that every consumer handles every registered kind).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

Family = Literal["text", "number", "temporal", "bool"]
Parser = Literal["text", "float", "int", "date", "bool"]
Limit = Literal["text_too_long", "control_character", "number_out_of_range", "date_out_of_range"]

PARSERS: tuple[str, ...] = ("text", "float", "int", "date", "bool")
LIMITS: tuple[str, ...] = ("text_too_long", "control_character", "number_out_of_range", "date_out_of_range")

# Plausible dates for every date column (GX suite parameters earliest_date / latest_date)
EARLIEST_DATE = "1900-01-01"
LATEST_DATE = "2100-12-31"

CURRENCY_FORMAT = r"\$#,0.00;(\$#,0.00);\$#,0.00"
PERCENT_FORMAT = "0.0%;-0.0%;0.0%"
INTEGER_FORMAT = "#,0"
DECIMAL_FORMAT = "#,0.00"


@dataclass(frozen=True)
class Kind:
    """One column kind and all its representations (warehouse, frames, files, checks, Power BI)."""

    name: str
    meaning: str  # one phrase for docs/contract.md
    family: Family
    sql: Callable[[int | None], sa.types.TypeEngine[Any]]  # length (text kinds) → SQLAlchemy type
    pandas_dtype: str
    arrow_type: pa.DataType
    parser: Parser  # how reading.coerce types the raw text
    limits: tuple[Limit, ...]  # the limit expectations (validation.rules) every column of this kind gets
    tmdl_data_type: str
    m_type: str
    format_string: str | None  # TMDL formatString of a column; None: none written
    format_on_key: bool  # False: a key column of this kind gets no formatString
    summable: bool  # Power BI summarizeBy may be ``sum`` (additive amounts and counts)
    identifier: bool = False  # a key or reference: never summarised, hidden on the many side
    max_length: int | None = None  # default most characters (text kinds with a bounded DDL size)
    decimal: tuple[int, int] | None = None  # DECIMAL (precision, scale)
    line_breaks_allowed: bool = False  # text: tabs and line breaks are data, not control characters
    date_only: bool = False  # temporal: the calendar day, a time part is dropped
    date_range: tuple[str, str] | None = None  # temporal: plausible (earliest, latest), ISO dates

    def sql_type(self, length: int | None = None) -> sa.types.TypeEngine[Any]:
        """Return the SQLAlchemy type of a column of this kind (``length`` overrides a text size)."""
        return self.sql(length or self.max_length)

    def text_limit(self, length: int | None = None) -> int | None:
        """Return the most characters of a column of this kind (``length`` overrides); None: unbounded."""
        if self.max_length is None:
            return None
        return length or self.max_length


def _unicode(length: int | None) -> sa.types.TypeEngine[Any]:
    return sa.Unicode(length)


def _decimal(precision: int, scale: int) -> Callable[[int | None], sa.types.TypeEngine[Any]]:
    def make(_: int | None) -> sa.types.TypeEngine[Any]:
        return sa.Numeric(precision, scale, asdecimal=False).with_variant(
            mssql.DECIMAL(precision, scale, asdecimal=False), "mssql"
        )

    return make


_TEXT_LIMITS: tuple[Limit, ...] = ("text_too_long", "control_character")
_DATE_RANGE = (EARLIEST_DATE, LATEST_DATE)

_REGISTRY: tuple[Kind, ...] = (
    Kind(
        name="id",
        meaning="key or reference, kept as text (sources mix numbers and codes)",
        family="text",
        sql=_unicode,
        pandas_dtype="string",
        arrow_type=pa.string(),
        parser="text",
        limits=_TEXT_LIMITS,
        tmdl_data_type="string",
        m_type="type text",
        format_string=None,
        format_on_key=True,
        summable=False,
        identifier=True,
        max_length=64,
    ),
    Kind(
        name="text",
        meaning="short text",
        family="text",
        sql=_unicode,
        pandas_dtype="string",
        arrow_type=pa.string(),
        parser="text",
        limits=_TEXT_LIMITS,
        tmdl_data_type="string",
        m_type="type text",
        format_string=None,
        format_on_key=True,
        summable=False,
        max_length=255,
    ),
    Kind(
        name="long_text",
        meaning="long text",
        family="text",
        sql=lambda _: sa.UnicodeText(),
        pandas_dtype="string",
        arrow_type=pa.string(),
        parser="text",
        limits=("control_character",),
        tmdl_data_type="string",
        m_type="type text",
        format_string=None,
        format_on_key=True,
        summable=False,
        line_breaks_allowed=True,
    ),
    Kind(
        name="int",
        meaning="whole number",
        family="number",
        sql=lambda _: sa.BigInteger(),
        pandas_dtype="Int64",
        arrow_type=pa.int64(),
        parser="int",
        limits=(),
        tmdl_data_type="int64",
        m_type="Int64.Type",
        format_string="0",
        format_on_key=False,
        summable=True,
    ),
    Kind(
        name="money",
        meaning="amount with 2 decimals",
        family="number",
        sql=_decimal(18, 2),
        pandas_dtype="float64",
        arrow_type=pa.float64(),
        parser="float",
        limits=("number_out_of_range",),
        tmdl_data_type="decimal",
        m_type="Currency.Type",
        format_string=CURRENCY_FORMAT,
        format_on_key=True,
        summable=True,
        decimal=(18, 2),
    ),
    Kind(
        name="fraction",
        meaning="share with 4 decimals (0.05 = 5 %)",
        family="number",
        sql=_decimal(9, 4),
        pandas_dtype="float64",
        arrow_type=pa.float64(),
        parser="float",
        limits=("number_out_of_range",),
        tmdl_data_type="double",
        m_type="type number",
        format_string=PERCENT_FORMAT,
        format_on_key=True,
        summable=False,
        decimal=(9, 4),
    ),
    Kind(
        name="float",
        meaning="real number",
        family="number",
        sql=lambda _: sa.Float(precision=53),
        pandas_dtype="float64",
        arrow_type=pa.float64(),
        parser="float",
        limits=(),
        tmdl_data_type="double",
        m_type="type number",
        format_string=DECIMAL_FORMAT,
        format_on_key=True,
        summable=False,
    ),
    Kind(
        name="date",
        meaning="calendar date (a time part is dropped)",
        family="temporal",
        sql=lambda _: sa.Date().with_variant(mssql.DATE(), "mssql"),
        pandas_dtype="datetime64[s]",
        arrow_type=pa.date32(),
        parser="date",
        limits=("date_out_of_range",),
        tmdl_data_type="dateTime",
        m_type="type date",
        format_string="yyyy-mm-dd",
        format_on_key=True,
        summable=False,
        date_only=True,
        date_range=_DATE_RANGE,
    ),
    Kind(
        name="datetime",
        meaning="timestamp",
        family="temporal",
        sql=lambda _: sa.DateTime().with_variant(mssql.DATETIME2(), "mssql"),
        pandas_dtype="datetime64[us]",
        arrow_type=pa.timestamp("us"),
        parser="date",
        limits=("date_out_of_range",),
        tmdl_data_type="dateTime",
        m_type="type datetime",
        format_string="yyyy-mm-dd hh:nn:ss",
        format_on_key=True,
        summable=False,
        date_range=_DATE_RANGE,
    ),
    Kind(
        name="bool",
        meaning="true/false",
        family="bool",
        sql=lambda _: sa.Boolean(),
        pandas_dtype="boolean",
        arrow_type=pa.bool_(),
        parser="bool",
        limits=(),
        tmdl_data_type="boolean",
        m_type="type logical",
        format_string=None,
        format_on_key=True,
        summable=False,
    ),
)

KINDS: dict[str, Kind] = {k.name: k for k in _REGISTRY}
KIND_NAMES: tuple[str, ...] = tuple(KINDS)


def kind(name: str) -> Kind:
    """Return the registered :class:`Kind` called ``name``; ValueError lists the known kinds."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown column kind {name!r}; use one of {KIND_NAMES}") from None


def kinds_in(family: Family) -> tuple[str, ...]:
    """Return the names of the kinds of one family (``text``, ``number``, ``temporal``, ``bool``)."""
    return tuple(k.name for k in _REGISTRY if k.family == family)
