"""``rpt`` tables written by :mod:`salesbi.segmentation`: one row per customer, one row per segment."""

from __future__ import annotations

from salesbi.schema import Column, Table

SEGMENT_NAMES: tuple[str, ...] = (
    "Champions",
    "Loyal",
    "Potential Loyalist",
    "New",
    "Promising",
    "Need Attention",
    "About to Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "Lost",
)

CUSTOMER_SEGMENTS = Table(
    name="customer_segments",
    schema="rpt",
    description=(
        "One row per customer with at least one order: RFM values and scores at the as-of date, "
        "named RFM segment, behaviour cluster, risk and a recommended action (a rep's call list)."
    ),
    key=("customer_id",),
    columns=(
        Column("customer_id", "id", required=True),
        Column("customer_name", "text"),
        Column("country", "text"),
        Column("sales_rep_id", "id", description="the customer's assigned sales rep"),
        Column("sales_rep_name", "text", description="first and last name of the sales rep"),
        Column("as_of_date", "date", required=True, description="day the RFM values are measured at"),
        Column("first_order_date", "date"),
        Column("last_order_date", "date"),
        Column("recency_days", "int", required=True, description="days from the last order to as_of_date"),
        Column("frequency", "int", required=True, description="orders placed (cancelled excluded)"),
        Column("monetary", "money", required=True, description="net sales (cancelled excluded)"),
        Column("tenure_days", "int", description="days from the first order to as_of_date"),
        Column("avg_order_value", "money", description="monetary / frequency"),
        Column("product_lines", "int", description="distinct product lines bought"),
        Column("cancellation_rate", "fraction", description="cancelled orders / all orders"),
        Column("r_score", "int", required=True, description="1 (long ago) .. 5 (recent)"),
        Column("f_score", "int", required=True, description="1 (few orders) .. 5 (many)"),
        Column("m_score", "int", required=True, description="1 (low spend) .. 5 (high)"),
        Column("rfm_score", "text", required=True, length=8, description="r, f and m scores, e.g. '545'"),
        Column("segment", "text", required=True, length=32, allowed=SEGMENT_NAMES),
        Column("cluster_id", "int", description="KMeans cluster number (null when too few customers)"),
        Column("cluster_name", "text", length=64, description="cluster described in marketing words"),
        Column("value_tier", "text", length=16, allowed=("high", "medium", "low")),
        Column("risk", "text", length=16, allowed=("high", "medium", "low")),
        Column("action", "text", length=64, description="short recommended action, e.g. 'Retention call'"),
        Column("action_detail", "long_text", description="the action in a sentence, with the rep's name"),
        Column(
            "action_priority",
            "int",
            description="1 = call first (high value at high risk) .. 5 = low-cost campaign only",
        ),
    ),
    indexes=(("segment",), ("sales_rep_id",)),
)

SEGMENT_SUMMARY = Table(
    name="segment_summary",
    schema="rpt",
    description="One row per RFM segment: size, share of sales, averages and the recommended action.",
    key=("segment",),
    columns=(
        Column("segment", "text", required=True, length=32, allowed=SEGMENT_NAMES),
        Column("segment_order", "int", required=True, description="sort order, Champions first"),
        Column("description", "long_text"),
        Column("customers", "int", required=True),
        Column("customer_share", "fraction", required=True, description="share of segmented customers"),
        Column("net_sales", "money", required=True),
        Column("sales_share", "fraction", required=True, description="share of net sales"),
        Column("avg_recency_days", "float"),
        Column("avg_frequency", "float"),
        Column("avg_monetary", "money"),
        Column("recommended_action", "long_text"),
    ),
)

TABLES: tuple[Table, ...] = (CUSTOMER_SEGMENTS, SEGMENT_SUMMARY)
