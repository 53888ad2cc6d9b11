"""Synthetic sales with known trend, weekly and yearly seasonality: for tests and the benchmark."""

from __future__ import annotations

import numpy as np
import pandas as pd

from salesbi.forecasting.series import SeriesPanel


def daily_sales(
    n_series: int, n_days: int, seed: int = 0, start: str = "2022-01-03", noise: float = 0.15
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Return (days, sales array (n_series, n_days)) with per-series level, trend and seasonality.

    sales = level · (1 + trend·t/365) · weekly[dow] · (1 + a·sin(2π·doy/365.25 + φ)) · noise,
    with multiplicative gamma noise of coefficient of variation ``noise``.
    """
    rng = np.random.default_rng(seed)
    days = pd.date_range(start, periods=n_days, freq="D")
    t = np.arange(n_days)
    level = rng.lognormal(mean=7.0, sigma=1.0, size=(n_series, 1))
    trend = rng.uniform(-0.1, 0.4, size=(n_series, 1))
    weekly_shape = np.array([1.0, 1.05, 1.1, 1.15, 1.3, 0.8, 0.45])
    weekly = weekly_shape[None, :] * rng.uniform(0.85, 1.15, size=(n_series, 7))
    amp = rng.uniform(0.1, 0.4, size=(n_series, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n_series, 1))
    yearly = 1 + amp * np.sin(2 * np.pi * days.day_of_year.to_numpy()[None, :] / 365.25 + phase)
    mean = level * (1 + trend * t[None, :] / 365.0) * weekly[:, days.day_of_week.to_numpy()] * yearly
    shape = 1.0 / noise**2
    values = rng.gamma(shape, mean / shape)
    return days, np.round(values, 2)


def daily_panel(n_series: int, n_days: int, seed: int = 0, noise: float = 0.15) -> SeriesPanel:
    """Return a daily :class:`SeriesPanel` of :func:`daily_sales` (levels product_line, no country)."""
    days, values = daily_sales(n_series, n_days, seed, noise=noise)
    meta = pd.DataFrame(
        {
            "series_id": [f"product_line:S{i:04d}" for i in range(n_series)],
            "series_level": "product_line",
            "series_name": [f"S{i:04d}" for i in range(n_series)],
            "country_code": [None] * n_series,
        }
    )
    return SeriesPanel(frequency="D", dates=days, values=values, meta=meta)


def orders_fact(
    n_days: int, orders_per_day: float, seed: int = 0, start: str = "2022-01-03", countries: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return (fact, customers, product_lines, offices) with ~``orders_per_day`` orders a day.

    Order counts follow the weekly/yearly pattern of :func:`daily_sales`; each order has one
    line.  Enough columns of ``rpt.fact_order_lines`` for the forecast step.
    """
    rng = np.random.default_rng(seed)
    days = pd.date_range(start, periods=n_days, freq="D")
    t = np.arange(n_days)
    weekly = np.array([1.0, 1.05, 1.1, 1.15, 1.3, 0.8, 0.45])[days.day_of_week.to_numpy()]
    yearly = 1 + 0.25 * np.sin(2 * np.pi * days.day_of_year.to_numpy() / 365.25)
    lam = orders_per_day * weekly * yearly * (1 + 0.2 * t / 365.0) / 1.0
    counts = rng.poisson(lam)
    order_days = np.repeat(days.to_numpy(), counts)
    n = len(order_days)
    names = ["France", "USA", "Germany", "Spain", "Japan", "Italy"][:countries]
    customers = pd.DataFrame(
        {
            "customer_id": pd.array([f"C{i}" for i in range(30)], dtype="string"),
            "country": pd.array([names[i % len(names)] for i in range(30)], dtype="string"),
        }
    )
    product_lines = pd.DataFrame(
        {
            "product_line_id": pd.array(["PL1", "PL2"], dtype="string"),
            "name": pd.array(["Cars", "Bikes"], dtype="string"),
        }
    )
    offices = pd.DataFrame(
        {
            "office_id": pd.array(["1", "2"], dtype="string"),
            "city": pd.array(["Paris", "Boston"], dtype="string"),
            "country": pd.array(["France", "USA"], dtype="string"),
        }
    )
    fact = pd.DataFrame(
        {
            "order_id": pd.array([f"O{i}" for i in range(n)], dtype="string"),
            "line_number": pd.array(np.ones(n, dtype=int), dtype="Int64"),
            "customer_id": customers["customer_id"].to_numpy()[rng.integers(0, 30, n)],
            "product_line_id": product_lines["product_line_id"].to_numpy()[rng.integers(0, 2, n)],
            "office_id": offices["office_id"].to_numpy()[rng.integers(0, 2, n)],
            "order_date": pd.to_datetime(order_days).astype("datetime64[s]"),
            "is_cancelled": pd.array(np.zeros(n, dtype=bool), dtype="boolean"),
            "net_sales": np.round(rng.gamma(4.0, 50.0, n), 2),
        }
    )
    for col in ("customer_id", "product_line_id", "office_id"):
        fact[col] = fact[col].astype("string")
    return fact, customers, product_lines, offices
