"""The forecast at month grain (``rpt.sales_forecast_monthly``), with intervals made for the month.

Summing daily 80 % bounds does not give an 80 % interval of the month (the errors of the
days partly cancel), so the month's interval is computed for the month total:

1. Each period's spread is read off its own 80 % interval, ``s = (upper_80 - lower_80) / 2.563``
   (the width of a normal 80 % interval in standard deviations), and the month's scale is
   ``S = sqrt(sum s²)`` over the periods it sums (independent errors).
2. That scale is then *calibrated on the backtest*: for every history month fully covered by
   out-of-sample backtest forecasts, the month error ``(actual - forecast) / S`` is one
   calibration score; the 80 % / 95 % bounds use the split-conformal quantile of the pooled
   absolute scores (``ceil((n + 1) q) / n``), so correlated daily errors widen the band.
3. With too few backtest months for a quantile (fewer than ``1 / (1 - q) - 1``), the normal
   quantile of step 1 is used and ``interval_method`` says so.

Bounds are clipped at zero (sales are not negative). A month is ``is_complete`` when the
forecast covers all of its days; the first or last month of the horizon may be partial.
Only a few columns of ``rpt.sales_forecast`` are read (see :data:`INPUT_COLUMNS`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from salesbi.schema import Column, Table
from salesbi.types import conform

INPUT_COLUMNS: tuple[str, ...] = (
    "series_id",
    "series_level",
    "series_name",
    "date",
    "frequency",
    "actual",
    "forecast",
    "lower_80",
    "upper_80",
    "is_future",
    "is_backtest",
    "model",
    "run_id",
)
LEVELS: tuple[float, ...] = (0.80, 0.95)
NORMAL_Z: dict[float, float] = {0.80: 1.2815515655446004, 0.95: 1.959963984540054}

SALES_FORECAST_MONTHLY = Table(
    name="sales_forecast_monthly",
    schema="rpt",
    description=(
        "One row per series and month of the forecast horizon (is_future) and of the backtest "
        "(actual known): the month's forecast is the sum of its periods' forecasts; its 80 % / 95 % "
        "intervals are computed for the month total (see interval_method), never summed from days."
    ),
    key=("series_id", "month_start"),
    columns=(
        Column("series_id", "id", required=True, length=200, description="e.g. 'total', 'country:France'"),
        Column("month_start", "date", required=True, description="first day of the month"),
        Column(
            "year_month", "text", required=True, length=7, description="the month as 'YYYY-MM' (for tables)"
        ),
        Column("series_level", "text", required=True, length=16),
        Column("series_name", "text", required=True, description="product line, country or office name"),
        Column("actual", "money", description="net sales of the month (backtest months); null in the future"),
        Column("forecast", "money", description="sum of the month's period forecasts"),
        Column("lower_80", "money", description="lower bound of the 80 % interval of the month total"),
        Column("upper_80", "money", description="upper bound of the 80 % interval of the month total"),
        Column("lower_95", "money", description="lower bound of the 95 % interval of the month total"),
        Column("upper_95", "money", description="upper bound of the 95 % interval of the month total"),
        Column(
            "periods",
            "int",
            required=True,
            description="forecast periods (whole or split) summed into the month",
        ),
        Column(
            "is_complete",
            "bool",
            required=True,
            description="true when the forecast covers every day of the month; false for a partial month",
        ),
        Column(
            "coverage_note", "text", description="e.g. 'partial: forecast covers 2026-01-16 to 2026-01-31'"
        ),
        Column("is_future", "bool", required=True, description="true for the forecast horizon"),
        Column("interval_method", "text", length=32, description="conformal_month or normal_sum"),
        Column("calibration_months", "int", description="backtest months the intervals were calibrated on"),
        Column("model", "text", length=32, description="model that made the forecast (the champion)"),
        Column("run_id", "id", required=True),
    ),
    indexes=(("month_start",),),
)


def _period_last_day(start: pd.Series, frequency: pd.Series) -> pd.Series:
    end = start.copy()
    weekly = frequency == "W"
    monthly = frequency == "M"
    end[weekly] = start[weekly] + pd.Timedelta(days=6)
    end[monthly] = start[monthly] + pd.offsets.MonthEnd(0)
    return end


def _month_parts(frame: pd.DataFrame) -> pd.DataFrame:
    """Return one row per period and calendar month it touches, with the share of its days there.

    A week that straddles two months is split pro rata by days: its point forecast and actual
    by the share, its standard deviation by the share too (one error, split).
    """
    f = frame.reset_index(drop=True)
    start = pd.to_datetime(f["date"])
    last = _period_last_day(start, f["frequency"])
    n_days = (last - start).dt.days.to_numpy() + 1
    days = f.index.repeat(n_days)
    offset = pd.Series(np.arange(len(days)), index=days) - np.repeat(np.cumsum(n_days) - n_days, n_days)
    day = start.to_numpy().repeat(n_days) + pd.to_timedelta(offset.to_numpy(), unit="D")
    parts = pd.DataFrame({"row": days, "day": day})
    parts["month_start"] = parts["day"].dt.to_period("M").dt.to_timestamp()
    g = parts.groupby(["row", "month_start"], sort=False)["day"]
    out = g.agg(first_day="min", last_day="max", days="size").reset_index()
    out["share"] = out["days"] / n_days[out["row"].to_numpy()]
    return out


def _months(frame: pd.DataFrame) -> pd.DataFrame:
    """Return one row per series and month of ``frame``'s periods: sums, spread and coverage."""
    f = frame.reset_index(drop=True)
    sigma = (f["upper_80"].astype("float64") - f["lower_80"].astype("float64")) / (2 * NORMAL_Z[0.80])
    parts = _month_parts(f)
    rows = f.loc[parts["row"].to_numpy()].reset_index(drop=True)
    share = parts["share"].to_numpy()
    p = pd.DataFrame(
        {
            "series_id": rows["series_id"],
            "month_start": parts["month_start"],
            "series_level": rows["series_level"],
            "series_name": rows["series_name"],
            "actual": rows["actual"].astype("float64") * share,
            "forecast": rows["forecast"].astype("float64") * share,
            "variance": (sigma.clip(lower=0).to_numpy()[parts["row"].to_numpy()] * share) ** 2,
            "first_day": parts["first_day"],
            "last_day": parts["last_day"],
            "model": rows["model"],
            "run_id": rows["run_id"],
        }
    )
    g = p.groupby(["series_id", "month_start"], sort=True)
    out = g.agg(
        series_level=("series_level", "first"),
        series_name=("series_name", "first"),
        actual=("actual", lambda s: s.sum(min_count=len(s))),
        forecast=("forecast", "sum"),
        variance=("variance", "sum"),
        periods=("forecast", "size"),
        first_day=("first_day", "min"),
        last_day=("last_day", "max"),
        model=("model", "last"),
        run_id=("run_id", "first"),
    ).reset_index()
    month_end = out["month_start"] + pd.offsets.MonthEnd(0)
    out["is_complete"] = (out["first_day"] <= out["month_start"]) & (out["last_day"] >= month_end)
    out["scale"] = np.sqrt(out["variance"])
    return out


