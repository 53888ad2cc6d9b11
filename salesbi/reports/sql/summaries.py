"""The analytic report tables as SQL: summaries with ranks, shares and tiers, and the order value bins.

Each ``*_select`` yields exactly its ``rpt`` table's columns with the values of the pandas
builder (``salesbi.reports.summaries`` and ``monthly.build_order_value_distribution``): ranks
are ``ROW_NUMBER`` with ties broken by the key in code-point order, cumulative shares are a
running ``SUM`` in rank order (as ``numpy.cumsum``), tiers compare the share held by the rows
ranked above with the same cut-offs and tolerance as :func:`salesbi.reports.measures.tier_by_share`.
The dates that depend on the whole history (as-of date, 12-month windows) are constants of a
:class:`Windows`, computed first from :func:`fact_bounds_select`. Rows come in no particular
order: :data:`SORT_BY` names the column each table is sorted by (as the pandas builders sort).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement, Select

from salesbi.reports.measures import add_months
from salesbi.reports.monthly import bin_edges, distribution_frame
from salesbi.reports.params import ReportParams
from salesbi.reports.sql.expr import (
    DOUBLE,
    binary_text,
    ceiling_of,
    concat,
    date_constant,
    days_between,
    double,
    flag,
    floor_of,
    full_name,
    is_true,
    round_half_even,
    text_or_empty,
)
from salesbi.reports.sql.selects import _checked, core_table, fact_order_lines_select, order_sums_select
from salesbi.reports.tables import (
    ABC_CLASSES,
    CUSTOMER_SUMMARY,
    EMPLOYEE_PERFORMANCE,
    LOCATION_SUMMARY,
    LOYALTY_TIERS,
    PRODUCT_LINE_SUMMARY,
    PRODUCT_SUMMARY,
)

#: the column(s) each analytic table is sorted by after it is read (stable, ascending)
SORT_BY: dict[str, tuple[str, ...]] = {
    "customer_summary": ("sales_rank",),
    "location_summary": ("_level_order", "sales_rank"),
    "product_summary": ("sales_rank",),
    "product_line_summary": ("sales_rank",),
    "employee_performance": ("rank_overall",),
    "order_value_distribution": ("bin_number",),
}
#: location levels in report order
LEVEL_ORDER: dict[str, int] = {"country": 0, "state": 1, "city": 2, "office": 3}
#: the tolerance of :func:`salesbi.reports.measures.tier_by_share`
TIER_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Windows:
    """The dates every summary depends on, fixed before its statement is rendered.

    as_of: the report date; last_12m_start / prior_12m_start: starts of the two 12-month
    windows; covers_prior_12m: the first order is on or before ``prior_12m_start`` (else the
    prior sales and growth are null, as in ``salesbi.reports.summaries._finish_growth``).
    """

    as_of: date
    last_12m_start: date
    prior_12m_start: date
    covers_prior_12m: bool

    @classmethod
    def of(cls, as_of: date, first_order_date: date | None) -> Windows:
        """Return the windows of ``as_of`` for a history starting at ``first_order_date``."""
        last = add_months(as_of, -12)
        prior = add_months(as_of, -24)
        return cls(as_of, last, prior, first_order_date is not None and first_order_date <= prior)


def date_literal(day: date) -> ColumnElement[Any]:
    """Return ``day`` as a typed SQL date constant (``CAST('yyyy-mm-dd' AS DATE)``; ISO text on SQLite)."""
    return date_constant(sa.literal(day.isoformat(), sa.Unicode()))


def fact_bounds_select(metadata: sa.MetaData, lines: sa.FromClause | None = None) -> Select[Any]:
    """Return one row: the first and last order date and shipped date over the fact's lines.

    Columns first_order, last_order, first_shipped, last_shipped (null without lines): the
    default as-of date and the calendar's bounds (``salesbi.reports.build._calendar_bounds``).
    ``lines``: read them from the fact's lines (the run's build table), not from core.
    """
    if lines is not None:
        return sa.select(
            sa.func.min(lines.c.order_date).label("first_order"),
            sa.func.max(lines.c.order_date).label("last_order"),
            sa.func.min(lines.c.shipped_date).label("first_shipped"),
            sa.func.max(lines.c.shipped_date).label("last_shipped"),
        )
    items = core_table(metadata, "order_items")
    orders = core_table(metadata, "orders")
    return sa.select(
        sa.func.min(orders.c.order_date).label("first_order"),
        sa.func.max(orders.c.order_date).label("last_order"),
        sa.func.min(orders.c.shipped_date).label("first_shipped"),
        sa.func.max(orders.c.shipped_date).label("last_shipped"),
    ).select_from(items.join(orders, orders.c.order_id == items.c.order_id))


# --- shared expressions ------------------------------------------------------------------------


def safe_ratio(num: ColumnElement[Any], den: ColumnElement[Any]) -> ColumnElement[float]:
    """Return num / den in double precision, null where den is 0 or null (``measures.safe_ratio``)."""
    d = double(den)
    return sa.case((d == double(0.0), sa.null()), else_=double(num) / d)


def growth(current: ColumnElement[Any], base: ColumnElement[Any]) -> ColumnElement[float]:
    """Return current / base − 1, null where the base is 0 or null (``measures.growth``)."""
    return safe_ratio(current, base) - double(1.0)


def rank_desc(
    value: ColumnElement[Any], tie: ColumnElement[Any], partition: ColumnElement[Any] | None = None
) -> ColumnElement[int]:
    """Return the 1-based rank by ``value`` descending, ties by ``tie`` in code-point order."""
    return sa.func.row_number().over(partition_by=partition, order_by=(value.desc(), binary_text(tie).asc()))


def clip0(value: ColumnElement[Any]) -> ColumnElement[float]:
    """Return max(value, 0) in double precision (null counts as 0)."""
    v = sa.func.coalesce(double(value), double(0.0))
    return sa.case((v > double(0.0), v), else_=double(0.0))


def shares(
    value: ColumnElement[Any], rank: ColumnElement[Any], partition: ColumnElement[Any] | None = None
) -> tuple[ColumnElement[float], ColumnElement[float], ColumnElement[float]]:
    """Return (share, cumulative share, share ranked above) as ``measures.cumulative_shares``.

    ``rank``: the rank column of an inner query (the running sum follows it); shares are of
    the positive total within ``partition``, all null when that total is not positive.
    """
    total = sa.func.sum(clip0(value)).over(partition_by=partition)
    cum = sa.func.sum(clip0(value)).over(partition_by=partition, order_by=rank, rows=(None, 0))
    positive = total > double(0.0)
    share = sa.case((positive, sa.func.coalesce(double(value), double(0.0)) / total), else_=sa.null())
    cum_share = sa.case((positive, cum / total), else_=sa.null())
    before = sa.case((positive, (cum - clip0(value)) / total), else_=sa.null())
    return share, cum_share, before


def tier(
    before: ColumnElement[Any],
    value: ColumnElement[Any],
    cutoffs: Sequence[float],
    labels: Sequence[str],
    zero_label: str,
) -> ColumnElement[str]:
    """Return the tier of ``measures.tier_by_share``: the first label whose running cut-off
    (less the tolerance) exceeds ``before``; ``zero_label`` where ``value`` is not positive."""
    whens: list[tuple[ColumnElement[bool], str]] = [
        (sa.not_(sa.func.coalesce(double(value), double(0.0)) > double(0.0)), zero_label)
    ]
    bound = 0.0
    for cutoff, label in zip(cutoffs, labels[:-1], strict=True):
        bound += cutoff
        whens.append((sa.func.coalesce(before, double(1.0)) < double(bound - TIER_TOLERANCE), label))
    return sa.case(*[(cond, sa.literal(label, sa.Unicode())) for cond, label in whens], else_=labels[-1])


def _sum0(value: ColumnElement[Any]) -> ColumnElement[Any]:
    return sa.func.coalesce(value, 0)


def _yoy(last: ColumnElement[Any], prior: ColumnElement[Any], windows: Windows) -> list[ColumnElement[Any]]:
    """Return the labelled sales_last_12m, sales_prior_12m and yoy_growth columns."""
    if not windows.covers_prior_12m:
        return [
            last.label("sales_last_12m"),
            sa.cast(sa.null(), DOUBLE).label("sales_prior_12m"),
            sa.cast(sa.null(), DOUBLE).label("yoy_growth"),
        ]
    return [
        last.label("sales_last_12m"),
        prior.label("sales_prior_12m"),
        growth(last, prior).label("yoy_growth"),
    ]


# --- orders ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sources:
    """What the summaries read: the fact's lines and one row per order.

    ``lines``: the rows of :func:`salesbi.reports.sql.selects.fact_order_lines_select`;
    ``orders``: the rows of :func:`salesbi.reports.sql.selects.order_sums_select` over them.
    By default both are subqueries recomputed by each statement; :func:`materialise` makes
    them temporary tables computed once per build.
    """

    lines: sa.FromClause
    orders: sa.FromClause

    @classmethod
    def of(cls, metadata: sa.MetaData) -> Sources:
        """Return the sources as subqueries over ``core``."""
        lines = fact_order_lines_select(metadata, whole=False).subquery("fact")
        return cls(lines, order_sums_select(lines).subquery("order_sums"))


def temporary_table(dialect: sa.Dialect, select: Select[Any], name: str) -> sa.Table:
    """Return the definition of a temporary table ``name`` with ``select``'s columns and types.

    PostgreSQL: ``CREATE TEMPORARY TABLE name``; SQL Server: the session's ``#name``.
    """
    columns = [sa.Column(c.name, c.type) for c in select.selected_columns]
    if dialect.name == "mssql":
        return sa.Table(f"#{name}", sa.MetaData(), *columns)
    return sa.Table(name, sa.MetaData(), *columns, prefixes=["TEMPORARY"])


def materialise_statements(
    dialect: sa.Dialect, select: Select[Any], name: str
) -> tuple[sa.Table, sa.schema.CreateTable, sa.Insert]:
    """Return the temporary table of ``select``, its ``CREATE TABLE`` and its ``INSERT … SELECT``.

    Two statements rather than ``CREATE TABLE … AS`` / ``SELECT … INTO``: the fact's ``SELECT``
    starts with a ``WITH``, which SQL Server accepts before an ``INSERT`` but not inside
    ``SELECT … INTO``'s derived table; the same path then runs on both dialects.
    """
    table = temporary_table(dialect, select, name)
    insert = sa.insert(table).from_select([c.name for c in select.selected_columns], select)
    return table, sa.schema.CreateTable(table), insert


def materialise(conn: sa.Connection, select: Select[Any], name: str) -> sa.Table:
    """Return a temporary table of ``select``'s rows, created on ``conn`` (gone with its transaction).

    The rows are computed once; the statements that read them no longer recompute the joins.
    """
    table, create, insert = materialise_statements(conn.dialect, select, name)
    conn.execute(create)
    conn.execute(insert)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ANALYZE {name}")  # temporary tables get no automatic statistics
    return table


def materialised_sources(
    conn: sa.Connection, metadata: sa.MetaData, lines: sa.Table | None = None
) -> Sources:
    """Return :class:`Sources` as temporary tables on ``conn``: the fact's lines, then its orders.

    ``lines``: the run's build table of the fact's lines (:mod:`salesbi.reports.sql.fact_build`),
    read as it is; without it the lines are computed into a temporary table first.
    """
    if lines is None:
        lines = materialise(conn, fact_order_lines_select(metadata), "report_fact")
    orders = materialise(conn, order_sums_select(lines), "report_order_sums")
    return Sources(lines, orders)


def report_orders(sources: Sources, windows: Windows) -> sa.Subquery:
    """Return one row per order (``salesbi.reports.context.order_frame``) with its windows.

    Columns: those of ``sources.orders`` (order_id, customer_id, employee_id, office_id,
    geography_key, order_date, cancelled, units, net_sales, net_profit), then unknown (1/0:
    profit unknown), sales_last_12m and sales_prior_12m (the order's sales when dated in the
    window, else 0).
    """
    per_order = sources.orders
    o = per_order.c
    in_last = (o.order_date >= date_literal(windows.last_12m_start)) & (
        o.order_date < date_literal(windows.as_of)
    )
    in_prior = (o.order_date >= date_literal(windows.prior_12m_start)) & (
        o.order_date < date_literal(windows.last_12m_start)
    )
    return sa.select(
        per_order,
        sa.case((o.net_profit.is_(None), 1), else_=0).label("unknown"),
        sa.case((in_last, o.net_sales), else_=double(0.0)).label("sales_last_12m"),
        sa.case((in_prior, o.net_sales), else_=double(0.0)).label("sales_prior_12m"),
    ).subquery("report_orders")


def _order_aggregates(
    sold: sa.Subquery,
    key: ColumnElement[Any],
    name: str,
    extra: dict[str, ColumnElement[Any]] | None = None,
) -> sa.Subquery:
    """Return ``summaries.aggregate_orders`` of the kept orders ``sold`` per ``key`` (null keys drop).

    Columns: k, orders, customers, units, net_sales, gross_profit (null when any order's
    profit is unknown), sales_last_12m, sales_prior_12m, money rounded half to even; then the
    labelled aggregates ``extra``.
    """
    k = binary_text(key)
    return (
        sa.select(
            k.label("k"),
            sa.func.count().label("orders"),
            sa.func.count(sa.distinct(binary_text(sold.c.customer_id))).label("customers"),
            sa.func.sum(sold.c.units).label("units"),
            round_half_even(sa.func.sum(sold.c.net_sales), 2).label("net_sales"),
            sa.case(
                (sa.func.sum(sold.c.unknown) > 0, sa.null()),
                else_=round_half_even(sa.func.coalesce(sa.func.sum(sold.c.net_profit), double(0.0)), 2),
            ).label("gross_profit"),
            round_half_even(sa.func.sum(sold.c.sales_last_12m), 2).label("sales_last_12m"),
            round_half_even(sa.func.sum(sold.c.sales_prior_12m), 2).label("sales_prior_12m"),
            *(value.label(label) for label, value in (extra or {}).items()),
        )
        .where(key.is_not(None))
        .group_by(k)
        .subquery(name)
    )


def _kept(orders: sa.Subquery, name: str) -> sa.Subquery:
    return sa.select(orders).where(orders.c.cancelled == 0).subquery(name)


# --- customer_summary --------------------------------------------------------------------------


def customer_summary_select(
    metadata: sa.MetaData, params: ReportParams, windows: Windows, sources: Sources | None = None
) -> Select[Any]:
    """Return the ``SELECT`` of ``rpt.customer_summary`` (``summaries.build_customer_summary``)."""
    customers = core_table(metadata, "customers")
    reps = core_table(metadata, "employees")
    orders = report_orders(sources or Sources.of(metadata), windows)
    sold = _kept(orders, "sold")
    agg = _order_aggregates(sold, sold.c.customer_id, "per_customer")
    dates = (
        sa.select(
            binary_text(sold.c.customer_id).label("k"),
            sa.func.min(sold.c.order_date).label("first_order_date"),
            sa.func.max(sold.c.order_date).label("last_order_date"),
        )
        .group_by(binary_text(sold.c.customer_id))
        .subquery("order_dates")
    )
    cancelled = (
        sa.select(binary_text(orders.c.customer_id).label("k"), sa.func.count().label("n"))
        .where(orders.c.cancelled == 1)
        .group_by(binary_text(orders.c.customer_id))
        .subquery("cancelled_orders")
    )
    as_of = date_literal(windows.as_of)
    n_orders = _sum0(agg.c.orders)
    net_sales = sa.func.coalesce(agg.c.net_sales, double(0.0))
    recency = days_between(dates.c.last_order_date, as_of)
    base = (
        sa.select(
            customers.c.customer_id,
            customers.c.customer_name,
            customers.c.country,
            customers.c.city,
            concat(text_or_empty(customers.c.country), "|", text_or_empty(customers.c.city)).label(
                "geography_key"
            ),
            customers.c.sales_rep_id,
            sa.case(
                (reps.c.employee_id.is_(None), sa.null()),
                else_=full_name(reps.c.first_name, reps.c.last_name),
            ).label("sales_rep_name"),
            n_orders.label("orders"),
            _sum0(cancelled.c.n).label("cancelled_orders"),
            _sum0(agg.c.units).label("units"),
            net_sales.label("net_sales"),
            sa.case((n_orders == 0, sa.null()), else_=agg.c.gross_profit).label("gross_profit"),
            sa.func.coalesce(agg.c.sales_last_12m, double(0.0)).label("sales_last_12m"),
            sa.func.coalesce(agg.c.sales_prior_12m, double(0.0)).label("sales_prior_12m"),
            dates.c.first_order_date,
            dates.c.last_order_date,
            days_between(dates.c.first_order_date, as_of).label("tenure_days"),
            recency.label("recency_days"),
            rank_desc(net_sales, customers.c.customer_id).label("sales_rank"),
        )
        .select_from(
            customers.outerjoin(reps, reps.c.employee_id == customers.c.sales_rep_id)
            .outerjoin(agg, agg.c.k == binary_text(customers.c.customer_id))
            .outerjoin(dates, dates.c.k == binary_text(customers.c.customer_id))
            .outerjoin(cancelled, cancelled.c.k == binary_text(customers.c.customer_id))
        )
        .subquery("ranked_customers")
    )
    b = base.c
    share, cum_share, before = shares(b.net_sales, b.sales_rank)
    select = sa.select(
        b.customer_id,
        b.customer_name,
        b.country,
        b.city,
        b.geography_key,
        b.sales_rep_id,
        b.sales_rep_name,
        b.orders,
        b.cancelled_orders,
        b.units,
        b.net_sales,
        b.gross_profit,
        safe_ratio(b.gross_profit, b.net_sales).label("margin"),
        round_half_even(safe_ratio(b.net_sales, b.orders), 2).label("avg_order_value"),
        b.first_order_date,
        b.last_order_date,
        b.tenure_days,
        b.recency_days,
        b.sales_rank,
        share.label("sales_share"),
        cum_share.label("cumulative_share"),
        tier(
            before,
            b.net_sales,
            (params.platinum_share, params.gold_share, params.silver_share),
            LOYALTY_TIERS[:4],
            LOYALTY_TIERS[4],
        ).label("loyalty_tier"),
        flag((b.sales_rank <= params.top_n) & (b.net_sales > double(0.0))).label("is_top_n"),
        flag(b.recency_days.is_not(None) & (b.recency_days >= params.lapsed_days)).label("is_lapsed"),
        *_yoy(b.sales_last_12m, b.sales_prior_12m, windows),
        as_of.label("as_of_date"),
    )
    return _checked(select, CUSTOMER_SUMMARY)


# --- location_summary --------------------------------------------------------------------------


def _level(
    name: str,
    agg: sa.Subquery,
    *,
    location_name: ColumnElement[Any],
    country: ColumnElement[Any] | None = None,
    city: ColumnElement[Any] | None = None,
    office_id: ColumnElement[Any] | None = None,
    joins: Any = None,
) -> Select[Any]:
    """Return one level's rows of the location union (aggregates of :func:`_order_aggregates`)."""
    null_text = sa.cast(sa.null(), sa.Unicode())
    return sa.select(
        sa.literal(name, sa.Unicode()).label("level"),
        sa.literal(LEVEL_ORDER[name], sa.Integer()).label("_level_order"),
        agg.c.k.label("location_key"),
        location_name.label("location_name"),
        (null_text if country is None else country).label("country"),
        (null_text if city is None else city).label("city"),
        (null_text if office_id is None else office_id).label("office_id"),
        *(agg.c[c] for c in ("orders", "customers", "units", "net_sales", "gross_profit")),
        agg.c.sales_last_12m,
        agg.c.sales_prior_12m,
    ).select_from(agg if joins is None else joins)


