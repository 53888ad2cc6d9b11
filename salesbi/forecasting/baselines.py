"""Statistical baselines fitted per series with statsmodels: seasonal naive, damped ETS, Theta.

Each baseline is guarded: a series that cannot be fitted (too short, no sales, a failed
optimisation) falls back to a simpler forecast and says so in its note, so one odd series
never stops the run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.forecasting.theta import ThetaModel
from statsmodels.tsa.holtwinters import ExponentialSmoothing

BASELINES: tuple[str, ...] = ("seasonal_naive", "ets_damped", "theta")
#: most recent periods a per-series model is fitted on
#: (a cost bound: a year of days is plenty for a weekly season)
FIT_WINDOW = {"D": 364, "W": 3 * 52, "M": 10 * 12}
FIT_ERRORS = (ValueError, np.linalg.LinAlgError, IndexError, ZeroDivisionError, OverflowError)


@dataclass
class SeriesBaselines:
    """Baseline forecasts of one series at every origin: ``forecasts[model][k]`` has ``horizon`` values."""

    forecasts: dict[str, np.ndarray]
    status: dict[str, str] = field(default_factory=dict)  # ok | fallback
    notes: dict[str, str] = field(default_factory=dict)


def seasonal_naive(y: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Return the value of the same phase in the last full season (the last value if shorter)."""
    if len(y) == 0:
        return np.zeros(horizon)
    if len(y) < season:
        return np.full(horizon, float(y[-1]))
    steps = np.arange(1, horizon + 1)
    back = season * np.ceil(steps / season).astype(int)
    return np.asarray(y[len(y) - 1 + steps - back], dtype="float64")


def _ets_model(y: np.ndarray, season: int) -> ExponentialSmoothing:
    seasonal = "add" if len(y) >= 2 * season + 2 else None
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
    y: np.ndarray, horizon: int, season: int, smoothing: dict[str, float] | None = None
) -> tuple[np.ndarray, dict[str, float]]:
    """Return (forecast, smoothing parameters) of additive Holt-Winters with a damped trend.

    With ``smoothing`` given, the parameters are reused and only the states are updated
    (no optimisation): the backtest estimates them once at the first origin.
    """
    model = _ets_model(y, season)
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


def theta(y: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Return the Theta method's forecast (additive deseasonalisation when two seasons are known)."""
    deseasonalize = len(y) >= 2 * season
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
    """Return every baseline's forecasts of series ``y`` made at each origin (last known period index)."""
    window = FIT_WINDOW[frequency]
    out: dict[str, list[np.ndarray]] = {m: [] for m in BASELINES}
    notes: dict[str, list[str]] = {m: [] for m in BASELINES}
    smoothing: dict[str, float] | None = None
    for origin in origins:
        hist = np.asarray(y[max(0, origin + 1 - window) : origin + 1], dtype="float64")
        naive = seasonal_naive(hist, horizon, season)
        out["seasonal_naive"].append(naive)
        if len(hist) < season:
            notes["seasonal_naive"].append(f"origin {origin}: shorter than one season, last value repeated")
        if not np.any(hist != 0):
            for m in ("ets_damped", "theta"):
                out[m].append(np.zeros(horizon))
                notes[m].append(f"origin {origin}: no sales in the fit window, forecast 0")
            continue
        if len(hist) < 10:
            for m in ("ets_damped", "theta"):
                out[m].append(naive)
                notes[m].append(
                    f"origin {origin}: {len(hist)} periods are too few to fit, seasonal naive used"
                )
            continue
        try:
            fc, smoothing = ets_damped(hist, horizon, season, smoothing)
            out["ets_damped"].append(fc)
        except FIT_ERRORS as exc:
            out["ets_damped"].append(naive)
            notes["ets_damped"].append(f"origin {origin}: ETS fit failed ({exc}), seasonal naive used")
        try:
            out["theta"].append(theta(hist, horizon, season))
        except FIT_ERRORS as exc:
            out["theta"].append(naive)
            notes["theta"].append(f"origin {origin}: Theta fit failed ({exc}), seasonal naive used")
    return SeriesBaselines(
        forecasts={m: np.clip(np.stack(v), 0.0, None) for m, v in out.items()},
        status={m: ("fallback" if notes[m] else "ok") for m in BASELINES},
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
