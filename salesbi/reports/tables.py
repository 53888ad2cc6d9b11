"""Definitions of the report-layer tables built by :mod:`salesbi.reports`.

The Power BI model, the Parquet export and the warehouse DDL are generated from
these objects, so a column name here is a contract: rename nothing, only add.
Exact definitions of every measure are in ``docs/reports.md``.
"""

from __future__ import annotations

from salesbi.reports.fact import FACT_ORDER_LINES
from salesbi.schema import Column, Table

LOYALTY_TIERS: tuple[str, ...] = ("Platinum", "Gold", "Silver", "Bronze", "None")
ABC_CLASSES: tuple[str, ...] = ("A", "B", "C")
REWARD_TIERS: tuple[str, ...] = ("Gold", "Silver", "Bronze", "None")
LOCATION_LEVELS: tuple[str, ...] = ("country", "state", "city", "office")
INSIGHT_TOPICS: tuple[str, ...] = (
    "customers",
    "locations",
    "products",
    "employees",
    "trend",
    "segments",
    "forecast",
    "data",
)
METRIC_FORMATS: tuple[str, ...] = ("percent", "money", "count", "days", "ratio")


def _yoy_columns() -> tuple[Column, ...]:
    """Return the rolling twelve-month comparison columns shared by the summaries."""
    return (
        Column("sales_last_12m", "money", description="net sales in the 12 months before as_of_date"),
        Column("sales_prior_12m", "money", description="net sales in the 12 months before those"),
        Column(
            "yoy_growth",
            "float",
            description="sales_last_12m / sales_prior_12m − 1; null when the prior figure is 0 "
            "or the data do not cover the prior 12 months",
        ),
    )


DIM_DATE = Table(
    name="dim_date",
    schema="rpt",
    description="Calendar: one row per day over whole years covering every order and ship date.",
    key=("date",),
    columns=(
        Column("date", "date", required=True),
        Column("date_key", "int", required=True, description="yyyymmdd"),
        Column("year", "int", required=True),
        Column("quarter", "int", required=True, description="1..4"),
        Column("quarter_label", "text", required=True, length=8, description="e.g. 'Q1'"),
        Column("year_quarter", "text", required=True, length=8, description="e.g. '2004 Q1'"),
        Column("month", "int", required=True, description="1..12"),
        Column("month_name", "text", required=True, length=16, description="e.g. 'March'"),
        Column("month_short", "text", required=True, length=8, description="e.g. 'Mar'"),
        Column("month_start", "date", required=True, description="first day of the month"),
        Column("year_month", "text", required=True, length=8, description="e.g. '2004-03' (sorts)"),
        Column("year_month_label", "text", required=True, length=16, description="e.g. 'Mar 2004'"),
        Column("year_month_key", "int", required=True, description="yyyymm, sort key of the label"),
        Column("day_of_month", "int", required=True),
        Column("day_of_year", "int", required=True),
        Column("iso_year", "int", required=True),
        Column("iso_week", "int", required=True, description="ISO 8601 week, 1..53"),
        Column("day_of_week", "int", required=True, description="ISO: 1 = Monday .. 7 = Sunday"),
        Column("day_name", "text", required=True, length=16, description="e.g. 'Monday'"),
        Column("day_short", "text", required=True, length=8, description="e.g. 'Mon'"),
        Column("is_weekend", "bool", required=True),
        Column(
            "fiscal_year",
            "int",
            required=True,
            description="named by the calendar year in which the fiscal year ends",
        ),
        Column("fiscal_quarter", "int", required=True, description="1..4 counted from the fiscal start"),
        Column("fiscal_month", "int", required=True, description="1..12 counted from the fiscal start"),
        Column("fiscal_year_label", "text", required=True, length=16, description="e.g. 'FY2004'"),
    ),
)

DIM_GEOGRAPHY = Table(
    name="dim_geography",
    schema="rpt",
    description="Customer locations: one row per country and city.",
    key=("geography_key",),
    columns=(
        Column("geography_key", "id", required=True, description="'<country>|<city>'"),
        Column("country", "text", required=True),
        Column("city", "text", required=True),
        Column("state", "text", description="most frequent state among the city's customers"),
        Column("customers", "int", required=True, description="customers located here"),
    ),
)

