"""Sales forecasting with LightGBM against statistical baselines.

``forecast_sales`` builds the series (total, product lines, top countries, offices), backtests a
global LightGBM model and per-series baselines over rolling origins, publishes each series'
champion with conformal intervals, and returns ``rpt.sales_forecast`` and ``rpt.forecast_accuracy``.
"""

from salesbi.forecasting.forecast import ForecastResult, forecast_sales, forecast_series

__all__ = ["ForecastResult", "forecast_sales", "forecast_series"]
