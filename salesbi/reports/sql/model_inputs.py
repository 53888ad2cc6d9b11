"""Model-step and insight inputs aggregated by the warehouse (``reports_in="warehouse"``).

Customer segmentation and prediction read order histories: every feature they compute is a
function of the orders (date, customer, sales, cancelled or not, credited employee) plus, for
the product-line breadth, the first date each customer bought each product line on a
non-cancelled line (``salesbi.segmentation.history.behaviour_features``,
``salesbi.prediction.features.prepare``); no feature counts lines. So in warehouse mode the
database sends one row per order and one per (customer, product line) instead of one per
order line, and the models read them as they come
(:func:`salesbi.segmentation.history.order_history`: an ``OrderHistory``, no line rebuilt):

- :func:`order_history_select`: per order ``customer_id, order_id, order_date, employee_id``
  (constant on an order's lines), ``is_cancelled`` (any line cancelled, as
  ``orders_from_lines`` takes the max) and ``SUM(net_sales)``;
- :func:`first_uses_select`: per customer and product line, the first date of a non-cancelled
  line.

The forecast sums net sales per period and series (total, product line, customer country,
office: ``salesbi.forecasting.series.build_series``) and chooses its frequency from the number
of orders per day (``frequency_choice``): :func:`forecast_days_select` sends one row per day,
customer country, product line and office with the sum of net sales and the number of orders
(each order counted on the row of its first line), :data:`salesbi.forecasting.series.DAY_COLUMNS`.

The insights read the fact for the returns finding (net sales of returned lines — not cancelled,
on a cancelled order — and of the other kept lines) and the as-of fallback (the last order
date): :func:`insight_facts_select` sends one row per status and cancelled flag (a dozen rows)
with the sum of net sales and the last order date, which give the same sums and date.

The fact's net sales are whole cents (revenue rounded to 2 decimals), so the sums are added as
integers of cents (:func:`cents_sum`): exact, hence the same whatever order the database adds
the rows in (PostgreSQL's parallel aggregates combine partial sums in the order its workers
finish, which made a double ``SUM`` differ from run to run in the last bits, and LightGBM's
split thresholds and the damped-trend ETS fits with them). The default (pandas) path computes
the same frames from the fact's lines batch by batch, also in integers of cents
(:mod:`salesbi.order_grain`): equal to these, value for value, dtype and order
(tests/test_order_grain.py), so both modes fit the same models. Against the fact's lines summed
as doubles the features agree up to float summation order (tests/test_model_inputs.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement, Select

from salesbi.forecasting.series import DAY_COLUMNS
from salesbi.reports.fact import FACT_ORDER_LINES
from salesbi.reports.sql.expr import binary_text, double, flag, is_true, rint
from salesbi.reports.sql.fact_publish import iter_frames
from salesbi.reports.sql.selects import core_table, fact_order_lines_select
from salesbi.schema import Column, Table
from salesbi.segmentation.history import OrderHistory, order_history
from salesbi.types import conform

#: the columns of the per-order rows (types of the fact's columns of the same name)
ORDER_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "order_id",
    "order_date",
    "employee_id",
    "is_cancelled",
    "net_sales",
)
#: the columns of the first-use rows
FIRST_USE_COLUMNS: tuple[str, ...] = ("customer_id", "product_line_id", "order_date")
#: the model steps that read order-grain rows (:func:`read_order_history`) in warehouse mode
ORDER_GRAIN_STEPS: frozenset[str] = frozenset({"segments", "predictions"})
#: rows per fetched batch (cursor route; PostgreSQL's COPY cuts by bytes)
BATCH_ROWS = 1_000_000


def _spec(name: str, columns: tuple[str, ...], key: tuple[str, ...]) -> Table:
    """Return a definition with the fact's types for ``columns`` (for ``conform`` and the COPY reader)."""
    by_name = {c.name: c for c in FACT_ORDER_LINES.columns}
    return dataclasses.replace(
        FACT_ORDER_LINES, name=name, columns=tuple(by_name[c] for c in columns), key=key, indexes=()
    )


