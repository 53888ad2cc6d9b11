"""The report tables as SQLAlchemy Core ``SELECT``\\s over the ``core`` tables, one per table.

Each statement yields exactly the columns of its ``rpt`` definition (``salesbi.reports.tables``)
with the values of the pandas builders (``salesbi.reports.fact`` and ``dims``), computed the
same way in double precision (see :mod:`salesbi.reports.sql.expr`); rows come in no particular
order (the caller sorts by key, by code point as pandas does). ``sales_monthly`` and
``customer_growth`` are pushed down as their aggregates (:func:`monthly_aggregates_select`):
the per-month arithmetic on a few hundred rows is done by :mod:`salesbi.reports.sql.build`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement, Select

from salesbi.reports.fact import CANCELLED_STATUSES, FACT_ORDER_LINES
from salesbi.reports.sql.expr import (
    binary_text,
    concat,
    double,
    flag,
    full_name,
    is_true,
    round_half_even,
    text_or_empty,
)
from salesbi.reports.tables import (
    DIM_CUSTOMER,
    DIM_EMPLOYEE,
    DIM_GEOGRAPHY,
    DIM_OFFICE,
    DIM_PRODUCT,
    DIM_PRODUCT_LINE,
)
from salesbi.schema import Table

#: SQLite: a subquery with an ``OFFSET`` is not flattened into the query around it but run as a
#: co-routine, so each of its columns is computed once per row; flattened, every reference to a
#: rounded amount (revenue in gross profit, net sales, net profit) repeats its whole expression
#: (3.6x the CPU of the fact's statement on SQLite, measured at 200k lines)
NOT_FLATTENED = "LIMIT -1 OFFSET 0"


def core_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """Return the ``core.<name>`` table of the warehouse ``metadata``."""
    return metadata.tables[f"core.{name}"]


def _checked(select: Select[Any], table: Table) -> Select[Any]:
    """Return ``select`` after checking it yields exactly ``table``'s columns, in order."""
    names = [c.name for c in select.selected_columns]
    if names != table.column_names:
        raise AssertionError(f"{table.name}: the SELECT yields {names}, the definition {table.column_names}")
    return select


def geography_key(country: ColumnElement[Any], city: ColumnElement[Any]) -> ColumnElement[str]:
    """Return ``'<country>|<city>'`` with empty parts for nulls (``salesbi.reports.fact.geography_key``)."""
    return concat(text_or_empty(country), "|", text_or_empty(city))