def location_summary_select(
    metadata: sa.MetaData, windows: Windows, sources: Sources | None = None
) -> Select[Any]:
    """Return the ``SELECT`` of ``rpt.location_summary`` (``summaries.build_location_summary``).

    Four levels grouped from the kept orders: the customer's country, '<country>|<state>'
    (customers with a state), the geography key '<country>|<city>' and the credited
    employee's office. Ranks and shares are within the level; the statement also yields a
    ``_level_order`` column (0..3) to sort the levels as the pandas builder does.
    """
    customers = core_table(metadata, "customers")
    offices = core_table(metadata, "offices")
    orders = report_orders(sources or Sources.of(metadata), windows)
    kept = _kept(orders, "kept")
    sold = (
        sa.select(
            kept,
            customers.c.country.label("customer_country"),
            customers.c.city.label("customer_city"),
            customers.c.state.label("customer_state"),
        )
        .select_from(kept.join(customers, customers.c.customer_id == kept.c.customer_id))
        .subquery("sold")
    )
    s = sold.c
    country_text = text_or_empty(s.customer_country)
    by_country = _order_aggregates(sold, s.customer_country, "by_country")
    state_key = sa.case(
        (s.customer_state.is_(None), sa.null()), else_=concat(country_text, "|", s.customer_state)
    )
    by_state = _order_aggregates(
        sold,
        state_key,
        "by_state",
        {"state_country": sa.func.min(country_text), "state_name": sa.func.min(s.customer_state)},
    )
    by_city = _order_aggregates(
        sold,
        concat(country_text, "|", text_or_empty(s.customer_city)),
        "by_city",
        {"geo_country": sa.func.min(s.customer_country), "geo_city": sa.func.min(s.customer_city)},
    )
    by_office = _order_aggregates(sold, s.office_id, "by_office")
    levels = [
        _level("country", by_country, location_name=by_country.c.k, country=by_country.c.k),
        _level(
            "state",
            by_state,
            location_name=concat(by_state.c.state_name, ", ", by_state.c.state_country),
            country=by_state.c.state_country,
        ),
        _level(
            "city",
            by_city,
            location_name=concat(
                text_or_empty(by_city.c.geo_city), ", ", text_or_empty(by_city.c.geo_country)
            ),
            country=by_city.c.geo_country,
            city=by_city.c.geo_city,
        ),
        _level(
            "office",
            by_office,
            location_name=concat(
                sa.func.coalesce(offices.c.city, by_office.c.k), ", ", text_or_empty(offices.c.country)
            ),
            country=offices.c.country,
            city=offices.c.city,
            office_id=by_office.c.k,
            joins=by_office.outerjoin(offices, offices.c.office_id == by_office.c.k),
        ),
    ]
    union = sa.union_all(*levels).subquery("levels")
    u = union.c
    ranked = sa.select(union, rank_desc(u.net_sales, u.location_key, u.level).label("sales_rank")).subquery(
        "ranked_levels"
    )
    r = ranked.c
    share, _, _ = shares(r.net_sales, r.sales_rank, r.level)
    select = sa.select(
        r.level,
        r.location_key,
        r.location_name,
        r.country,
        r.city,
        r.office_id,
        r.orders,
        r.customers,
        r.units,
        r.net_sales,
        r.gross_profit,
        safe_ratio(r.gross_profit, r.net_sales).label("margin"),
        share.label("sales_share"),
        r.sales_rank,
        *_yoy(r.sales_last_12m, r.sales_prior_12m, windows),
    )
    _checked(select, LOCATION_SUMMARY)
    return select.add_columns(r._level_order)