ORDERS_SPEC = _spec("model_orders", ORDER_COLUMNS, ("order_id",))
DAYS_SPEC = dataclasses.replace(
    FACT_ORDER_LINES,
    name="forecast_days",
    columns=tuple(
        Column("country", "text", required=True)
        if c == "country"
        else Column("orders", "int", required=True)
        if c == "orders"
        else next(f for f in FACT_ORDER_LINES.columns if f.name == c)
        for c in DAY_COLUMNS
    ),
    key=(),
    indexes=(),
)
FIRST_USES_SPEC = _spec("model_first_uses", FIRST_USE_COLUMNS, ("customer_id", "product_line_id"))


def cents_sum(value: ColumnElement[Any]) -> ColumnElement[float]:
    """Return ``SUM(value)`` of amounts in whole cents, added exactly as integers of cents (a double)."""
    cents = sa.cast(rint(value * double(100.0)), sa.BigInteger)
    return double(sa.func.sum(cents)) / double(100.0)


def _fact(metadata: sa.MetaData, lines: sa.FromClause | None = None) -> sa.FromClause:
    """Return the fact's lines: the run's build table ``lines``, else the fact's statement over core."""
    if lines is not None:
        return lines
    return fact_order_lines_select(metadata, whole=False).subquery("fact")


def order_history_select(metadata: sa.MetaData, lines: sa.FromClause | None = None) -> Select[Any]:
    """Return the ``SELECT`` of one row per order (:data:`ORDER_COLUMNS`), by order_id (code point)."""
    fact = _fact(metadata, lines)
    any_cancelled = sa.func.max(sa.case((is_true(fact.c.is_cancelled), 1), else_=0))
    keys = (fact.c.customer_id, fact.c.order_id, fact.c.order_date, fact.c.employee_id)
    return (
        sa.select(
            *keys,
            flag(any_cancelled == 1).label("is_cancelled"),
            cents_sum(fact.c.net_sales).label("net_sales"),
        )
        .group_by(*keys)
        .order_by(binary_text(fact.c.order_id))
    )


def first_uses_select(metadata: sa.MetaData, lines: sa.FromClause | None = None) -> Select[Any]:
    """Return the ``SELECT`` of each customer's first non-cancelled day per product line.

    Columns :data:`FIRST_USE_COLUMNS`, ordered by customer and product line (code point).
    """
    fact = _fact(metadata, lines)
    return (
        sa.select(
            fact.c.customer_id, fact.c.product_line_id, sa.func.min(fact.c.order_date).label("order_date")
        )
        .where(sa.not_(is_true(fact.c.is_cancelled)), fact.c.product_line_id.is_not(None))
        .group_by(fact.c.customer_id, fact.c.product_line_id)
        .order_by(binary_text(fact.c.customer_id), binary_text(fact.c.product_line_id))
    )


def forecast_days_select(metadata: sa.MetaData, lines: sa.FromClause | None = None) -> Select[Any]:
    """Return the ``SELECT`` of the forecast's input per day (``DAY_COLUMNS`` of forecasting.series).

    One row per order date, customer country ('Unknown' when the customer or its country is
    not known, as ``series_lines``), product line and office: ``SUM(net_sales)`` and the number
    of orders whose first line is on the row. Ordered by date, then the keys (code point, nulls
    last on every dialect).
    """
    fact = _fact(metadata, lines)
    customers = core_table(metadata, "customers")
    first_line = sa.func.row_number().over(partition_by=fact.c.order_id, order_by=fact.c.line_number)
    per_line = (
        sa.select(
            fact.c.order_date,
            sa.func.coalesce(customers.c.country, sa.literal("Unknown", sa.Unicode())).label("country"),
            fact.c.product_line_id,
            fact.c.office_id,
            fact.c.net_sales,
            sa.case((first_line == 1, 1), else_=0).label("first_line"),
        )
        .select_from(fact.outerjoin(customers, customers.c.customer_id == fact.c.customer_id))
        .subquery("lines")
    )
    keys = (per_line.c.order_date, per_line.c.country, per_line.c.product_line_id, per_line.c.office_id)
    return (
        sa.select(
            *keys,
            cents_sum(per_line.c.net_sales).label("net_sales"),
            sa.func.sum(per_line.c.first_line).label("orders"),
        )
        .group_by(*keys)
        .order_by(per_line.c.order_date, *(o for k in keys[1:] for o in nulls_last(k)))
    )


