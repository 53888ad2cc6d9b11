"""Rolling-origin backtest of LightGBM and the baselines, champion per series, future forecast.

The backtest origins are the ends of the last ``K`` horizons: with ``T`` periods and horizon
``H`` they are ``T-1-K·H, …, T-1-H`` (non-overlapping windows that tile the last ``K·H``
periods).  At each origin every model sees only the periods up to it.  The published
forecast is made at ``T-1`` by the series' champion (lowest backtest WAPE).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from salesbi.forecasting.baselines import BASELINES, fit_baselines_many
from salesbi.forecasting.evaluate import (
    LEVELS,
    bias,
    calibrate,
    cross_conformal,
    intervals,
    mase,
    naive_mae,
    wape,
)
from salesbi.forecasting.features import MIN_HISTORY, FeatureContext, holiday_matrix, series_scale
from salesbi.forecasting.lgbm import LightGBMConfig, fit_lightgbm
from salesbi.forecasting.series import SEASON, SeriesPanel, period_range

MODELS: tuple[str, ...] = ("lightgbm", *BASELINES)


@dataclass
class EngineOutput:
    """Arrays of one forecasting run (``n`` series, ``K`` origins, ``H`` steps)."""

    panel: SeriesPanel
    horizon: int
    origins: list[int]  # backtest origins (index of the last known period)
    future_dates: list[object]
    actual: np.ndarray  # (n, K, H)
    backtest: dict[str, np.ndarray]  # model → (n, K, H)
    backtest_scale: np.ndarray  # (n, K)
    backtest_bounds: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]]  # model → level → (lo, hi)
    future: dict[str, np.ndarray]  # model → (n, H)
    future_bounds: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]]  # model → level → (lo, hi) (n, H)
    status: dict[str, list[str]]  # model → per-series ok | fallback
    notes: dict[str, list[str]]  # model → per-series note
    champion: list[str]
    champion_note: list[str]
    metrics: dict[str, dict[str, np.ndarray]]  # model → metric → (n,)
    seconds: dict[str, float] = field(default_factory=dict)
    lgbm_rows: int = 0


def backtest_origins(n_periods: int, horizon: int, count: int, frequency: str) -> list[int]:
    """Return up to ``count`` origins tiling the last horizons, each with enough history to train on."""
    first_ok = MIN_HISTORY[frequency] - 1 + horizon + 2
    origins = [n_periods - 1 - k * horizon for k in range(count, 0, -1)]
    return [o for o in origins if o >= first_ok]


def _context(panel: SeriesPanel, horizon: int) -> FeatureContext:
    calendar = period_range(panel.dates[0], panel.n_periods + horizon, panel.frequency)
    levels = {"total": 0, "product_line": 1, "country": 2, "office": 3}
    return FeatureContext(
        frequency=panel.frequency,
        values=panel.values,
        calendar=calendar,
        holidays=holiday_matrix(list(panel.meta["country_code"]), calendar, panel.frequency),
        series_code=np.arange(panel.n_series),
        level_code=panel.meta["series_level"].map(levels).fillna(4).to_numpy().astype(int),
    )


def interval_scale(values: np.ndarray, origin: int, season: int, frequency: str) -> np.ndarray:
    """Return each series' noise scale at ``origin``: seasonal-naive MAE of its last two years.

    Residuals divided by it are comparable across smooth and erratic series, so they can be
    pooled for conformal intervals; falls back to the series' recent mean level.
    """
    window = {"D": 2 * 364, "W": 2 * 52, "M": 24}[frequency]
    level = series_scale(values, np.arange(values.shape[0]), np.full(values.shape[0], origin), frequency)
    hist = values[:, max(0, origin + 1 - window) : origin + 1]
    out = np.array([naive_mae(row, season) for row in hist])
    return np.where(np.isfinite(out) & (out > 0), out, level)


def _choose_champion(scores: dict[str, tuple[float, float]]) -> tuple[str, str]:
    """Return (model, note) with the lowest WAPE (then MAE; LightGBM first on ties)."""

    def key(m: str) -> tuple[float, float, int]:
        w, mae = scores[m]
        return (w if math.isfinite(w) else math.inf, mae if math.isfinite(mae) else math.inf, MODELS.index(m))

    best = min(scores, key=key)
    w_best = scores[best][0]
    w_lgbm = scores["lightgbm"][0]
    if not math.isfinite(w_best):
        return best, f"no sales in the backtest windows: {best} chosen on absolute error"
    if best == "lightgbm":
        runner = min((m for m in scores if m != "lightgbm"), key=key)
        return (
            best,
            f"lowest backtest WAPE: lightgbm {w_best:.3f} vs best baseline {runner} {scores[runner][0]:.3f}",
        )
    return best, f"lowest backtest WAPE: {best} {w_best:.3f} beats lightgbm {w_lgbm:.3f}"


def run_engine(
    panel: SeriesPanel,
    horizon: int,
    n_origins: int = 3,
    random_state: int = 0,
    n_jobs: int = 1,
    lgbm_config: LightGBMConfig | None = None,
) -> EngineOutput:
    """Return the backtest, champions and future forecasts of every series of ``panel``."""
    config = lgbm_config or LightGBMConfig(random_state=random_state)
    n, T, H = panel.n_series, panel.n_periods, horizon
    f = panel.frequency
    season = SEASON[f]
    origins = backtest_origins(T, H, n_origins, f)
    K = len(origins)
    ctx = _context(panel, H)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    backtest: dict[str, np.ndarray] = {m: np.zeros((n, K, H)) for m in MODELS}
    lgbm_rows = 0
    for k, o in enumerate(origins):
        model = fit_lightgbm(ctx, o, H, config)
        backtest["lightgbm"][:, k, :] = model.predict(ctx, o, H)
    final = fit_lightgbm(ctx, T - 1, H, config)
    lgbm_rows = final.n_train
    future: dict[str, np.ndarray] = {"lightgbm": final.predict(ctx, T - 1, H)}
    seconds["lightgbm"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    fits = fit_baselines_many(panel.values, [*origins, T - 1], H, season, f, n_jobs=n_jobs)
    for m in BASELINES:
        stacked = np.stack([b.forecasts[m] for b in fits])  # (n, K+1, H)
        backtest[m] = stacked[:, :K, :]
        future[m] = stacked[:, K, :]
    seconds["baselines"] = time.perf_counter() - t0
    status = {m: [b.status[m] for b in fits] for m in BASELINES}
    notes = {m: [b.notes[m] for b in fits] for m in BASELINES}
    status["lightgbm"] = ["ok" if final.booster is not None else "fallback"] * n
    notes["lightgbm"] = [final.note] * n

    actual = np.zeros((n, K, H))
    scale = np.ones((n, K))
    for k, o in enumerate(origins):
        actual[:, k, :] = panel.values[:, o + 1 : o + 1 + H]
        scale[:, k] = interval_scale(panel.values, o, season, f)
    final_scale = interval_scale(panel.values, T - 1, season, f)
    groups = panel.meta["series_level"].to_numpy()

    metrics: dict[str, dict[str, np.ndarray]] = {}
    backtest_bounds: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]] = {}
    future_bounds: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]] = {}
    first_origin = origins[0] if origins else T - 1
    mase_scale = np.array([naive_mae(panel.values[i, : first_origin + 1], season) for i in range(n)])
    for m in MODELS:
        fc = backtest[m]
        res: dict[str, np.ndarray] = {x: np.full(n, np.nan) for x in ("wape", "mase", "bias", "mae")}
        for level in LEVELS:
            res[f"coverage_{round(level * 100)}"] = np.full(n, np.nan)
        if K:
            cc = cross_conformal(actual, fc, scale, groups)
            backtest_bounds[m] = cc
            factors, bounds = calibrate(
                (actual - fc) / scale[:, :, None], np.ones_like(fc, dtype=bool), groups
            )
            future_bounds[m] = {
                level: intervals(future[m], final_scale, factors, bounds[level]) for level in LEVELS
            }
            for i in range(n):
                a, p = actual[i].ravel(), fc[i].ravel()
                res["wape"][i] = wape(a, p)
                res["mase"][i] = mase(a, p, mase_scale[i])
                res["bias"][i] = bias(a, p)
                res["mae"][i] = float(np.abs(a - p).mean())
                for level in LEVELS:
                    lo, hi = cc[level][0][i].ravel(), cc[level][1][i].ravel()
                    res[f"coverage_{round(level * 100)}"][i] = float(np.mean((a >= lo) & (a <= hi)))
        else:
            nan = np.full((n, H), np.nan)
            future_bounds[m] = {level: (nan, nan) for level in LEVELS}
        metrics[m] = res

    champion, champion_note = [], []
    for i in range(n):
        if not K:
            champion.append("lightgbm")
            champion_note.append("history too short for a backtest: lightgbm used unmeasured")
            continue
        scores = {m: (float(metrics[m]["wape"][i]), float(metrics[m]["mae"][i])) for m in MODELS}
        best, note = _choose_champion(scores)
        champion.append(best)
        champion_note.append(note)

    return EngineOutput(
        panel=panel,
        horizon=H,
        origins=origins,
        future_dates=list(ctx.calendar[T : T + H]),
        actual=actual,
        backtest=backtest,
        backtest_scale=scale,
        backtest_bounds=backtest_bounds,
        future=future,
        future_bounds=future_bounds,
        status=status,
        notes=notes,
        champion=champion,
        champion_note=champion_note,
        metrics=metrics,
        seconds=seconds,
        lgbm_rows=lgbm_rows,
    )
