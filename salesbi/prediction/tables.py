"""``rpt`` table written by :mod:`salesbi.prediction`: one row per customer."""

from __future__ import annotations

from salesbi.schema import Column, Table

PREDICTION_METHODS: tuple[str, ...] = ("lightgbm", "bgnbd", "naive_last_window", "naive_average")

CUSTOMER_PREDICTIONS = Table(
    name="customer_predictions",
    schema="rpt",
    description=(
        "One row per customer with at least one order: predicted net sales and probability of ordering "
        "in the next horizon_days after as_of_date, with an 80% interval and the top drivers."
    ),
    key=("customer_id",),
    columns=(
        Column("customer_id", "id", required=True),
        Column("customer_name", "text"),
        Column("sales_rep_id", "id"),
        Column("sales_rep_name", "text"),
        Column("as_of_date", "date", required=True, description="predictions use data before this day"),
        Column("horizon_days", "int", required=True),
        Column("window_end", "date", required=True, description="last day of the predicted window"),
        Column("predicted_sales", "money", required=True, description="expected net sales in the window"),
        Column("predicted_sales_low", "money", description="10% quantile"),
        Column("predicted_sales_high", "money", description="90% quantile"),
        Column(
            "order_probability",
            "float",
            description="P(at least one order in the window): the holdout's best-calibrated (Brier) method",
        ),
        Column(
            "churn_risk",
            "text",
            length=16,
            allowed=("high", "medium", "low"),
            description="order_probability below 0.3: high, below 0.6: medium, else low",
        ),
        Column("last_window_sales", "money", description="net sales in the horizon before as_of_date"),
        Column("avg_window_sales", "money", description="average net sales per window since first order"),
        Column("top_drivers", "text", description="top 3 features with the sign of their contribution"),
        Column(
            "method",
            "text",
            required=True,
            length=32,
            allowed=PREDICTION_METHODS,
            description="sales method: the lowest holdout RMSE (bgnbd = BG/NBD × Gamma-Gamma)",
        ),
        Column("model_version", "text", length=64),
        Column("note", "long_text", description="plain words when the data are too thin for a model"),
    ),
    indexes=(("sales_rep_id",),),
)

TABLES: tuple[Table, ...] = (CUSTOMER_PREDICTIONS,)
