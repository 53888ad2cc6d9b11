"""Per-series baselines: naive, window average, seasonal naive, and (statsmodels) Theta and damped ETS.

A baseline is one model at every origin: its specification (seasonal or not) is fixed from the
history known at the first origin, so the model scored in the backtest is the model published.
A baseline that cannot be fitted at an origin (seasonal naive without a full season, ETS or
Theta on fewer than ``MIN_FIT`` periods, a failed optimisation) forecasts NaN there and says
why: it is then not a candidate for the series (nothing else is substituted under its name).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.forecasting.theta import ThetaModel
from statsmodels.tsa.holtwinters import ExponentialSmoothing

#: simplest first: the champion tie rule prefers the earlier model
BASELINES: tuple[str, ...] = ("naive", "window_average", "seasonal_naive", "theta", "ets_damped")
#: periods averaged by the window-average baseline: one week of days (the shortest window that
#: averages out the weekday pattern, as statsforecast's WindowAverage over one season; 28 days
#: lagged a level shift by weeks: CDNOW champion WAPE 0.315 with 28, 0.254 with 7), 8 weeks,
#: a year of months
AVERAGE_WINDOW = {"D": 7, "W": 8, "M": 12}
#: fewest periods ETS and Theta are fitted on
MIN_FIT = 10
#: most recent periods a per-series model is fitted on
#: (a cost bound: a year of days is plenty for a weekly season)
FIT_WINDOW = {"D": 364, "W": 3 * 52, "M": 10 * 12}
FIT_ERRORS = (ValueError, np.linalg.LinAlgError, IndexError, ZeroDivisionError, OverflowError)


@dataclass
class SeriesBaselines:
    """Baseline forecasts of one series at every origin: ``forecasts[model][k]`` has ``horizon`` values."""

    forecasts: dict[str, np.ndarray]
    status: dict[str, str] = field(default_factory=dict)  # ok | not_candidate
    notes: dict[str, str] = field(default_factory=dict)


def seasonal_naive(y: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Return the value of the same phase in the last full season (NaN without a full season)."""
    if len(y) < season:
        return np.full(horizon, np.nan)
    steps = np.arange(1, horizon + 1)
    back = season * np.ceil(steps / season).astype(int)
    return np.asarray(y[len(y) - 1 + steps - back], dtype="float64")


def window_average(y: np.ndarray, horizon: int, window: int) -> np.ndarray:
    """Return the mean of the last ``window`` periods repeated (NaN with fewer periods)."""
    if len(y) < window:
        return np.full(horizon, np.nan)
    return np.full(horizon, float(np.mean(y[-window:])))


def naive(y: np.ndarray, horizon: int) -> np.ndarray:
    """Return the last value repeated (NaN for an empty history)."""
    return np.full(horizon, float(y[-1]) if len(y) else np.nan)


def ets_is_seasonal(n_periods: int, season: int) -> bool:
    """Return whether ETS of ``n_periods`` periods gets an additive seasonal component."""
    return n_periods >= 2 * season + 2


def theta_is_seasonal(n_periods: int, season: int) -> bool:
    """Return whether Theta of ``n_periods`` periods is deseasonalised first."""
    return n_periods >= 2 * season


def _ets_model(y: np.ndarray, season: int, seasonal_on: bool) -> ExponentialSmoothing:
    seasonal = "add" if seasonal_on else None
    init = "heuristic" if len(y) >= 4 * season + 10 and len(y) >= 20 else "estimated"
    return ExponentialSmoothing(
        y,
        trend="add",
        damped_trend=True,
        seasonal=seasonal,
        seasonal_periods=season if seasonal else None,
        initialization_method=init,
    )