DIM_OFFICE = Table(
    name="dim_office",
    schema="rpt",
    description="Sales offices.",
    key=("office_id",),
    columns=(
        Column("office_id", "id", required=True),
        Column("office_name", "text", required=True, description="'<city>, <country>'"),
        Column("city", "text", required=True),
        Column("state", "text"),
        Column("country", "text", required=True),
        Column("territory", "text"),
        Column("postal_code", "text", length=32),
        Column("employees", "int", required=True),
    ),
)

DIM_EMPLOYEE = Table(
    name="dim_employee",
    schema="rpt",
    description="Employees with their office and manager.",
    key=("employee_id",),
    columns=(
        Column("employee_id", "id", required=True),
        Column("employee_name", "text", required=True, description="first and last name"),
        Column("first_name", "text", required=True),
        Column("last_name", "text", required=True),
        Column("job_title", "text"),
        Column("office_id", "id", references=("dim_office", "office_id")),
        Column("office_name", "text"),
        Column("manager_id", "id"),
        Column("manager_name", "text"),
        Column("email", "text"),
        Column("hire_date", "date"),
        Column("is_sales_rep", "bool", required=True, description="manages customers or is credited orders"),
    ),
)

DIM_PRODUCT_LINE = Table(
    name="dim_product_line",
    schema="rpt",
    description="Product lines (categories).",
    key=("product_line_id",),
    columns=(
        Column("product_line_id", "id", required=True),
        Column("product_line_name", "text", required=True),
        Column("description", "long_text"),
        Column("products", "int", required=True),
    ),
)

DIM_PRODUCT = Table(
    name="dim_product",
    schema="rpt",
    description="Products with their line, cost and list price.",
    key=("product_id",),
    columns=(
        Column("product_id", "id", required=True),
        Column("product_name", "text", required=True),
        Column("product_line_id", "id", references=("dim_product_line", "product_line_id")),
        Column("product_line_name", "text"),
        Column("vendor", "text"),
        Column("unit_cost", "money"),
        Column("list_price", "money"),
        Column("list_margin", "fraction", description="(list_price − unit_cost) / list_price"),
        Column("quantity_in_stock", "int"),
        Column("has_cost", "bool", required=True, description="false where the source has no cost"),
    ),
)

DIM_CUSTOMER = Table(
    name="dim_customer",
    schema="rpt",
    description="Customers with location, sales rep and office.",
    key=("customer_id",),
    columns=(
        Column("customer_id", "id", required=True),
        Column("customer_name", "text", required=True),
        Column("contact_name", "text"),
        Column("city", "text"),
        Column("state", "text"),
        Column("country", "text"),
        Column("postal_code", "text", length=32),
        Column("geography_key", "id", references=("dim_geography", "geography_key")),
        Column("sales_rep_id", "id", references=("dim_employee", "employee_id")),
        Column("sales_rep_name", "text"),
        Column("office_id", "id", description="office of the sales rep"),
        Column("credit_limit", "money"),
    ),
)

CUSTOMER_SUMMARY = Table(
    name="customer_summary",
    schema="rpt",
    description="One row per customer: orders, sales, profit, recency, rank and loyalty tier.",
    key=("customer_id",),
    columns=(
        Column("customer_id", "id", required=True),
        Column("customer_name", "text"),
        Column("country", "text"),
        Column("city", "text"),
        Column("geography_key", "id"),
        Column("sales_rep_id", "id"),
        Column("sales_rep_name", "text"),
        Column("orders", "int", required=True, description="orders placed, cancelled excluded"),
        Column("cancelled_orders", "int", required=True),
        Column("units", "int", required=True, description="units on non-cancelled orders"),
        Column("net_sales", "money", required=True),
        Column("gross_profit", "money", description="null when any sold product has no cost"),
        Column("margin", "fraction", description="gross_profit / net_sales"),
        Column("avg_order_value", "money", description="net_sales / orders"),
        Column("first_order_date", "date"),
        Column("last_order_date", "date"),
        Column("tenure_days", "int", description="days from the first order to as_of_date"),
        Column("recency_days", "int", description="days from the last order to as_of_date"),
        Column("sales_rank", "int", required=True, description="1 = highest net sales; ties by customer_id"),
        Column("sales_share", "fraction", description="share of all net sales"),
        Column("cumulative_share", "fraction", description="share of customers ranked at or above"),
        Column("loyalty_tier", "text", required=True, length=16, allowed=LOYALTY_TIERS),
        Column("is_top_n", "bool", required=True, description="among the top_n customers by net sales"),
        Column("is_lapsed", "bool", required=True, description="no order for lapsed_days (120) days or more"),
        *_yoy_columns(),
        Column("as_of_date", "date", required=True),
    ),
    indexes=(("sales_rank",),),
)