# --- product_summary and product_line_summary ----------------------------------------------------


def _line_aggregates(sources: Sources, windows: Windows, key: str, name: str) -> sa.Subquery:
    """Return ``summaries._product_lines``: per-``key`` aggregates of the fact's non-cancelled lines.

    Columns: k, orders and customers (distinct), units, net_sales, cost (null when any line's
    cost is unknown), gross_profit (net_sales − cost of the unrounded sums), discount_amount,
    sales_last_12m, sales_prior_12m, products (distinct), money rounded half to even.
    """
    f = sources.lines.c
    sold = sa.not_(is_true(f.is_cancelled))
    in_last = (f.order_date >= date_literal(windows.last_12m_start)) & (
        f.order_date < date_literal(windows.as_of)
    )
    in_prior = (f.order_date >= date_literal(windows.prior_12m_start)) & (
        f.order_date < date_literal(windows.last_12m_start)
    )
    sales = sa.func.sum(sa.func.coalesce(f.net_sales, double(0.0)))
    cost = sa.func.sum(sa.func.coalesce(f.cost, double(0.0)))
    unknown = sa.func.count() - sa.func.count(f.cost)
    known_cost = sa.case((unknown > 0, sa.null()), else_=cost)
    k = binary_text(f[key])
    return (
        sa.select(
            k.label("k"),
            sa.func.count(sa.distinct(binary_text(f.order_id))).label("orders"),
            sa.func.count(sa.distinct(binary_text(f.customer_id))).label("customers"),
            sa.func.count(sa.distinct(binary_text(f.product_id))).label("products"),
            sa.func.sum(f.quantity).label("units"),
            round_half_even(sales, 2).label("net_sales"),
            round_half_even(known_cost, 2).label("cost"),
            round_half_even(sales - known_cost, 2).label("gross_profit"),
            round_half_even(sa.func.sum(sa.func.coalesce(f.discount_amount, double(0.0))), 2).label(
                "discount_amount"
            ),
            round_half_even(sa.func.sum(sa.case((in_last, f.net_sales), else_=double(0.0))), 2).label(
                "sales_last_12m"
            ),
            round_half_even(sa.func.sum(sa.case((in_prior, f.net_sales), else_=double(0.0))), 2).label(
                "sales_prior_12m"
            ),
        )
        .where(sold, f[key].is_not(None))
        .group_by(k)
        .subquery(name)
    )


