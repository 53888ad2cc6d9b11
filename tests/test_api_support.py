"""Shared test world for the API tests: trained models in a model store, rpt tables in an SQLite warehouse.

Built once per test session (both ``tests/test_api.py`` and ``tests/test_api_fuzz.py`` use it):
400 synthetic customers, the batch segmentation and prediction, their models saved with
``save_all``, and ``rpt.customer_summary`` / ``customer_segments`` / ``customer_predictions`` /
``sales_forecast`` written with ``replace_tables``. No tests live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from salesbi.modelstore import save_all
from salesbi.prediction import PredictionResult, predict_customer_sales
from salesbi.prediction.synthetic import synthetic_fact
from salesbi.publish import replace_tables
from salesbi.rpt import rpt_table
from salesbi.schema import Column, Table
from salesbi.segmentation import SegmentationResult, segment_customers
from salesbi.warehouse.ddl import warehouse_metadata
from salesbi.warehouse.engine import create_engine

KEY = "test-key-0123456789abcdef"
CREATED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
#: boosting rounds of the world's predictions: 20 at learning rate 0.1 is the 40 × 0.05 this world was
#: built with (LightGBM the champion, so the API's booster path is what the tests compare)
ROUNDS = 20

# what the forecasting package is planned to publish; used only while its definition is not there yet
PLANNED_FORECAST = Table(
    name="sales_forecast",
    schema="rpt",
    description="test stand-in",
    key=("series_id", "date"),
    columns=(
        Column("date", "date", required=True),
        Column("series_id", "id", required=True),
        Column("series_level", "text"),
        Column("series_name", "text"),
        Column("frequency", "text"),
        Column("actual", "money"),
        Column("forecast", "money"),
        Column("lower_80", "money"),
        Column("upper_80", "money"),
        Column("lower_95", "money"),
        Column("upper_95", "money"),
        Column("model", "text"),
        Column("is_future", "bool"),
    ),
)


@dataclass
class World:
    """Everything the API tests read: inputs, batch results, and where models and warehouse are."""

    fact: pd.DataFrame
    customers: pd.DataFrame
    employees: pd.DataFrame
    segments: SegmentationResult
    predictions: PredictionResult
    summary: pd.DataFrame
    forecast: pd.DataFrame
    models_dir: Path
    warehouse_url: str


_worlds: dict[Path, World] = {}


def forecast_table() -> Table:
    """Return the published definition of rpt.sales_forecast, or the planned stand-in."""
    try:
        return rpt_table("sales_forecast")
    except KeyError:
        return PLANNED_FORECAST


def customer_summary(fact: pd.DataFrame, customers: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Return a small but valid rpt.customer_summary frame computed with plain pandas."""
    placed = fact[~fact["is_cancelled"]]
    orders = placed.groupby("customer_id")["order_id"].nunique()
    cancelled = fact[fact["is_cancelled"]].groupby("customer_id")["order_id"].nunique()
    sales = placed.groupby("customer_id")["net_sales"].sum().round(2)
    frame = pd.DataFrame({"orders": orders, "net_sales": sales}).fillna(0)
    frame["cancelled_orders"] = cancelled.reindex(frame.index).fillna(0).astype(int)
    frame["units"] = placed.groupby("customer_id")["quantity"].sum().reindex(frame.index).fillna(0)
    frame["sales_rank"] = frame["net_sales"].rank(method="first", ascending=False).astype(int)
    frame["loyalty_tier"] = np.where(frame["sales_rank"] <= 20, "Platinum", "Bronze")
    frame["is_top_n"] = frame["sales_rank"] <= 10
    frame["is_lapsed"] = False
    frame["as_of_date"] = as_of
    frame.index.name = "customer_id"
    frame = frame.reset_index()
    names = customers.set_index("customer_id")["customer_name"]
    frame["customer_name"] = frame["customer_id"].map(names)
    return frame


def forecast_frame() -> pd.DataFrame:
    """Return 12 months of actuals and 3 of forecast for 'total', and 6 actual months for 'country:Norway'."""
    months = pd.date_range("2024-01-01", periods=15, freq="MS")
    total = pd.DataFrame(
        {
            "date": months,
            "series_id": "total",
            "series_level": "total",
            "series_name": "All sales",
            "frequency": "M",
            "actual": [100_000.0 + 1000 * i if i < 12 else None for i in range(15)],
            "forecast": [None] * 12 + [112_000.0, 113_000.0, 114_000.0],
            "lower_80": [None] * 12 + [100_000.0, 99_000.0, 98_000.0],
            "upper_80": [None] * 12 + [124_000.0, 127_000.0, 130_000.0],
            "model": [None] * 12 + ["lightgbm"] * 3,
            "is_future": [False] * 12 + [True] * 3,
            "is_backtest": False,
        }
    )
    norway = pd.DataFrame(
        {
            "date": months[:6],
            "series_id": "country:Norway",
            "series_level": "country",
            "series_name": "Norway",
            "frequency": "M",
            "actual": [5000.0] * 6,
            "is_future": False,
            "is_backtest": False,
        }
    )
    frame = pd.concat([total, norway], ignore_index=True)
    frame["month_start"] = frame["date"]
    frame["run_id"] = "test-run"
    return frame


def complete(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """Return ``frame`` with the table's missing columns added as typed nulls (NaN for numbers)."""
    out = frame.copy()
    for c in table.columns:
        if c.name not in out.columns:
            out[c.name] = np.nan if c.spec.pandas_dtype == "float64" else None
    return out


def build_world(base: Path) -> World:
    """Return the session's World under ``base``, building it the first time."""
    if base in _worlds:
        return _worlds[base]
    fact, customers, employees, _ = synthetic_fact(400, seed=7)
    segments = segment_customers(fact, customers, employees, random_state=0, created_at=CREATED)
    predictions = predict_customer_sales(
        fact, customers, employees=employees, boost_rounds=ROUNDS, created_at=CREATED
    )
    models_dir = base / "models"
    save_all(segments.models, models_dir)
    save_all(predictions.models, models_dir)
    summary = customer_summary(fact, customers, pd.Timestamp(segments.model.as_of))
    forecast = forecast_frame()
    (base / "wh").mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{base / 'wh' / 'warehouse.db'}"
    engine = create_engine(url)
    definitions = [
        rpt_table("customer_summary"),
        rpt_table("customer_segments"),
        rpt_table("customer_predictions"),
        forecast_table(),
    ]
    extra = [] if forecast_table() is not PLANNED_FORECAST else [PLANNED_FORECAST]
    metadata = warehouse_metadata(extra=extra)
    replace_tables(
        engine,
        metadata,
        {
            "customer_summary": complete(summary, rpt_table("customer_summary")),
            "customer_segments": segments.customer_segments,
            "customer_predictions": predictions.customer_predictions,
            "sales_forecast": complete(forecast, forecast_table()),
        },
        definitions,
    )
    engine.dispose()
    world = World(fact, customers, employees, segments, predictions, summary, forecast, models_dir, url)
    _worlds[base] = world
    return world


def history_of(fact: pd.DataFrame, customer_id: str) -> list[dict[str, object]]:
    """Return one customer's order lines as the JSON the API takes."""
    rows = fact[fact["customer_id"] == customer_id]
    return [
        {
            "order_id": str(r.order_id),
            "order_date": pd.Timestamp(r.order_date).date().isoformat(),
            "net_sales": float(r.net_sales),
            "is_cancelled": bool(r.is_cancelled),
            "product_line_id": str(r.product_line_id),
        }
        for r in rows.itertuples()
    ]