def calibration_scores(sales_forecast: pd.DataFrame) -> np.ndarray:
    """Return ``|actual - forecast| / scale`` of every complete backtest month (the conformal scores)."""
    bt = sales_forecast[sales_forecast["is_backtest"].astype(bool)]
    bt = bt[bt["actual"].notna() & bt["forecast"].notna()]
    if bt.empty:
        return np.empty(0)
    months = _months(bt)
    months = months[months["is_complete"] & (months["scale"] > 0)]
    return np.abs(months["actual"] - months["forecast"]).to_numpy() / months["scale"].to_numpy()


def conformal_multiplier(scores: np.ndarray, level: float) -> float | None:
    """Return the split-conformal quantile of ``scores`` at ``level``; None when there are too few."""
    n = len(scores)
    rank = math.ceil((n + 1) * level)
    if n == 0 or rank > n:
        return None
    return float(np.sort(scores)[rank - 1])


def build_monthly_forecast(sales_forecast: pd.DataFrame) -> pd.DataFrame:
    """Return ``rpt.sales_forecast_monthly`` from a run's ``rpt.sales_forecast`` frame.

    Future months (``is_future``) and complete backtest months (with their actual), per series.
    """
    if sales_forecast.empty:
        return conform(pd.DataFrame(columns=SALES_FORECAST_MONTHLY.column_names), SALES_FORECAST_MONTHLY)
    frame = sales_forecast.loc[:, list(INPUT_COLUMNS)]
    scores = calibration_scores(frame)
    multipliers = {level: conformal_multiplier(scores, level) for level in LEVELS}
    conformal = all(m is not None for m in multipliers.values())
    future = _months(frame[frame["is_future"].astype(bool)])
    future["actual"] = np.nan
    future["is_future"] = True
    backtest = frame[frame["is_backtest"].astype(bool) & frame["forecast"].notna()]
    past = _months(backtest)
    past = past[past["is_complete"]]
    past["is_future"] = False
    months = pd.concat([past, future], ignore_index=True)
    for level in LEVELS:
        mult = multipliers[level] if conformal else NORMAL_Z[level]
        assert mult is not None
        tag = round(level * 100)
        half = mult * months["scale"]
        months[f"lower_{tag}"] = (months["forecast"] - half).clip(lower=0)
        months[f"upper_{tag}"] = months["forecast"] + half
    months["year_month"] = months["month_start"].dt.strftime("%Y-%m")
    months["interval_method"] = "conformal_month" if conformal else "normal_sum"
    months["calibration_months"] = len(scores)
    months["coverage_note"] = np.where(
        months["is_complete"],
        None,
        "partial: forecast covers "
        + months["first_day"].dt.strftime("%Y-%m-%d")
        + " to "
        + months["last_day"].dt.strftime("%Y-%m-%d"),
    )
    for col in ("actual", "forecast", "lower_80", "upper_80", "lower_95", "upper_95"):
        months[col] = months[col].astype("float64").round(2)
    months = months.sort_values(["series_id", "month_start"], kind="stable").reset_index(drop=True)
    return conform(months[list(SALES_FORECAST_MONTHLY.column_names)], SALES_FORECAST_MONTHLY)