def _abc_columns(
    b: Any, key: str, params: ReportParams
) -> tuple[ColumnElement[Any], ColumnElement[Any], ColumnElement[Any]]:
    """Return (sales_share, cumulative_share, abc_class) over ``b.sales_rank`` (``summaries._abc``)."""
    share, cum_share, before = shares(b.net_sales, b.sales_rank)
    abc = tier(before, b.net_sales, (params.abc_a_share, params.abc_b_share), ABC_CLASSES, ABC_CLASSES[-1])
    return share.label("sales_share"), cum_share.label("cumulative_share"), abc.label("abc_class")


def product_summary_select(
    metadata: sa.MetaData, params: ReportParams, windows: Windows, sources: Sources | None = None
) -> Select[Any]:
    """Return the ``SELECT`` of ``rpt.product_summary`` (``summaries.build_product_summary``).

    Products without a unit cost have null cost and profit; costed products without sales 0.
    """
    products = core_table(metadata, "products")
    lines = core_table(metadata, "product_lines")
    agg = _line_aggregates(sources or Sources.of(metadata), windows, "product_id", "per_product")
    n_orders = _sum0(agg.c.orders)
    no_cost = products.c.unit_cost.is_(None)
    cost = sa.case((no_cost, sa.null()), (n_orders == 0, double(0.0)), else_=agg.c.cost)
    profit = sa.case((no_cost, sa.null()), (n_orders == 0, double(0.0)), else_=agg.c.gross_profit)
    net_sales = sa.func.coalesce(agg.c.net_sales, double(0.0))
    base = (
        sa.select(
            products.c.product_id,
            products.c.product_name,
            products.c.product_line_id,
            lines.c.name.label("product_line_name"),
            n_orders.label("orders"),
            _sum0(agg.c.customers).label("customers"),
            _sum0(agg.c.units).label("units"),
            net_sales.label("net_sales"),
            cost.label("cost"),
            profit.label("gross_profit"),
            sa.func.coalesce(agg.c.discount_amount, double(0.0)).label("discount_amount"),
            rank_desc(net_sales, products.c.product_id).label("sales_rank"),
            sa.case(
                (profit.is_(None), sa.null()), else_=rank_desc(profit, products.c.product_id, flag_of(profit))
            ).label("profit_rank"),
            sa.func.coalesce(agg.c.sales_last_12m, double(0.0)).label("sales_last_12m"),
            sa.func.coalesce(agg.c.sales_prior_12m, double(0.0)).label("sales_prior_12m"),
        )
        .select_from(
            products.outerjoin(lines, lines.c.product_line_id == products.c.product_line_id).outerjoin(
                agg, agg.c.k == binary_text(products.c.product_id)
            )
        )
        .subquery("ranked_products")
    )
    b = base.c
    share, cum_share, abc = _abc_columns(b, "product_id", params)
    select = sa.select(
        b.product_id,
        b.product_name,
        b.product_line_id,
        b.product_line_name,
        b.orders,
        b.customers,
        b.units,
        b.net_sales,
        b.cost,
        b.gross_profit,
        safe_ratio(b.gross_profit, b.net_sales).label("margin"),
        b.discount_amount,
        b.sales_rank,
        b.profit_rank,
        share,
        cum_share,
        abc,
        *_yoy(b.sales_last_12m, b.sales_prior_12m, windows),
    )
    return _checked(select, PRODUCT_SUMMARY)