def fact_order_lines_select(metadata: sa.MetaData, *, whole: bool = True) -> Select[Any]:
    """Return the ``SELECT`` of ``rpt.fact_order_lines`` (see ``salesbi.reports.fact``).

    ``whole``: every column is read (PostgreSQL then computes the joined lines once, as a
    materialised CTE, SQLite each stage's columns once per row: :data:`NOT_FLATTENED`); false
    when a query reads a few columns of it, so that the planner drops the joins and expressions
    it does not need.
    """
    items = core_table(metadata, "order_items")
    orders = core_table(metadata, "orders")
    customers = core_table(metadata, "customers")
    products = core_table(metadata, "products")
    employees = core_table(metadata, "employees")
    credited = sa.func.coalesce(orders.c.employee_id, customers.c.sales_rep_id)
    # stage 1: the joined line, its numbers as doubles (cast once: NUMERIC → double is not free);
    # a line of an unknown order is left out
    joined = (
        sa.select(
            items.c.order_id,
            items.c.line_number,
            orders.c.customer_id,
            items.c.product_id,
            products.c.product_line_id,
            credited.label("employee_id"),
            employees.c.office_id,
            orders.c.order_date,
            orders.c.shipped_date,
            orders.c.status,
            flag(orders.c.status.in_(sorted(CANCELLED_STATUSES)) & sa.not_(items.c.quantity < 0)).label(
                "is_cancelled"
            ),
            items.c.quantity,
            double(items.c.quantity).label("qty"),
            double(items.c.unit_price).label("unit_price"),
            sa.func.coalesce(double(items.c.discount), double(0.0)).label("discount"),
            double(products.c.unit_cost).label("unit_cost"),
            geography_key(customers.c.country, customers.c.city).label("geography_key"),
        )
        .select_from(
            items.join(orders, orders.c.order_id == items.c.order_id)
            .outerjoin(customers, customers.c.customer_id == orders.c.customer_id)
            .outerjoin(products, products.c.product_id == items.c.product_id)
            .outerjoin(employees, employees.c.employee_id == credited)
        )
        .cte("fact_lines")
    )
    if whole:  # PostgreSQL would inline the casts again into every expression that uses them
        joined = joined.prefix_with("MATERIALIZED", dialect="postgresql")
    gross = joined.c.qty * joined.c.unit_price
    # every column read: on SQLite each stage is computed once per row (NOT_FLATTENED); a few
    # columns read: flattened, so that SQLite computes only the expressions those columns need
    fence = (NOT_FLATTENED,) if whole else ()
    lines = (
        sa.select(
            *(c for c in joined.c if c.name not in ("qty", "unit_cost")),
            round_half_even(gross * (double(1.0) - joined.c.discount), 2).label("revenue"),
            round_half_even(gross * joined.c.discount, 2).label("discount_amount"),
            round_half_even(joined.c.qty * joined.c.unit_cost, 2).label("cost"),
        )
        .suffix_with(*fence, dialect="sqlite")
        .subquery("lines")
    )
    # stage 2: profit from the rounded revenue and cost
    profit = (
        sa.select(lines, round_half_even(lines.c.revenue - lines.c.cost, 2).label("gross_profit"))
        .suffix_with(*fence, dialect="sqlite")
        .subquery("priced")
    )
    cancelled = is_true(profit.c.is_cancelled)
    net_sales = sa.case((cancelled, double(0.0)), else_=profit.c.revenue)
    net_profit = sa.case(
        (profit.c.gross_profit.is_(None), sa.null()), (cancelled, double(0.0)), else_=profit.c.gross_profit
    )
    extra = {"gross_profit": profit.c.gross_profit, "net_sales": net_sales, "net_profit": net_profit}
    columns = [
        (extra[name] if name in extra else profit.c[name]).label(name)
        for name in FACT_ORDER_LINES.column_names
    ]
    return _checked(sa.select(*columns), FACT_ORDER_LINES)


def dim_geography_select(metadata: sa.MetaData) -> Select[Any]:
    """Return the ``SELECT`` of ``rpt.dim_geography``: per country and city, customers and the usual state."""
    customers = core_table(metadata, "customers")
    key = binary_text(geography_key(customers.c.country, customers.c.city))
    places = (
        sa.select(
            key.label("geography_key"),
            sa.func.min(text_or_empty(customers.c.country)).label("country"),
            sa.func.min(text_or_empty(customers.c.city)).label("city"),
            sa.func.count().label("customers"),
        )
        .group_by(key)
        .subquery("places")
    )
    state = binary_text(customers.c.state)
    per_state = (
        sa.select(key.label("geography_key"), state.label("state"), sa.func.count().label("n"))
        .where(customers.c.state.is_not(None))
        .group_by(key, state)
        .subquery("per_state")
    )
    ranked = sa.select(
        per_state.c.geography_key,
        per_state.c.state,
        sa.func.row_number()
        .over(
            partition_by=per_state.c.geography_key,
            order_by=(per_state.c.n.desc(), binary_text(per_state.c.state).asc()),
        )
        .label("state_rank"),
    ).subquery("ranked")
    usual = (
        sa.select(ranked.c.geography_key, ranked.c.state).where(ranked.c.state_rank == 1).subquery("usual")
    )
    select = sa.select(
        places.c.geography_key,
        places.c.country,
        places.c.city,
        usual.c.state,
        places.c.customers,
    ).select_from(places.outerjoin(usual, usual.c.geography_key == places.c.geography_key))
    return _checked(select, DIM_GEOGRAPHY)