LOCATION_SUMMARY = Table(
    name="location_summary",
    schema="rpt",
    description="Sales by customer country, state/region, city and sales office (one level per row).",
    key=("level", "location_key"),
    columns=(
        Column("level", "text", required=True, length=16, allowed=LOCATION_LEVELS),
        Column(
            "location_key",
            "id",
            required=True,
            description="country name, '<country>|<state>', geography_key or office_id according to level",
        ),
        Column("location_name", "text", required=True),
        Column("country", "text"),
        Column("city", "text"),
        Column("office_id", "id"),
        Column("orders", "int", required=True),
        Column("customers", "int", required=True, description="distinct customers with orders"),
        Column("units", "int", required=True),
        Column("net_sales", "money", required=True),
        Column("gross_profit", "money"),
        Column("margin", "fraction"),
        Column("sales_share", "fraction", description="share of net sales within the level"),
        Column("sales_rank", "int", required=True, description="rank within the level"),
        *_yoy_columns(),
    ),
)

PRODUCT_SUMMARY = Table(
    name="product_summary",
    schema="rpt",
    description="One row per product: units, sales, profit, margin, ABC class and growth.",
    key=("product_id",),
    columns=(
        Column("product_id", "id", required=True),
        Column("product_name", "text"),
        Column("product_line_id", "id"),
        Column("product_line_name", "text"),
        Column("orders", "int", required=True),
        Column("customers", "int", required=True),
        Column("units", "int", required=True),
        Column("net_sales", "money", required=True),
        Column("cost", "money", description="cost of the non-cancelled units; null without cost"),
        Column("gross_profit", "money"),
        Column("margin", "fraction", description="gross_profit / net_sales"),
        Column("discount_amount", "money", required=True),
        Column("sales_rank", "int", required=True),
        Column("profit_rank", "int", description="null when profit is unknown"),
        Column("sales_share", "fraction"),
        Column("cumulative_share", "fraction"),
        Column("abc_class", "text", required=True, length=1, allowed=ABC_CLASSES),
        *_yoy_columns(),
    ),
)

PRODUCT_LINE_SUMMARY = Table(
    name="product_line_summary",
    schema="rpt",
    description="Product lines rolled up from product_summary.",
    key=("product_line_id",),
    columns=(
        Column("product_line_id", "id", required=True),
        Column("product_line_name", "text"),
        Column("products", "int", required=True, description="products with sales"),
        Column("orders", "int", required=True),
        Column("customers", "int", required=True),
        Column("units", "int", required=True),
        Column("net_sales", "money", required=True),
        Column("cost", "money"),
        Column("gross_profit", "money"),
        Column("margin", "fraction"),
        Column("sales_rank", "int", required=True),
        Column("sales_share", "fraction"),
        Column("cumulative_share", "fraction"),
        Column("abc_class", "text", required=True, length=1, allowed=ABC_CLASSES),
        *_yoy_columns(),
    ),
)

EMPLOYEE_PERFORMANCE = Table(
    name="employee_performance",
    schema="rpt",
    description="One row per sales rep: customers, orders, sales, profit, growth, ranks and reward tier.",
    key=("employee_id",),
    columns=(
        Column("employee_id", "id", required=True),
        Column("employee_name", "text"),
        Column("job_title", "text"),
        Column("office_id", "id"),
        Column("office_name", "text"),
        Column("customers_managed", "int", required=True, description="customers whose sales rep this is"),
        Column("customers_served", "int", required=True, description="distinct customers on credited orders"),
        Column("orders", "int", required=True, description="credited non-cancelled orders"),
        Column("net_sales", "money", required=True),
        Column("gross_profit", "money"),
        Column("margin", "fraction"),
        Column("avg_order_value", "money"),
        Column("sales_share", "fraction"),
        *_yoy_columns(),
        Column("rank_overall", "int", required=True),
        Column("rank_in_office", "int", required=True),
        Column("reward_tier", "text", required=True, length=16, allowed=REWARD_TIERS),
    ),
)