def ets_damped(
    y: np.ndarray,
    horizon: int,
    season: int,
    smoothing: dict[str, float] | None = None,
    seasonal: bool | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """Return (forecast, smoothing parameters) of additive Holt-Winters with a damped trend.

    With ``smoothing`` given, the parameters are reused and only the states are updated
    (no optimisation): the backtest estimates them once at the first origin.  ``seasonal``
    fixes the specification (default: :func:`ets_is_seasonal` of ``y``).
    """
    on = ets_is_seasonal(len(y), season) if seasonal is None else seasonal
    model = _ets_model(y, season, on)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        if smoothing is not None and (model.seasonal is not None) == ("smoothing_seasonal" in smoothing):
            fit = model.fit(optimized=False, **smoothing)
        else:
            fit = model.fit(use_brute=False)
    keys = ("smoothing_level", "smoothing_trend", "damping_trend", "smoothing_seasonal")
    params = {k: float(fit.params[k]) for k in keys if k in fit.params and fit.params[k] is not None}
    if model.seasonal is None:
        params.pop("smoothing_seasonal", None)
    fc = np.asarray(fit.forecast(horizon), dtype="float64")
    if not np.all(np.isfinite(fc)):
        raise ValueError("non-finite ETS forecast")
    return fc, params


def theta(y: np.ndarray, horizon: int, season: int, seasonal: bool | None = None) -> np.ndarray:
    """Return the Theta method's forecast (additive deseasonalisation when ``seasonal``).

    ``seasonal`` defaults to :func:`theta_is_seasonal` of ``y`` (two seasons known).
    """
    deseasonalize = theta_is_seasonal(len(y), season) if seasonal is None else seasonal
    model = ThetaModel(
        np.asarray(y, dtype="float64"), period=season, deseasonalize=deseasonalize, method="additive"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fc = np.asarray(model.fit().forecast(horizon), dtype="float64")
    if not np.all(np.isfinite(fc)):
        raise ValueError("non-finite Theta forecast")
    return fc


def fit_baselines(
    y: np.ndarray, origins: list[int], horizon: int, season: int, frequency: str
) -> SeriesBaselines:
    """Return every baseline's forecasts of series ``y`` made at each origin (last known period index).

    Each model's specification is fixed by the history at ``origins[0]``; an origin where a
    model cannot be fitted gets NaN forecasts and a note (status ``not_candidate``).
    """
    window = FIT_WINDOW[frequency]
    out: dict[str, list[np.ndarray]] = {m: [] for m in BASELINES}
    notes: dict[str, list[str]] = {m: [] for m in BASELINES}
    first_len = min(window, origins[0] + 1) if origins else 0
    ets_seasonal = ets_is_seasonal(first_len, season)
    theta_seasonal = theta_is_seasonal(first_len, season)
    smoothing: dict[str, float] | None = None
    nan = np.full(horizon, np.nan)
    for origin in origins:
        hist = np.asarray(y[max(0, origin + 1 - window) : origin + 1], dtype="float64")
        out["naive"].append(naive(hist, horizon))
        w = AVERAGE_WINDOW[frequency]
        out["window_average"].append(window_average(hist, horizon, w))
        if len(hist) < w:
            notes["window_average"].append(f"origin {origin}: shorter than its window ({w} periods)")
        out["seasonal_naive"].append(seasonal_naive(hist, horizon, season))
        if len(hist) < season:
            notes["seasonal_naive"].append(f"origin {origin}: shorter than one season ({season} periods)")
        if len(hist) < MIN_FIT:
            for m in ("ets_damped", "theta"):
                out[m].append(nan)
                notes[m].append(f"origin {origin}: {len(hist)} periods are too few to fit (need {MIN_FIT})")
            continue
        if not np.any(hist != 0):
            for m in ("ets_damped", "theta"):
                out[m].append(np.zeros(horizon))  # what either model forecasts for a constant 0
            continue
        try:
            fc, smoothing = ets_damped(hist, horizon, season, smoothing, seasonal=ets_seasonal)
            out["ets_damped"].append(fc)
        except FIT_ERRORS as exc:
            out["ets_damped"].append(nan)
            notes["ets_damped"].append(f"origin {origin}: ETS fit failed ({exc})")
        try:
            out["theta"].append(theta(hist, horizon, season, seasonal=theta_seasonal))
        except FIT_ERRORS as exc:
            out["theta"].append(nan)
            notes["theta"].append(f"origin {origin}: Theta fit failed ({exc})")
    forecasts = {m: np.clip(np.stack(v), 0.0, None) if v else np.empty((0, horizon)) for m, v in out.items()}
    return SeriesBaselines(
        forecasts=forecasts,
        status={m: ("not_candidate" if notes[m] else "ok") for m in BASELINES},
        notes={m: "; ".join(notes[m]) for m in BASELINES},
    )


def fit_baselines_many(
    values: np.ndarray, origins: list[int], horizon: int, season: int, frequency: str, n_jobs: int = 1
) -> list[SeriesBaselines]:
    """Return :func:`fit_baselines` for every row of ``values`` (joblib processes when ``n_jobs > 1``)."""
    if n_jobs <= 1 or values.shape[0] < 50:
        return [fit_baselines(values[i], origins, horizon, season, frequency) for i in range(values.shape[0])]
    from joblib import Parallel, delayed

    chunks = np.array_split(np.arange(values.shape[0]), n_jobs * 4)
    parts: list[Any] = Parallel(n_jobs=n_jobs)(
        delayed(_chunk)(values[idx], origins, horizon, season, frequency) for idx in chunks if len(idx)
    )
    return [b for part in parts for b in part]


def _chunk(
    values: np.ndarray, origins: list[int], horizon: int, season: int, frequency: str
) -> list[SeriesBaselines]:
    return [fit_baselines(values[i], origins, horizon, season, frequency) for i in range(values.shape[0])]