def _count_by(table: sa.Table, column: str, name: str) -> sa.Subquery:
    """Return ``SELECT column, COUNT(*) AS n FROM table GROUP BY column`` as a subquery named ``name``."""
    col = table.c[column]
    return sa.select(col.label("k"), sa.func.count().label("n")).group_by(col).subquery(name)


def dim_office_select(metadata: sa.MetaData) -> Select[Any]:
    """Return the ``SELECT`` of ``rpt.dim_office``: offices with a display name and their employees."""
    offices = core_table(metadata, "offices")
    staff = _count_by(core_table(metadata, "employees"), "office_id", "staff")
    select = sa.select(
        offices.c.office_id,
        concat(text_or_empty(offices.c.city), ", ", text_or_empty(offices.c.country)).label("office_name"),
        offices.c.city,
        offices.c.state,
        offices.c.country,
        offices.c.territory,
        offices.c.postal_code,
        sa.func.coalesce(staff.c.n, 0).label("employees"),
    ).select_from(offices.outerjoin(staff, staff.c.k == offices.c.office_id))
    return _checked(select, DIM_OFFICE)


def dim_employee_select(metadata: sa.MetaData) -> Select[Any]:
    """Return the ``SELECT`` of ``rpt.dim_employee``: names, office, manager and whether a sales rep.

    A sales rep manages a customer or is credited an order that has lines (the pandas builder
    reads the credited employees of the fact's orders; an order's credited employee is its own
    or its customer's rep, and the latter is a rep already).
    """
    employees = core_table(metadata, "employees")
    offices = core_table(metadata, "offices")
    customers = core_table(metadata, "customers")
    orders = core_table(metadata, "orders")
    items = core_table(metadata, "order_items")
    manager = employees.alias("manager")
    manages = sa.exists().where(customers.c.sales_rep_id == employees.c.employee_id)
    credited = sa.exists().where(
        orders.c.employee_id == employees.c.employee_id, items.c.order_id == orders.c.order_id
    )
    select = sa.select(
        employees.c.employee_id,
        full_name(employees.c.first_name, employees.c.last_name).label("employee_name"),
        employees.c.first_name,
        employees.c.last_name,
        employees.c.job_title,
        employees.c.office_id,
        concat(offices.c.city, ", ", offices.c.country).label("office_name"),
        employees.c.manager_id,
        sa.case(
            (manager.c.employee_id.is_(None), sa.null()),
            else_=full_name(manager.c.first_name, manager.c.last_name),
        ).label("manager_name"),
        employees.c.email,
        employees.c.hire_date,
        flag(manages | credited).label("is_sales_rep"),
    ).select_from(
        employees.outerjoin(offices, offices.c.office_id == employees.c.office_id).outerjoin(
            manager, manager.c.employee_id == employees.c.manager_id
        )
    )
    return _checked(select, DIM_EMPLOYEE)


def dim_product_line_select(metadata: sa.MetaData) -> Select[Any]:
    """Return the ``SELECT`` of ``rpt.dim_product_line`` with the number of products in each line."""
    lines = core_table(metadata, "product_lines")
    counts = _count_by(core_table(metadata, "products"), "product_line_id", "counts")
    select = sa.select(
        lines.c.product_line_id,
        lines.c.name.label("product_line_name"),
        lines.c.description,
        sa.func.coalesce(counts.c.n, 0).label("products"),
    ).select_from(lines.outerjoin(counts, counts.c.k == lines.c.product_line_id))
    return _checked(select, DIM_PRODUCT_LINE)