def flag_of(value: ColumnElement[Any]) -> ColumnElement[int]:
    """Return 1 where ``value`` is null, else 0 (a partition that keeps nulls apart)."""
    return sa.case((value.is_(None), 1), else_=0)


def product_line_summary_select(
    metadata: sa.MetaData, params: ReportParams, windows: Windows, sources: Sources | None = None
) -> Select[Any]:
    """Return the ``SELECT`` of ``rpt.product_line_summary`` (``summaries.build_product_line_summary``).

    A line without sales has cost and profit 0 unless one of its products has no cost (null).
    """
    lines = core_table(metadata, "product_lines")
    products = core_table(metadata, "products")
    agg = _line_aggregates(sources or Sources.of(metadata), windows, "product_line_id", "per_line")
    uncosted = sa.exists().where(
        products.c.product_line_id == lines.c.product_line_id, products.c.unit_cost.is_(None)
    )
    n_orders = _sum0(agg.c.orders)
    zero = (n_orders == 0) & sa.not_(uncosted)
    net_sales = sa.func.coalesce(agg.c.net_sales, double(0.0))
    base = (
        sa.select(
            lines.c.product_line_id,
            lines.c.name.label("product_line_name"),
            _sum0(agg.c.products).label("products"),
            n_orders.label("orders"),
            _sum0(agg.c.customers).label("customers"),
            _sum0(agg.c.units).label("units"),
            net_sales.label("net_sales"),
            sa.case((zero, double(0.0)), else_=agg.c.cost).label("cost"),
            sa.case((zero, double(0.0)), else_=agg.c.gross_profit).label("gross_profit"),
            rank_desc(net_sales, lines.c.product_line_id).label("sales_rank"),
            sa.func.coalesce(agg.c.sales_last_12m, double(0.0)).label("sales_last_12m"),
            sa.func.coalesce(agg.c.sales_prior_12m, double(0.0)).label("sales_prior_12m"),
        )
        .select_from(lines.outerjoin(agg, agg.c.k == binary_text(lines.c.product_line_id)))
        .subquery("ranked_lines")
    )
    b = base.c
    share, cum_share, abc = _abc_columns(b, "product_line_id", params)
    select = sa.select(
        b.product_line_id,
        b.product_line_name,
        b.products,
        b.orders,
        b.customers,
        b.units,
        b.net_sales,
        b.cost,
        b.gross_profit,
        safe_ratio(b.gross_profit, b.net_sales).label("margin"),
        b.sales_rank,
        share,
        cum_share,
        abc,
        *_yoy(b.sales_last_12m, b.sales_prior_12m, windows),
    )
    return _checked(select, PRODUCT_LINE_SUMMARY)


