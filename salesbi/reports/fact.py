"""``rpt.fact_order_lines``: one row per order line with revenue, cost and profit.

This is the single place where the derived measures of DESIGN.md are defined:

* revenue       = quantity × unit_price × (1 − discount)
* discount_amount = quantity × unit_price × discount
* cost          = quantity × unit_cost (null where the source has no cost)
* gross_profit  = revenue − cost (null where cost is null)
* net_sales     = revenue, or 0 for cancelled orders (net sales exclude cancelled orders)
* credited employee = orders.employee_id, else the customer's sales_rep_id
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salesbi.schema import Column, Table

FACT_ORDER_LINES = Table(
    name="fact_order_lines",
    schema="rpt",
    description="One row per order line; every sales figure in the reports sums this table.",
    key=("order_id", "line_number"),
    columns=(
        Column("order_id", "id", required=True),
        Column("line_number", "int", required=True),
        Column("customer_id", "id", required=True),
        Column("product_id", "id", required=True),
        Column("product_line_id", "id"),
        Column("employee_id", "id", description="credited sales rep"),
        Column("office_id", "id", description="office of the credited sales rep"),
        Column("order_date", "date", required=True),
        Column("shipped_date", "date"),
        Column("status", "text", required=True, length=16),
        Column("is_cancelled", "bool", required=True),
        Column("quantity", "int", required=True),
        Column("unit_price", "money", required=True),
        Column("discount", "fraction", required=True),
        Column("revenue", "money", required=True),
        Column("discount_amount", "money", required=True),
        Column("cost", "money"),
        Column("gross_profit", "money"),
        Column("net_sales", "money", required=True),
        Column("net_profit", "money", description="gross_profit, or 0 for cancelled orders"),
        Column("geography_key", "id", description="customer's '<country>|<city>' (rpt.dim_geography)"),
    ),
    indexes=(("customer_id",), ("order_date",), ("product_id",)),
)

CANCELLED_STATUSES = frozenset({"cancelled"})


def geography_key(country: pd.Series, city: pd.Series) -> pd.Series:
    """Return the ``'<country>|<city>'`` key of ``rpt.dim_geography`` (empty parts when unknown)."""
    return country.astype("string").fillna("") + "|" + city.astype("string").fillna("")


def build_fact_order_lines(core: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Return the ``fact_order_lines`` frame from the canonical ``core`` frames.

    ``core`` maps canonical table names to frames with the contract's columns.
    Lines whose order is unknown are not in the result (validation rejects them
    before they reach ``core``).
    """
    items = core["order_items"]
    orders = core["orders"][
        ["order_id", "customer_id", "employee_id", "order_date", "shipped_date", "status"]
    ]
    customers = core["customers"][["customer_id", "sales_rep_id", "country", "city"]]
    products = core["products"][["product_id", "product_line_id", "unit_cost"]]
    employees = core["employees"][["employee_id", "office_id"]]

    f = items.merge(orders, on="order_id", how="inner", validate="many_to_one")
    f = f.merge(customers, on="customer_id", how="left", validate="many_to_one")
    f = f.merge(products, on="product_id", how="left", validate="many_to_one")
    f["employee_id"] = f["employee_id"].fillna(f["sales_rep_id"])
    f = f.merge(employees, on="employee_id", how="left", validate="many_to_one")

    qty = f["quantity"].astype("float64")
    price = f["unit_price"].astype("float64")
    discount = f["discount"].astype("float64").fillna(0.0)
    gross = qty * price
    f["discount"] = discount
    f["revenue"] = (gross * (1.0 - discount)).round(2)
    f["discount_amount"] = (gross * discount).round(2)
    f["cost"] = (qty * f["unit_cost"].astype("float64")).round(2)
    f["gross_profit"] = (f["revenue"] - f["cost"]).round(2)
    cancelled = f["status"].isin(CANCELLED_STATUSES).to_numpy(dtype=bool)
    f["is_cancelled"] = cancelled
    f["net_sales"] = np.where(cancelled, 0.0, f["revenue"])
    f["net_profit"] = np.where(cancelled, 0.0, f["gross_profit"])
    # a cancelled line of a product without cost still has an unknown profit, not zero
    f.loc[f["gross_profit"].isna(), "net_profit"] = np.nan

    f["geography_key"] = geography_key(f["country"], f["city"])

    f = f.sort_values(["order_id", "line_number"], kind="stable").reset_index(drop=True)
    return f[FACT_ORDER_LINES.column_names]