def dim_product_select(metadata: sa.MetaData) -> Select[Any]:
    """Return the ``SELECT`` of ``rpt.dim_product``: line name, list margin, whether the cost is known."""
    products = core_table(metadata, "products")
    lines = core_table(metadata, "product_lines")
    price = double(products.c.list_price)
    cost = double(products.c.unit_cost)
    margin = sa.case((price == double(0.0), sa.null()), else_=round_half_even((price - cost) / price, 4))
    select = sa.select(
        products.c.product_id,
        products.c.product_name,
        products.c.product_line_id,
        lines.c.name.label("product_line_name"),
        products.c.vendor,
        cost.label("unit_cost"),
        price.label("list_price"),
        margin.label("list_margin"),
        products.c.quantity_in_stock,
        flag(products.c.unit_cost.is_not(None)).label("has_cost"),
    ).select_from(products.outerjoin(lines, lines.c.product_line_id == products.c.product_line_id))
    return _checked(select, DIM_PRODUCT)


def dim_customer_select(metadata: sa.MetaData) -> Select[Any]:
    """Return the ``SELECT`` of ``rpt.dim_customer``: geography key, sales rep name, the rep's office."""
    customers = core_table(metadata, "customers")
    reps = core_table(metadata, "employees")
    select = sa.select(
        customers.c.customer_id,
        customers.c.customer_name,
        customers.c.contact_name,
        customers.c.city,
        customers.c.state,
        customers.c.country,
        customers.c.postal_code,
        geography_key(customers.c.country, customers.c.city).label("geography_key"),
        customers.c.sales_rep_id,
        sa.case(
            (reps.c.employee_id.is_(None), sa.null()), else_=full_name(reps.c.first_name, reps.c.last_name)
        ).label("sales_rep_name"),
        reps.c.office_id,
        double(customers.c.credit_limit).label("credit_limit"),
    ).select_from(customers.outerjoin(reps, reps.c.employee_id == customers.c.sales_rep_id))
    return _checked(select, DIM_CUSTOMER)


def _month_of(day: ColumnElement[Any]) -> ColumnElement[int]:
    """Return year × 12 + month − 1 of a date (``salesbi.reports.measures.month_index``)."""
    year = sa.cast(sa.extract("year", day), sa.BigInteger)
    month = sa.cast(sa.extract("month", day), sa.BigInteger)
    return year * 12 + month - 1


def order_sums_select(fact: sa.FromClause) -> Select[Any]:
    """Return one row per order of the fact lines ``fact`` (``salesbi.reports.context.order_frame``).

    Columns: order_id, customer_id, employee_id (credited), office_id, geography_key,
    order_date, cancelled (1/0: the flag of the order's first line), units, net_sales,
    net_profit (null when any line's profit is unknown).
    """
    first_line = sa.func.min(fact.c.line_number)
    first_cancelled_line = sa.func.min(sa.case((is_true(fact.c.is_cancelled), fact.c.line_number)))
    unknown = sa.func.count() - sa.func.count(fact.c.net_profit)
    return sa.select(
        fact.c.order_id,
        sa.func.min(fact.c.customer_id).label("customer_id"),
        sa.func.min(fact.c.employee_id).label("employee_id"),
        sa.func.min(fact.c.office_id).label("office_id"),
        sa.func.min(fact.c.geography_key).label("geography_key"),
        sa.func.min(fact.c.order_date).label("order_date"),
        sa.case((first_cancelled_line == first_line, 1), else_=0).label("cancelled"),
        sa.func.sum(fact.c.quantity).label("units"),
        round_half_even(sa.func.sum(fact.c.net_sales), 2).label("net_sales"),
        sa.case(
            (unknown > 0, sa.null()),
            else_=round_half_even(sa.func.sum(sa.func.coalesce(fact.c.net_profit, double(0.0))), 2),
        ).label("net_profit"),
    ).group_by(fact.c.order_id)