def nulls_last(value: ColumnElement[Any]) -> tuple[ColumnElement[Any], ...]:
    """Return the ``ORDER BY`` terms of text ``value`` by code point with nulls last on every dialect
    (PostgreSQL puts nulls last, SQLite and SQL Server first; pandas last)."""
    return sa.case((value.is_(None), 1), else_=0), binary_text(value)


def read_forecast_days(
    conn: sa.Connection, metadata: sa.MetaData, lines: sa.FromClause | None = None
) -> pd.DataFrame:
    """Return the forecast's input aggregated per day by the database (:func:`forecast_days_select`).

    ``lines``: the run's build table of the fact's lines (else the lines are computed from core).
    """
    return _read(conn, forecast_days_select(metadata, lines), DAYS_SPEC)


#: the columns of the insights' aggregate (the fact's columns the insights read)
INSIGHT_COLUMNS: tuple[str, ...] = ("status", "is_cancelled", "order_date", "net_sales")
INSIGHTS_SPEC = _spec("insight_facts", INSIGHT_COLUMNS, ("status", "is_cancelled"))


def insight_facts_select(metadata: sa.MetaData, lines: sa.FromClause | None = None) -> Select[Any]:
    """Return the ``SELECT`` of the fact per status and cancelled flag: last order date, net sales (sum)."""
    fact = _fact(metadata, lines)
    keys = (fact.c.status, fact.c.is_cancelled)
    return (
        sa.select(
            *keys,
            sa.func.max(fact.c.order_date).label("order_date"),
            cents_sum(fact.c.net_sales).label("net_sales"),
        )
        .group_by(*keys)
        .order_by(binary_text(fact.c.status), fact.c.is_cancelled)
    )


def read_insight_facts(
    conn: sa.Connection, metadata: sa.MetaData, lines: sa.FromClause | None = None
) -> pd.DataFrame:
    """Return the fact as the insights read it, aggregated by the database (:func:`insight_facts_select`).

    A few rows with the fact's ``status``, ``is_cancelled``, ``order_date`` (the group's last) and
    ``net_sales`` (the group's sum): ``salesbi.reports.insights`` finds the same returns and
    as-of date in them as in the fact's lines (sums up to float summation order).
    """
    return _read(conn, insight_facts_select(metadata, lines), INSIGHTS_SPEC)


def _read(conn: sa.Connection, select: Select[Any], spec: Table) -> pd.DataFrame:
    parts = list(iter_frames(conn, select, spec, batch_rows=BATCH_ROWS))
    if not parts:
        return conform(pd.DataFrame(columns=spec.column_names), spec)
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    return frame.reset_index(drop=True)


def read_order_history(
    conn: sa.Connection, metadata: sa.MetaData, lines: sa.FromClause | None = None
) -> OrderHistory:
    """Return the order history the segmentation and prediction read, aggregated by the database.

    An :class:`~salesbi.segmentation.history.OrderHistory` (``order_history``): one row per order
    and one per (customer, product line) first use; every behaviour and prediction feature
    computed from it equals the one computed from the fact's lines (sums up to float summation
    order). Both statements run on ``conn`` (one snapshot when it is in a transaction).
    ``lines``: the run's build table of the fact's lines (else the lines are computed from core).
    """
    orders = _read(conn, order_history_select(metadata, lines), ORDERS_SPEC)
    first_uses = _read(conn, first_uses_select(metadata, lines), FIRST_USES_SPEC)
    return order_history(orders, first_uses)