SALES_MONTHLY = Table(
    name="sales_monthly",
    schema="rpt",
    description="One row per calendar month from the first to the last order month.",
    key=("month",),
    columns=(
        Column("month", "date", required=True, description="first day of the month"),
        Column("year_month", "text", required=True, length=8),
        Column("year", "int", required=True),
        Column("month_number", "int", required=True),
        Column("orders_placed", "int", required=True, description="all orders dated in the month"),
        Column("orders_cancelled", "int", required=True),
        Column("orders", "int", required=True, description="orders_placed − orders_cancelled"),
        Column("units", "int", required=True),
        Column("net_sales", "money", required=True),
        Column("gross_profit", "money"),
        Column("margin", "fraction"),
        Column("avg_order_value", "money"),
        Column("active_customers", "int", required=True),
        Column("new_customers", "int", required=True, description="first non-cancelled order this month"),
        Column("existing_customers", "int", required=True),
        Column("mom_growth", "float", description="net sales vs the previous month − 1"),
        Column("yoy_growth", "float", description="net sales vs the same month a year earlier − 1"),
        Column("sales_ytd", "money", required=True, description="calendar year to date"),
        Column("is_complete", "bool", required=True, description="the month ended before as_of_date"),
    ),
)

CUSTOMER_GROWTH = Table(
    name="customer_growth",
    schema="rpt",
    description="Monthly customer ledger: new, retained, regained and churned customers.",
    key=("month",),
    columns=(
        Column("month", "date", required=True),
        Column("year_month", "text", required=True, length=8),
        Column("active", "int", required=True, description="customers ordering this month"),
        Column("new", "int", required=True),
        Column("retained", "int", required=True),
        Column("regained", "int", required=True),
        Column("churned", "int", required=True),
        Column(
            "customers_in_window",
            "int",
            required=True,
            description="customers with an order in this month or the churn_months − 1 before",
        ),
        Column("quick_ratio", "float", description="(new + regained) / churned; null when churned = 0"),
        Column("churn_months", "int", required=True),
        Column("is_complete", "bool", required=True),
    ),
)

ORDER_VALUE_DISTRIBUTION = Table(
    name="order_value_distribution",
    schema="rpt",
    description="Non-cancelled orders by order value, in bins with round edges.",
    key=("bin_number",),
    columns=(
        Column("bin_number", "int", required=True),
        Column("bin_label", "text", required=True, length=64),
        Column("lower_bound", "money", required=True, description="inclusive"),
        Column("upper_bound", "money", description="exclusive; null for the open top bin"),
        Column("orders", "int", required=True),
        Column("order_share", "fraction", required=True),
        Column("cumulative_order_share", "fraction", required=True),
        Column("net_sales", "money", required=True),
        Column("sales_share", "fraction", required=True),
    ),
)

INSIGHTS = Table(
    name="insights",
    schema="rpt",
    description="Ranked plain-English findings with the numbers behind them and a recommended action.",
    key=("insight_id",),
    columns=(
        Column("insight_id", "id", required=True, description="stable code, e.g. 'customers.top_share'"),
        Column("rank", "int", required=True, description="1 = read first"),
        Column("topic", "text", required=True, length=16, allowed=INSIGHT_TOPICS),
        Column("question", "text", required=True, description="the management question answered"),
        Column("finding", "long_text", required=True),
        Column("action", "long_text"),
        Column("metric_name", "text", required=True, length=64),
        Column("metric_value", "float"),
        Column("metric_format", "text", required=True, length=16, allowed=METRIC_FORMATS),
        Column("details", "long_text", description="JSON object of the numbers behind the finding"),
        Column("as_of_date", "date", required=True),
    ),
)

TABLES: tuple[Table, ...] = (
    DIM_DATE,
    DIM_GEOGRAPHY,
    DIM_OFFICE,
    DIM_EMPLOYEE,
    DIM_PRODUCT_LINE,
    DIM_PRODUCT,
    DIM_CUSTOMER,
    FACT_ORDER_LINES,
    CUSTOMER_SUMMARY,
    LOCATION_SUMMARY,
    PRODUCT_SUMMARY,
    PRODUCT_LINE_SUMMARY,
    EMPLOYEE_PERFORMANCE,
    SALES_MONTHLY,
    CUSTOMER_GROWTH,
    ORDER_VALUE_DISTRIBUTION,
    INSIGHTS,
)

TABLES_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}

REPORT_TABLE_NAMES: tuple[str, ...] = tuple(t.name for t in TABLES if t.name != "insights")