def orders_cte(metadata: sa.MetaData, order_sums: sa.FromClause | None = None) -> sa.CTE:
    """Return one row per order of the fact as a CTE (``salesbi.reports.context.order_frame``).

    Columns: order_id, customer_id, month (:func:`_month_of` the order date), cancelled (1/0:
    the flag of the order's first line), units, net_sales, net_profit (null when any line's
    profit is unknown). ``order_sums``: the rows of :func:`order_sums_select` when materialised.
    """
    if order_sums is None:
        order_sums = order_sums_select(
            fact_order_lines_select(metadata, whole=False).subquery("fact")
        ).subquery("order_sums")
    o = order_sums.c
    return sa.select(
        o.order_id,
        o.customer_id,
        _month_of(o.order_date).label("month"),
        o.cancelled,
        o.units,
        o.net_sales,
        o.net_profit,
    ).cte("report_orders")


def sales_monthly_aggregates_select(metadata: sa.MetaData, *, orders: sa.CTE | None = None) -> Select[Any]:
    """Return per order month: orders_placed, orders_cancelled and, over the kept (non-cancelled)
    orders, units, net_sales (unrounded sum of the orders' sales), profit (sum of the known),
    unknown (orders of unknown profit), active_customers (distinct) and new_customers (customers
    whose first kept order is in the month). ``orders``: :func:`orders_cte` when shared."""
    o = orders_cte(metadata) if orders is None else orders
    kept = o.c.cancelled == 0

    def kept_only(value: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.case((kept, value), else_=sa.null())

    per_month = (
        sa.select(
            o.c.month,
            sa.func.count().label("orders_placed"),
            sa.func.sum(o.c.cancelled).label("orders_cancelled"),
            sa.func.sum(kept_only(o.c.units)).label("units"),
            sa.func.sum(kept_only(o.c.net_sales)).label("net_sales"),
            sa.func.sum(kept_only(o.c.net_profit)).label("profit"),
            sa.func.sum(sa.case((kept & o.c.net_profit.is_(None), 1), else_=0)).label("unknown"),
            sa.func.count(sa.distinct(kept_only(o.c.customer_id))).label("active_customers"),
        )
        .group_by(o.c.month)
        .subquery("per_month")
    )
    first = (
        sa.select(o.c.customer_id, sa.func.min(o.c.month).label("month"))
        .where(kept, o.c.customer_id.is_not(None))
        .group_by(o.c.customer_id)
        .subquery("first_orders")
    )
    new = (
        sa.select(first.c.month, sa.func.count().label("new_customers"))
        .group_by(first.c.month)
        .subquery("new_per_month")
    )
    return sa.select(per_month, sa.func.coalesce(new.c.new_customers, 0).label("new_customers")).select_from(
        per_month.outerjoin(new, new.c.month == per_month.c.month)
    )


def customer_growth_aggregates_select(
    metadata: sa.MetaData, churn_months: int, *, orders: sa.CTE | None = None
) -> Select[Any]:
    """Return the customer ledger's counts (``salesbi.reports.monthly.build_customer_growth``).

    Rows (month, new, retained, regained, churned), several per month (sum them): over the
    distinct (customer, month) pairs of kept orders, a pair is *new* without an earlier pair of
    its customer, *retained* when the previous one is at most ``churn_months`` months before,
    else *regained*; a pair without a next one within ``churn_months`` months counts as
    *churned* in its month + ``churn_months``. ``orders``: :func:`orders_cte` when shared.
    """
    o = orders_cte(metadata) if orders is None else orders
    pairs = (
        sa.select(o.c.customer_id, o.c.month)
        .where(o.c.cancelled == 0)
        .group_by(o.c.customer_id, o.c.month)
        .subquery("active_pairs")
    )
    seq = sa.select(
        pairs.c.customer_id,
        pairs.c.month,
        sa.func.lag(pairs.c.month)
        .over(partition_by=pairs.c.customer_id, order_by=pairs.c.month)
        .label("previous_month"),
        sa.func.lead(pairs.c.month)
        .over(partition_by=pairs.c.customer_id, order_by=pairs.c.month)
        .label("next_month"),
    ).subquery("ledger")
    n = sa.literal(churn_months, sa.BigInteger)
    zero = sa.literal(0, sa.BigInteger)

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return sa.func.sum(sa.case((condition, 1), else_=0))

    active = sa.select(
        seq.c.month.label("month"),
        count_if(seq.c.previous_month.is_(None)).label("new"),
        count_if(seq.c.month - seq.c.previous_month <= n).label("retained"),
        count_if(seq.c.month - seq.c.previous_month > n).label("regained"),
        zero.label("churned"),
    ).group_by(seq.c.month)
    churn_month = seq.c.month + n
    churned = (
        sa.select(
            churn_month.label("month"),
            zero.label("new"),
            zero.label("retained"),
            zero.label("regained"),
            sa.func.count().label("churned"),
        )
        .where(sa.or_(seq.c.next_month.is_(None), seq.c.next_month - seq.c.month > n))
        .group_by(churn_month)
    )
    ledger = sa.union_all(active, churned).subquery("ledger_counts")
    return sa.select(ledger)


#: the columns of :func:`monthly_aggregates_select`'s rows of kind ``sales`` and ``ledger``
SALES_AGGREGATES: tuple[str, ...] = (
    "orders_placed",
    "orders_cancelled",
    "units",
    "net_sales",
    "profit",
    "unknown",
    "active_customers",
    "new_customers",
)
LEDGER_AGGREGATES: tuple[str, ...] = ("new", "retained", "regained", "churned")


def monthly_aggregates_select(
    metadata: sa.MetaData, churn_months: int, order_sums: sa.FromClause | None = None
) -> Select[Any]:
    """Return the aggregates of both monthly tables in one statement over one :func:`orders_cte`.

    Rows: kind (``sales``: :func:`sales_monthly_aggregates_select`, ``ledger``:
    :func:`customer_growth_aggregates_select`), month, then :data:`SALES_AGGREGATES` and
    :data:`LEDGER_AGGREGATES`, null where the kind has no such column. ``order_sums``: the
    rows of :func:`order_sums_select` when materialised.
    """
    o = orders_cte(metadata, order_sums)
    parts = (
        ("sales", sales_monthly_aggregates_select(metadata, orders=o), SALES_AGGREGATES),
        ("ledger", customer_growth_aggregates_select(metadata, churn_months, orders=o), LEDGER_AGGREGATES),
    )
    selects = []
    for kind, select, present in parts:
        sub = select.subquery(f"{kind}_aggregates")
        selects.append(
            sa.select(
                sa.literal(kind, sa.Unicode()).label("kind"),
                sub.c.month,
                *(
                    sub.c[name] if name in present else sa.null().label(name)
                    for name in SALES_AGGREGATES + LEDGER_AGGREGATES
                ),
            )
        )
    return sa.select(sa.union_all(*selects).subquery("monthly_aggregates"))


#: the report tables whose whole ``SELECT`` is rendered here, with their builders
TABLE_SELECTS: dict[str, Callable[[sa.MetaData], Select[Any]]] = {
    "fact_order_lines": fact_order_lines_select,
    "dim_geography": dim_geography_select,
    "dim_office": dim_office_select,
    "dim_employee": dim_employee_select,
    "dim_product_line": dim_product_line_select,
    "dim_product": dim_product_select,
    "dim_customer": dim_customer_select,
}


def all_selects(metadata: sa.MetaData, *, churn_months: int = 2) -> dict[str, Select[Any]]:
    """Return every statement the push-down runs, keyed by table (or aggregate) name."""
    out = {name: build(metadata) for name, build in TABLE_SELECTS.items()}
    out["monthly.aggregates"] = monthly_aggregates_select(metadata, churn_months)
    return out