# --- employee_performance ------------------------------------------------------------------------


def employee_performance_select(
    metadata: sa.MetaData, params: ReportParams, windows: Windows, sources: Sources | None = None
) -> Select[Any]:
    """Return the ``SELECT`` of ``rpt.employee_performance`` (``summaries.build_employee_performance``).

    Employees who manage a customer or are credited an order of the fact; reward tiers by
    rank among the reps with sales: the first ceil(gold share × n) Gold, up to ceil(silver
    share × n) Silver (computed in double precision, as Python does), the rest Bronze.
    """
    employees = core_table(metadata, "employees")
    offices = core_table(metadata, "offices")
    customers = core_table(metadata, "customers")
    orders = report_orders(sources or Sources.of(metadata), windows)
    sold = _kept(orders, "sold")
    agg = _order_aggregates(sold, sold.c.employee_id, "per_employee")
    managed = (
        sa.select(binary_text(customers.c.sales_rep_id).label("k"), sa.func.count().label("n"))
        .where(customers.c.sales_rep_id.is_not(None))
        .group_by(binary_text(customers.c.sales_rep_id))
        .subquery("managed")
    )
    credited = (
        sa.select(binary_text(orders.c.employee_id).label("k"))
        .where(orders.c.employee_id.is_not(None))
        .group_by(binary_text(orders.c.employee_id))
        .subquery("credited")
    )
    n_managed = _sum0(managed.c.n)
    n_orders = _sum0(agg.c.orders)
    net_sales = sa.func.coalesce(agg.c.net_sales, double(0.0))
    key = binary_text(employees.c.employee_id)
    base = (
        sa.select(
            employees.c.employee_id,
            full_name(employees.c.first_name, employees.c.last_name).label("employee_name"),
            employees.c.job_title,
            employees.c.office_id,
            concat(offices.c.city, ", ", offices.c.country).label("office_name"),
            n_managed.label("customers_managed"),
            _sum0(agg.c.customers).label("customers_served"),
            n_orders.label("orders"),
            net_sales.label("net_sales"),
            sa.case((n_orders == 0, sa.null()), else_=agg.c.gross_profit).label("gross_profit"),
            sa.func.coalesce(agg.c.sales_last_12m, double(0.0)).label("sales_last_12m"),
            sa.func.coalesce(agg.c.sales_prior_12m, double(0.0)).label("sales_prior_12m"),
        )
        .select_from(
            employees.outerjoin(offices, offices.c.office_id == employees.c.office_id)
            .outerjoin(managed, managed.c.k == key)
            .outerjoin(agg, agg.c.k == key)
            .outerjoin(credited, credited.c.k == key)
        )
        .where((n_managed > 0) | credited.c.k.is_not(None))
        .subquery("reps")
    )
    e = base.c
    ranked = sa.select(
        base,
        rank_desc(e.net_sales, e.employee_id).label("rank_overall"),
        rank_desc(e.net_sales, e.employee_id, binary_text(text_or_empty(e.office_id))).label(
            "rank_in_office"
        ),
        sa.func.sum(sa.case((e.net_sales > double(0.0), 1), else_=0)).over().label("with_sales"),
    ).subquery("ranked_reps")
    r = ranked.c
    share, _, _ = shares(r.net_sales, r.rank_overall)
    gold = ceiling_of(double(params.reward_gold_share) * double(r.with_sales))
    silver = ceiling_of(double(params.reward_silver_share) * double(r.with_sales))
    reward = sa.case(
        (sa.not_(r.net_sales > double(0.0)), "None"),
        (double(r.rank_overall) <= gold, "Gold"),
        (double(r.rank_overall) <= silver, "Silver"),
        else_="Bronze",
    )
    select = sa.select(
        r.employee_id,
        r.employee_name,
        r.job_title,
        r.office_id,
        r.office_name,
        r.customers_managed,
        r.customers_served,
        r.orders,
        r.net_sales,
        r.gross_profit,
        safe_ratio(r.gross_profit, r.net_sales).label("margin"),
        round_half_even(safe_ratio(r.net_sales, r.orders), 2).label("avg_order_value"),
        share.label("sales_share"),
        *_yoy(r.sales_last_12m, r.sales_prior_12m, windows),
        r.rank_overall,
        r.rank_in_office,
        reward.label("reward_tier"),
    )
    return _checked(select, EMPLOYEE_PERFORMANCE)


