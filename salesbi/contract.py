"""The seven-table canonical contract every source profile maps onto.

Tables are listed in load (dependency) order: a table only references tables
listed before it, except ``employees.manager_id`` which references itself.
"""

from __future__ import annotations

from salesbi.schema import Column, Table

ORDER_STATUSES: tuple[str, ...] = (
    "placed",
    "shipped",
    "cancelled",
    "returned",
    "on_hold",
    "disputed",
)

OFFICES = Table(
    name="offices",
    description="Sales offices: where employees work.",
    key=("office_id",),
    columns=(
        Column("office_id", "id", required=True),
        Column("city", "text", required=True),
        Column("state", "text"),
        Column("country", "text", required=True),
        Column("territory", "text"),
        Column("postal_code", "text", length=32),
    ),
)

EMPLOYEES = Table(
    name="employees",
    description="Employees; sales reps are credited with orders.",
    key=("employee_id",),
    columns=(
        Column("employee_id", "id", required=True),
        Column("first_name", "text", required=True),
        Column("last_name", "text", required=True),
        Column("job_title", "text"),
        Column("office_id", "id", required=True, references=("offices", "office_id")),
        Column("manager_id", "id", references=("employees", "employee_id")),
        Column("email", "text"),
        Column("hire_date", "date"),
    ),
)

CUSTOMERS = Table(
    name="customers",
    description="Customers (accounts) and their assigned sales rep.",
    key=("customer_id",),
    columns=(
        Column("customer_id", "id", required=True),
        Column("customer_name", "text", required=True),
        Column("contact_name", "text"),
        Column("city", "text", required=True),
        Column("state", "text"),
        Column("country", "text", required=True),
        Column("postal_code", "text", length=32),
        Column("sales_rep_id", "id", references=("employees", "employee_id")),
        Column("credit_limit", "money"),
    ),
)

PRODUCT_LINES = Table(
    name="product_lines",
    description="Product lines (categories).",
    key=("product_line_id",),
    columns=(
        Column("product_line_id", "id", required=True),
        Column("name", "text", required=True),
        Column("description", "long_text"),
    ),
)

PRODUCTS = Table(
    name="products",
    description="Products with cost and list price; unit_cost may be unknown.",
    key=("product_id",),
    columns=(
        Column("product_id", "id", required=True),
        Column("product_name", "text", required=True),
        Column(
            "product_line_id",
            "id",
            required=True,
            references=("product_lines", "product_line_id"),
        ),
        Column("vendor", "text"),
        Column("unit_cost", "money"),
        Column("list_price", "money"),
        Column("quantity_in_stock", "int"),
    ),
)

ORDERS = Table(
    name="orders",
    description="Order headers.",
    key=("order_id",),
    columns=(
        Column("order_id", "id", required=True),
        Column("customer_id", "id", required=True, references=("customers", "customer_id")),
        Column("employee_id", "id", references=("employees", "employee_id")),
        Column("order_date", "date", required=True),
        Column("required_date", "date"),
        Column("shipped_date", "date"),
        Column("status", "text", required=True, allowed=ORDER_STATUSES, length=16),
        Column("ship_city", "text"),
        Column("ship_country", "text"),
    ),
    indexes=(("customer_id",), ("order_date",)),
)

ORDER_ITEMS = Table(
    name="order_items",
    description="Order lines: what was sold, how many, at what price and discount.",
    key=("order_id", "line_number"),
    columns=(
        Column("order_id", "id", required=True, references=("orders", "order_id")),
        Column("line_number", "int", required=True),
        Column("product_id", "id", required=True, references=("products", "product_id")),
        Column("quantity", "int", required=True),
        Column("unit_price", "money", required=True),
        Column("discount", "fraction", description="fraction of the line price, default 0"),
    ),
    indexes=(("product_id",),),
)

TABLES: tuple[Table, ...] = (
    OFFICES,
    EMPLOYEES,
    CUSTOMERS,
    PRODUCT_LINES,
    PRODUCTS,
    ORDERS,
    ORDER_ITEMS,
)

TABLES_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}


def table(name: str) -> Table:
    """Return the canonical table called ``name``; the error lists the valid names."""
    try:
        return TABLES_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; the contract has {', '.join(TABLES_BY_NAME)}") from None


def children(name: str) -> list[tuple[Table, str, str]]:
    """Return ``(child_table, child_column, parent_column)`` for tables referencing ``name``."""
    out = []
    for t in TABLES:
        for col, parent, parent_col in t.foreign_keys:
            if parent == name and t.name != name:
                out.append((t, col, parent_col))
    return out
