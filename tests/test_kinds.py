"""The registry of column kinds (salesbi/kinds.py): every kind complete, every consumer derived from it."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql, postgresql, sqlite

from salesbi import contract, kinds
from salesbi.contract_doc import render_table
from salesbi.kinds import KIND_NAMES, KINDS, LIMITS, PARSERS, Kind
from salesbi.powerbi.semantic_model import partition_source
from salesbi.powerbi.tmdl import summarize_by
from salesbi.reading.coerce import type_column
from salesbi.reading.profile import DEFAULT_CSV
from salesbi.schema import LINEAGE, LINEAGE_NAMES, Column, ColumnKind, Table
from salesbi.types import arrow_schema, conform, sql_type, to_arrow
from salesbi.validation.limits import storable
from salesbi.validation.rules import LIMIT_RULES, contract_rules
from salesbi.warehouse.ddl import add_core_table, add_staging_table
from salesbi.warehouse.tsql import _dialect as sql_server_2022

TMDL_DATA_TYPES = {"string", "int64", "decimal", "double", "dateTime", "boolean"}
# One readable value per parser, as it would appear in a CSV cell.
SAMPLE_TEXT = {"text": "A-1", "float": "12.5", "int": "42", "date": "2024-03-01", "bool": "yes"}

# What the warehouse DDL, the frames and Power BI must keep showing (the checked-in sql_server/,
# powerbi/ and expectations/ files pin the rest byte for byte).
PINNED = {
    "id": ("NVARCHAR(64)", "string", "string", "type text"),
    "text": ("NVARCHAR(255)", "string", "string", "type text"),
    "long_text": ("NVARCHAR(max)", "string", "string", "type text"),
    "int": ("BIGINT", "Int64", "int64", "Int64.Type"),
    "money": ("DECIMAL(18, 2)", "float64", "decimal", "Currency.Type"),
    "fraction": ("DECIMAL(9, 4)", "float64", "double", "type number"),
    "float": ("FLOAT(53)", "float64", "double", "type number"),
    "date": ("DATE", "datetime64[s]", "dateTime", "type date"),
    "datetime": ("DATETIME2", "datetime64[us]", "dateTime", "type datetime"),
    "bool": ("BIT", "boolean", "boolean", "type logical"),
}


def one_column_per_kind(names: typing.Iterable[str]) -> Table:
    """Return a table with a text key and one column of every kind named (``c_<kind>``)."""
    cols = [Column("k", "id")] + [Column(f"c_{n}", typing.cast(ColumnKind, n)) for n in names]
    return Table("every_kind", tuple(cols), key=("k",), schema="rpt")


def test_the_column_kind_literal_names_exactly_the_registered_kinds() -> None:
    assert typing.get_args(ColumnKind) == KIND_NAMES
    assert tuple(KINDS) == KIND_NAMES


@pytest.mark.parametrize("name", KIND_NAMES)
def test_every_kind_is_complete(name: str) -> None:
    k = KINDS[name]
    assert k.name == name and k.meaning
    for field in dataclasses.fields(Kind):
        value = getattr(k, field.name)
        # optional limits are None exactly when the kind has no such limit (checked below)
        if field.name not in ("format_string", "max_length", "decimal", "date_range"):
            assert value is not None, f"{name}.{field.name} is not set"
    for dialect in (sqlite.dialect(), postgresql.dialect(), mssql.dialect()):
        assert str(k.sql_type().compile(dialect=dialect))
    assert str(pd.Series([], dtype=k.pandas_dtype).dtype) == k.pandas_dtype
    assert isinstance(k.arrow_type, pa.DataType)
    assert k.parser in PARSERS
    assert set(k.limits) <= set(LIMITS) and len(set(k.limits)) == len(k.limits)
    assert k.tmdl_data_type in TMDL_DATA_TYPES and k.m_type
    # the limits follow from the kind's other attributes, both ways
    assert ("text_too_long" in k.limits) == (k.max_length is not None)
    assert ("control_character" in k.limits) == (k.family == "text")
    assert ("number_out_of_range" in k.limits) == (k.decimal is not None)
    assert ("date_out_of_range" in k.limits) == (k.date_range is not None) == (k.family == "temporal")
    assert (k.family == "text") == (k.parser == "text") == (k.pandas_dtype == "string")
    if k.decimal is not None:
        precision, scale = k.decimal
        assert 0 < scale < precision
    if k.date_only:
        assert k.family == "temporal"
    if k.line_breaks_allowed or k.identifier:
        assert k.family == "text"


@pytest.mark.parametrize("name", KIND_NAMES)
def test_pinned_representations_of_each_kind(name: str) -> None:
    k = KINDS[name]
    sql = str(k.sql_type().compile(dialect=sql_server_2022()))
    assert (sql, k.pandas_dtype, k.tmdl_data_type, k.m_type) == PINNED[name]
    override = sql_type(Column("x", typing.cast(ColumnKind, name), length=12))
    assert str(override.compile(dialect=sql_server_2022())) == ("NVARCHAR(12)" if k.max_length else sql)


def test_lineage_columns_are_defined_once_and_typed_by_their_kinds() -> None:
    assert LINEAGE_NAMES == ("_run_id", "_source_file", "_source_line", "_status")
    staging = add_staging_table(sa.MetaData(), contract.table("offices"))
    ddl = {c.name: (str(c.type.compile(dialect=mssql.dialect())), c.nullable) for c in staging.columns}
    assert [ddl[n] for n in LINEAGE_NAMES] == [
        ("NVARCHAR(64)", False),
        ("NVARCHAR(400)", True),
        ("BIGINT", True),
        ("NVARCHAR(16)", False),
    ]
    assert list(staging.columns.keys())[-len(LINEAGE) :] == list(LINEAGE_NAMES)


def _exercise_consumers(table: Table) -> None:
    """Run every consumer of the registry on ``table`` (one column per kind); fail on any gap."""
    # warehouse DDL: created on SQLite, compiled for PostgreSQL and SQL Server
    md = sa.MetaData()
    core = add_core_table(md, dataclasses.replace(table, schema="core"))
    add_staging_table(md, table)
    for dialect in (postgresql.dialect(), mssql.dialect()):
        assert str(sa.schema.CreateTable(core).compile(dialect=dialect))
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        for schema in ("core", "staging"):
            conn.exec_driver_sql(f"ATTACH DATABASE ':memory:' AS {schema}")
        md.create_all(conn)
    engine.dispose()
    # reading: every column typed from its CSV text by the kind's parser
    typed = {"k": pd.Series(["1", "2"], dtype="string")}
    for c in table.columns[1:]:
        raw = pd.Series([SAMPLE_TEXT[c.spec.parser], pd.NA], dtype="string")
        result = type_column(raw, c, DEFAULT_CSV)
        assert not result.bad.any(), c.name
        assert str(result.series.dtype) == c.spec.pandas_dtype, c.name
        assert result.series.isna().tolist() == [False, True], c.name
        typed[c.name] = result.series
    frame = pd.DataFrame(typed)
    # frames and Parquet
    arrow = to_arrow(frame, table)
    assert arrow.schema.equals(arrow_schema(table))
    assert [str(conform(frame, table)[c.name].dtype) for c in table.columns] == [
        c.spec.pandas_dtype for c in table.columns
    ]
    # validation: every limit the kind names becomes a rule, and storable() copes with every kind
    rules = {(r.column, r.id) for r in contract_rules(table)}
    for c in table.columns:
        assert {(c.name, limit) for limit in c.spec.limits} <= rules
    assert storable(frame, table, np.ones(len(frame), dtype=bool)).shape == frame.shape
    # Power BI and the contract document
    m_types = partition_source(table)[-3]
    for c in table.columns:
        assert c.spec.m_type in m_types
        assert summarize_by(c, is_key=False) in ("sum", "none")
    assert len(render_table(table)) > len(table.columns)


def test_every_consumer_handles_every_registered_kind() -> None:
    assert set(LIMIT_RULES) == set(LIMITS)
    _exercise_consumers(one_column_per_kind(KIND_NAMES))


@pytest.fixture
def extra_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Register a new kind (a short product code) in the registry only, for the duration of a test."""
    code = dataclasses.replace(KINDS["text"], name="code", meaning="short code", max_length=12)
    monkeypatch.setitem(kinds.KINDS, "code", code)
    yield "code"


def test_a_kind_added_to_the_registry_alone_works_everywhere(extra_kind: str) -> None:
    table = one_column_per_kind([extra_kind])
    _exercise_consumers(table)
    assert str(sql_type(table.column("c_code")).compile(dialect=mssql.dialect())) == "NVARCHAR(12)"
    too_long = [r for r in contract_rules(table) if r.id == "text_too_long" and r.column == "c_code"]
    assert too_long[0].kwargs["max_value"] == 12


def test_an_unregistered_kind_is_refused_with_the_known_kinds() -> None:
    with pytest.raises(ValueError, match=r"unknown kind 'percent'.*money"):
        Column("x", typing.cast(ColumnKind, "percent"))
