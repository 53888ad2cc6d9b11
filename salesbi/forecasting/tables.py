"""``rpt`` tables written by :mod:`salesbi.forecasting`: the published forecast and its measured accuracy."""

from __future__ import annotations

from salesbi.forecasting.monthly import SALES_FORECAST_MONTHLY
from salesbi.schema import Column, Table

SERIES_LEVELS: tuple[str, ...] = ("total", "product_line", "country", "office")
FREQUENCIES: tuple[str, ...] = ("D", "W", "M")
MODEL_NAMES: tuple[str, ...] = (
    "naive",
    "window_average",
    "seasonal_naive",
    "theta",
    "ets_damped",
    "lightgbm",
)

SALES_FORECAST = Table(
    name="sales_forecast",
    schema="rpt",
    description=(
        "One row per series and period: history (actual, and the backtest forecast where one was made) "
        "and the future (forecast with 80 % and 95 % intervals, actual null), so one line chart draws "
        "actual vs forecast. Filter series_level = 'total' for company-wide figures: levels overlap."
    ),
    key=("series_id", "date"),
    columns=(
        Column("series_id", "id", required=True, length=200, description="e.g. 'total', 'country:France'"),
        Column("date", "date", required=True, description="first day of the period"),
        Column("series_level", "text", required=True, length=16, allowed=SERIES_LEVELS),
        Column("series_name", "text", required=True, description="product line, country or office name"),
        Column("frequency", "text", required=True, length=1, allowed=FREQUENCIES, description="D, W or M"),
        Column("month_start", "date", required=True, description="first day of the month holding date"),
        Column("actual", "money", description="net sales of the period; null in the future"),
        Column(
            "forecast",
            "money",
            description="champion's forecast: future periods, and backtest periods of the history",
        ),
        Column("lower_80", "money", description="lower bound of the 80 % prediction interval"),
        Column("upper_80", "money", description="upper bound of the 80 % prediction interval"),
        Column("lower_95", "money", description="lower bound of the 95 % prediction interval"),
        Column("upper_95", "money", description="upper bound of the 95 % prediction interval"),
        Column("horizon_step", "int", description="periods ahead of the forecast origin (1 = next)"),
        Column("model", "text", length=32, description="model that made the forecast (the champion)"),
        Column(
            "model_note",
            "text",
            description="why this model: e.g. 'lowest backtest WAPE (theta 0.12 vs lightgbm 0.15)'",
        ),
        Column("is_future", "bool", required=True, description="true after the last observed period"),
        Column(
            "is_backtest",
            "bool",
            required=True,
            description="true for a history period forecast out of sample",
        ),
        Column("run_id", "id", required=True),
    ),
    indexes=(("date",), ("series_level",)),
)

FORECAST_ACCURACY = Table(
    name="forecast_accuracy",
    schema="rpt",
    description=(
        "Rolling-origin backtest per series and model: WAPE, MASE, bias and interval coverage; "
        "is_champion marks the model whose forecast is published for the series; every model has a row."
    ),
    key=("series_id", "model"),
    columns=(
        Column("series_id", "id", required=True, length=200),
        Column("model", "text", required=True, length=32),
        Column("series_level", "text", required=True, length=16, allowed=SERIES_LEVELS),
        Column("series_name", "text", required=True),
        Column("frequency", "text", required=True, length=1, allowed=FREQUENCIES),
        Column("horizon", "int", required=True, description="periods forecast from each origin"),
        Column(
            "wape",
            "float",
            description="mean over backtest origins of sum |actual - forecast| / sum |actual|",
        ),
        Column(
            "mase",
            "float",
            description="mean over origins of MAE / in-sample (seasonal) naive MAE at the first origin",
        ),
        Column("bias", "float", description="sum (forecast - actual) / sum |actual|; > 0 over-forecasts"),
        Column("coverage_80", "fraction", description="share of backtest actuals inside the 80 % interval"),
        Column("coverage_95", "fraction", description="share of backtest actuals inside the 95 % interval"),
        Column("n_origins", "int", description="backtest origins evaluated"),
        Column("n_points", "int", description="backtest (origin, step) points evaluated"),
        Column(
            "is_champion",
            "bool",
            required=True,
            description="lowest mean WAPE of the candidates (simplest on a tie): the published forecast",
        ),
        Column(
            "status",
            "text",
            required=True,
            length=16,
            allowed=("ok", "not_candidate"),
            description="not_candidate: the model could not be fitted at every origin (no scores)",
        ),
        Column("note", "long_text", description="why this model won or lost, or why it fell back"),
        Column("run_id", "id", required=True),
    ),
)

TABLES: tuple[Table, ...] = (SALES_FORECAST, FORECAST_ACCURACY, SALES_FORECAST_MONTHLY)