# --- order_value_distribution ----------------------------------------------------------------------

#: the percentile the bins reach (``monthly.build_order_value_distribution``)
TOP_QUANTILE = 0.99


def order_value_stats_select(
    metadata: sa.MetaData, windows: Windows, sources: Sources | None = None
) -> Select[Any]:
    """Return one row over the kept orders' values: n, low (min), high (max), total (sum) and
    below / above: the values at 0-based positions floor(h) and floor(h) + 1 in ascending
    order, h = (n − 1) × 0.99 in double precision (numpy's linear quantile interpolates them)."""
    orders = report_orders(sources or Sources.of(metadata), windows)
    kept = _kept(orders, "kept")
    ranked = sa.select(
        kept.c.net_sales.label("v"),
        (sa.func.row_number().over(order_by=kept.c.net_sales) - 1).label("i"),
        sa.func.count().over().label("n"),
    ).subquery("ranked_values")
    h = floor_of(double(ranked.c.n - 1) * double(TOP_QUANTILE))
    return sa.select(
        sa.func.count().label("n"),
        sa.func.min(ranked.c.v).label("low"),
        sa.func.max(ranked.c.v).label("high"),
        sa.func.sum(ranked.c.v).label("total"),
        sa.func.min(sa.case((double(ranked.c.i) == h, ranked.c.v))).label("below"),
        sa.func.min(sa.case((double(ranked.c.i) == h + double(1.0), ranked.c.v))).label("above"),
    )


