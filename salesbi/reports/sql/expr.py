"""Dialect-aware SQL expressions that reproduce the pandas report layer's arithmetic exactly.

pandas rounds money with numpy (``x × 10^d``, round half to even, ``÷ 10^d`` in binary floating
point) and compares text by code point. SQL's ``ROUND`` on ``NUMERIC`` rounds half away from
zero and ``ORDER BY``/``GROUP BY`` follow the database collation, so the push-down uses these
constructs instead: every value is computed in double precision exactly as pandas computes it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, expression
from sqlalchemy.sql.compiler import SQLCompiler

#: IEEE double precision on every dialect (PostgreSQL ``FLOAT(53)`` = ``double precision``)
DOUBLE = sa.Float(precision=53)


class rint(expression.FunctionElement[float]):
    """``rint(x)``: ``x`` rounded to the nearest integer, ties to even, as a double."""

    type = DOUBLE
    name = "rint"
    inherit_cache = True


@compiles(rint, "postgresql")
def _rint_postgresql(element: rint, compiler: SQLCompiler, **kw: Any) -> str:
    # PostgreSQL's round(double precision) is the C library's rint(): ties to even
    return f"round(CAST({compiler.process(element.clauses, **kw)} AS DOUBLE PRECISION))"


@compiles(rint, "sqlite")
def _rint_sqlite(element: rint, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's round(y) (a double) rounds half away from zero: on an exact tie to an odd value the
    # even neighbour is 2y − round(y). Not FLOOR: SQLAlchemy's SQLite driver replaces floor() by
    # Python's math.floor, called row by row (and failing on NULL)
    y = compiler.process(element.clauses, **kw)
    r = f"round({y})"
    tie_to_odd = f"abs({r} - ({y})) = 0.5 AND CAST({r} AS INTEGER) % 2 <> 0"
    return f"(CASE WHEN {tie_to_odd} THEN 2 * ({y}) - {r} ELSE {r} END)"


@compiles(rint)
def _rint_generic(element: rint, compiler: SQLCompiler, **kw: Any) -> str:
    # FLOOR(y + 0.5), one less on an exact tie whose upper neighbour is odd
    y = compiler.process(element.clauses, **kw)
    up = f"FLOOR(({y}) + 0.5)"
    return f"({up} - CASE WHEN {up} - ({y}) = 0.5 AND {up} - 2 * FLOOR({up} / 2) = 1 THEN 1 ELSE 0 END)"


class floor_of(expression.FunctionElement[float]):
    """``FLOOR(x)``: the largest integer not above ``x`` (null stays null)."""

    type = DOUBLE
    name = "floor_of"
    inherit_cache = True


@compiles(floor_of)
def _floor_generic(element: floor_of, compiler: SQLCompiler, **kw: Any) -> str:
    return f"FLOOR({compiler.process(element.clauses, **kw)})"


@compiles(floor_of, "sqlite")
def _floor_sqlite(element: floor_of, compiler: SQLCompiler, **kw: Any) -> str:
    # CAST truncates toward zero: one less for a negative non-integer (an integer result)
    x = compiler.process(element.clauses, **kw)
    return f"(CAST({x} AS INTEGER) - (({x}) < CAST({x} AS INTEGER)))"


class ceiling_of(expression.FunctionElement[float]):
    """``CEILING(x)``: the smallest integer not below ``x`` (null stays null)."""

    type = DOUBLE
    name = "ceiling_of"
    inherit_cache = True


@compiles(ceiling_of)
def _ceiling_generic(element: ceiling_of, compiler: SQLCompiler, **kw: Any) -> str:
    return f"ceiling({compiler.process(element.clauses, **kw)})"


@compiles(ceiling_of, "sqlite")
def _ceiling_sqlite(element: ceiling_of, compiler: SQLCompiler, **kw: Any) -> str:
    x = compiler.process(element.clauses, **kw)
    return f"(CAST({x} AS INTEGER) + (({x}) > CAST({x} AS INTEGER)))"


class binary_text(expression.FunctionElement[str]):
    """The text ``x`` under a code-point (binary) collation, for ``GROUP BY`` and ``ORDER BY``."""

    type = sa.Unicode()
    name = "binary_text"
    inherit_cache = True


@compiles(binary_text, "postgresql")
def _binary_postgresql(element: binary_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


@compiles(binary_text, "mssql")
def _binary_mssql(element: binary_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)}) COLLATE Latin1_General_100_BIN2"


@compiles(binary_text)
def _binary_generic(element: binary_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)})"  # SQLite compares text as bytes already


def double(value: Any) -> ColumnElement[float]:
    """Return ``value`` (a column or a Python number) as a double-precision SQL expression."""
    if isinstance(value, int | float):
        value = sa.literal(float(value))  # typed on every dialect, also with literal binds
    return sa.cast(value, DOUBLE)


def round_half_even(value: ColumnElement[Any], digits: int) -> ColumnElement[float]:
    """Return ``value`` rounded as ``numpy.round(value, digits)`` does (× 10^digits, rint, ÷ 10^digits)."""
    scale = double(10.0**digits)
    return rint(double(value) * scale) / scale


def flag(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """Return a condition as a selectable boolean (``CASE``: SQL Server has no boolean expressions)."""
    return sa.case((condition, sa.true()), else_=sa.false())


def is_true(value: ColumnElement[Any]) -> ColumnElement[bool]:
    """Return the condition "the boolean column ``value`` is true" (``= 1`` on SQL Server)."""
    return value == sa.true()


def text_or_empty(value: ColumnElement[Any]) -> ColumnElement[str]:
    """Return ``COALESCE(value, '')``: pandas' ``fillna('')`` on a text column."""
    return sa.func.coalesce(value, sa.literal("", sa.Unicode()))