def linear_quantile(n: int, below: float, above: float | None, top: float, q: float = TOP_QUANTILE) -> float:
    """Return numpy's default (linear) quantile ``q`` of ``n`` values from its two neighbours.

    ``below``/``above``: the values at positions floor(h) and floor(h) + 1 (h = (n − 1) × q);
    ``top``: the largest value (numpy's answer when h reaches the last position).
    """
    h = (n - 1) * q
    if h >= n - 1 or above is None:
        return top
    t = h - math.floor(h)
    diff = above - below
    return above - diff * (1 - t) if t >= 0.5 else below + diff * t


def order_value_bins_select(
    metadata: sa.MetaData,
    windows: Windows,
    start: float,
    step: float,
    last: int,
    sources: Sources | None = None,
) -> Select[Any]:
    """Return per bin (0-based, ``monthly.bin_index``) of the kept orders: bin, orders, net_sales."""
    orders = report_orders(sources or Sources.of(metadata), windows)
    kept = _kept(orders, "kept")
    raw = floor_of((double(kept.c.net_sales) - double(start)) / double(step))
    idx = sa.case(
        (raw < double(0.0), 0), (raw > double(float(last)), last), else_=sa.cast(raw, sa.BigInteger)
    )
    binned = sa.select(idx.label("bin"), kept.c.net_sales).subquery("binned")
    return sa.select(
        binned.c.bin, sa.func.count().label("orders"), sa.func.sum(binned.c.net_sales).label("net_sales")
    ).group_by(binned.c.bin)


def value_bins(stats: dict[str, Any], bins: int = 10) -> tuple[float, float, int, bool] | None:
    """Return ``monthly.bin_edges`` from the row of :func:`order_value_stats_select` (None: no orders)."""
    n = int(stats["n"] or 0)
    if not n:
        return None
    low, high = float(stats["low"]), float(stats["high"])
    above = None if stats["above"] is None else float(stats["above"])
    hi = linear_quantile(n, float(stats["below"]), above, high)
    return bin_edges(min(0.0, low), hi, high, bins)


def bins_frame(
    rows: list[tuple[int, int, float]], edges: tuple[float, float, int, bool], total: float
) -> Any:
    """Return ``rpt.order_value_distribution`` from the rows of :func:`order_value_bins_select`."""
    start, step, count, top_open = edges
    n_bins = count + (1 if top_open else 0)
    orders = np.zeros(n_bins, dtype="int64")
    sales = np.zeros(n_bins, dtype="float64")
    for b, n, s in rows:
        orders[int(b)] = int(n)
        sales[int(b)] = float(s)
    return distribution_frame(orders, sales, start, step, count, top_open, total)