def concat(*parts: ColumnElement[Any] | str) -> ColumnElement[str]:
    """Return the text concatenation of ``parts`` (null when any part is null, as in pandas)."""
    items = [sa.literal(p, sa.Unicode()) if isinstance(p, str) else p for p in parts]
    out = items[0]
    for p in items[1:]:
        out = out.concat(p)
    return out


def full_name(first: ColumnElement[Any], last: ColumnElement[Any]) -> ColumnElement[str]:
    """Return ``'First Last'`` trimmed, as :func:`salesbi.reports.summaries.employee_names`."""
    return sa.func.trim(concat(text_or_empty(first), " ", text_or_empty(last)))


class days_between(expression.FunctionElement[int]):
    """``days_between(start, end)``: whole days from the date ``start`` to the date ``end``."""

    type = sa.BigInteger()
    name = "days_between"
    inherit_cache = True


@compiles(days_between, "postgresql")
def _days_postgresql(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"(({end}) - ({start}))"  # date − date is an integer of days


@compiles(days_between, "mssql")
def _days_mssql(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"DATEDIFF(day, {start}, {end})"


@compiles(days_between)
def _days_generic(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite: dates are ISO text ('YYYY-MM-DD'); julianday of two days differs by whole days
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(julianday({end}) - julianday({start}) AS INTEGER)"


class date_constant(expression.FunctionElement[Any]):
    """``date_constant('yyyy-mm-dd')``: a date constant comparable with the warehouse's date columns.

    ``CAST('yyyy-mm-dd' AS DATE)`` on PostgreSQL and SQL Server; on SQLite the ISO text itself,
    as SQLAlchemy's ``Date`` stores it there (SQLite's ``CAST(… AS DATE)`` is a numeric cast:
    ``'2023-05-31'`` would become 2023).
    """

    type = sa.Date()
    name = "date_constant"
    inherit_cache = True


@compiles(date_constant)
def _date_generic(element: date_constant, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS DATE)"


@compiles(date_constant, "sqlite")
def _date_sqlite(element: date_constant, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)})"
