"""Rolling-origin backtest of LightGBM and the baselines, champion per series, future forecast.

The backtest origins are the ends of the last ``K`` horizons: with ``T`` periods and horizon
``H`` they are ``T-1-K·H, …, T-1-H`` (non-overlapping windows that tile the last ``K·H``
periods).  At each origin every model sees only the periods up to it and forecasts the same
``H`` periods.  A model that cannot be fitted at one of the origins (or at ``T-1``) is not a
candidate for the series.  The champion is the candidate with the lowest mean WAPE over the
origins (mean MASE when a window sold nothing); candidates within ``TIE_TOLERANCE`` of the best
tie, and the simplest (``MODELS`` order) wins.  The published forecast is made at ``T-1`` by
exactly that model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

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
from salesbi.forecasting.lgbm import FittedLightGBM, LightGBMConfig, candidate_rows, fit_models, refit_origins
from salesbi.forecasting.series import SEASON, SeriesPanel, period_range

#: every model, simplest first (the tie rule's order)
MODELS: tuple[str, ...] = (*BASELINES, "lightgbm")
#: relative difference of mean WAPE within which two candidates tie (the simpler one wins)
TIE_TOLERANCE = 0.01
#: the baselines: a champion among them is published labelled as the baseline
NAIVE_MODELS: tuple[str, ...] = ("naive", "window_average", "seasonal_naive")


@dataclass
class EngineOutput:
    """Arrays of one forecasting run (``n`` series, ``K`` origins, ``H`` steps)."""

    panel: SeriesPanel
    horizon: int
    origins: list[int]  # backtest origins (index of the last known period)
    future_dates: list[object]
    actual: np.ndarray  # (n, K, H)
    backtest: dict[str, np.ndarray]  # model → (n, K, H); NaN where the model could not be fitted
    backtest_scale: np.ndarray  # (n, K)
    backtest_bounds: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]]  # model → level → (lo, hi)
    future: dict[str, np.ndarray]  # model → (n, H)
    future_bounds: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]]  # model → level → (lo, hi) (n, H)
    status: dict[str, list[str]]  # model → per-series ok | not_candidate
    notes: dict[str, list[str]]  # model → per-series note
    champion: list[str]
    champion_note: list[str]
    metrics: dict[str, dict[str, np.ndarray]]  # model → metric → (n,)
    seconds: dict[str, float] = field(default_factory=dict)
    lgbm_rows: int = 0
    #: different training rows among ``lgbm_rows`` (the uniform sample draws with replacement)
    lgbm_distinct: int = 0
    #: the final LightGBM fit's candidate training rows and their cap (model card: training_caps)
    lgbm_candidates: int = 0
    lgbm_cap: int = 0
    #: how the rows above the cap are drawn (``LightGBMConfig.sampling``)
    lgbm_sampling: str = "uniform"
    final_lightgbm: FittedLightGBM | None = None  # the model of the future forecast (stored for daily runs)
    #: LightGBM boosting rounds of the later models, chosen by early stopping at the earliest
    #: fit (None: the configured ``num_boost_round``, no early stopping)
    lgbm_rounds: int | None = None
    #: validation rows of that early stopping
    lgbm_validation_rows: int = 0
    #: the configured most rounds (``LightGBMConfig.num_boost_round``)
    lgbm_max_rounds: int = 0
    #: the fewest rounds early stopping keeps (``LightGBMConfig.min_rounds``)
    lgbm_min_rounds: int = 0


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """Return (``fn(*args)``, its wall seconds)."""
    t0 = time.perf_counter()
    return fn(*args), time.perf_counter() - t0


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


def interval_scale(values: np.ndarray, origin: int, frequency: str) -> np.ndarray:
    """Return each series' noise scale at ``origin``: mean absolute one-period change over two years.

    Residuals divided by it are comparable across smooth and erratic series, so they can be
    pooled for conformal intervals.  One definition whatever the history length (no switch to a
    seasonal difference once a year is known); the series' recent mean level when it never changed.
    """
    window = {"D": 2 * 364, "W": 2 * 52, "M": 24}[frequency]
    n = values.shape[0]
    level = series_scale(values, np.arange(n), np.full(n, origin), frequency)
    hist = values[:, max(0, origin + 1 - window) : origin + 1]
    out = np.abs(np.diff(hist, axis=1)).mean(axis=1) if hist.shape[1] > 1 else np.full(n, np.nan)
    return np.where(np.isfinite(out) & (out > 0), out, level)


def mase_scale(history: np.ndarray, season: int) -> float:
    """Return MASE's scale: in-sample MAE of the seasonal naive with two seasons known, else of the naive."""
    return naive_mae(history, season if len(history) >= 2 * season else 1)


def origin_scores(actual: np.ndarray, forecast: np.ndarray, scale: float) -> tuple[float, float, float]:
    """Return (mean WAPE, mean MASE, MAE) of one series over its origins (``(K, H)`` arrays).

    WAPE is averaged over the origins whose window sold something; MASE divides each origin's
    MAE by ``scale`` (the series' in-sample naive MAE at the first origin).
    """
    wapes = [wape(actual[k], forecast[k]) for k in range(actual.shape[0])]
    mases = [mase(actual[k], forecast[k], scale) for k in range(actual.shape[0])]
    fw = [w for w in wapes if math.isfinite(w)]
    fm = [m for m in mases if math.isfinite(m)]
    return (
        float(np.mean(fw)) if fw else math.nan,
        float(np.mean(fm)) if fm else math.nan,
        float(np.abs(actual - forecast).mean()),
    )


def choose_champion(
    scores: dict[str, tuple[float, float, float]], tolerance: float = TIE_TOLERANCE
) -> tuple[str, str]:
    """Return (model, note): the candidate with the lowest mean WAPE, the simplest among ties.

    ``scores`` maps each candidate (only candidates) to (mean WAPE, mean MASE, MAE); the
    criterion is WAPE when every candidate has one, else MASE, else MAE.  Candidates within
    ``tolerance`` (relative) of the best tie, and the first in ``MODELS`` order wins.
    """
    names = sorted(scores, key=MODELS.index)
    label, crit = "MAE", {m: scores[m][2] for m in names}
    for j, name in enumerate(("WAPE", "MASE")):
        values = {m: scores[m][j] for m in names}
        if all(math.isfinite(v) for v in values.values()):
            label, crit = name, values
            break
    best_value = min(crit.values())
    tied = [m for m in names if crit[m] <= best_value * (1 + tolerance) + 1e-12]
    best = tied[0]
    others = [m for m in names if m != best]
    runner = min(others, key=lambda m: (crit[m], MODELS.index(m))) if others else None
    versus = f" vs runner-up {runner} {crit[runner]:.3f}" if runner else " (only candidate)"
    note = f"lowest mean backtest {label}: {best} {crit[best]:.3f}{versus}"
    if len(tied) > 1:
        note += f"; {', '.join(tied)} tie within {tolerance:.0%}: the simplest wins"
    if best in NAIVE_MODELS:
        note = f"baseline: no model beat it; {note}"
    return best, note


def _no_backtest_champion(candidates: list[str]) -> tuple[str, str]:
    for m in ("seasonal_naive", "naive"):
        if m in candidates:
            return m, f"baseline: history too short for a backtest, {m} published unmeasured"
    return candidates[0], f"history too short for a backtest: {candidates[0]} published unmeasured"


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

    backtest: dict[str, np.ndarray] = {m: np.full((n, K, H), np.nan) for m in MODELS}
    lgbm_notes: list[str] = []
    fit_at = refit_origins(origins, config.backtest_fits)
    cutoffs = [*fit_at, T - 1]
    if config.workers > 1:  # the LightGBM fits release the GIL: they train while the baselines run here
        with ThreadPoolExecutor(max_workers=1) as pool:
            job = pool.submit(_timed, fit_models, ctx, cutoffs, H, config)
            fits, seconds["baselines"] = _timed(
                fit_baselines_many, panel.values, [*origins, T - 1], H, season, f, n_jobs
            )
            (fitted, lgbm_rounds), seconds["lightgbm"] = job.result()
    else:
        (fitted, lgbm_rounds), seconds["lightgbm"] = _timed(fit_models, ctx, cutoffs, H, config)
        fits, seconds["baselines"] = _timed(
            fit_baselines_many, panel.values, [*origins, T - 1], H, season, f, n_jobs
        )
    for k, (o, at) in enumerate(zip(origins, fit_at, strict=True)):
        model = fitted[at]
        if model.booster is None:
            lgbm_notes.append(f"origin {o}: {model.note}")
        else:
            backtest["lightgbm"][:, k, :] = model.predict(ctx, o, H)
    final = fitted[T - 1]
    lgbm_rows = final.n_train
    first_fit = fitted[min(fitted)]
    future: dict[str, np.ndarray] = {
        "lightgbm": final.predict(ctx, T - 1, H) if final.booster is not None else np.full((n, H), np.nan)
    }
    if final.booster is None:
        lgbm_notes.append(f"final origin: {final.note}")
    for m in BASELINES:
        stacked = np.stack([b.forecasts[m] for b in fits])  # (n, K+1, H)
        backtest[m] = stacked[:, :K, :]
        future[m] = stacked[:, K, :]
    status = {m: [b.status[m] for b in fits] for m in BASELINES}
    notes = {m: [b.notes[m] for b in fits] for m in BASELINES}
    status["lightgbm"] = ["not_candidate" if lgbm_notes else "ok"] * n
    notes["lightgbm"] = ["; ".join(lgbm_notes)] * n
    # a candidate forecast every window and the future: anything else is not the published model
    candidate = {
        m: np.isfinite(backtest[m]).all(axis=(1, 2)) & np.isfinite(future[m]).all(axis=1) for m in MODELS
    }
    for m in MODELS:
        status[m] = ["ok" if candidate[m][i] else "not_candidate" for i in range(n)]

    actual = np.zeros((n, K, H))
    scale = np.ones((n, K))
    for k, o in enumerate(origins):
        actual[:, k, :] = panel.values[:, o + 1 : o + 1 + H]
        scale[:, k] = interval_scale(panel.values, o, f)
    final_scale = interval_scale(panel.values, T - 1, f)
    groups = panel.meta["series_level"].to_numpy()

    metrics: dict[str, dict[str, np.ndarray]] = {}
    backtest_bounds: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]] = {}
    future_bounds: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]] = {}
    first_origin = origins[0] if origins else T - 1
    scales = np.array([mase_scale(panel.values[i, : first_origin + 1], season) for i in range(n)])
    for m in MODELS:
        fc = np.where(candidate[m][:, None, None], backtest[m], np.nan)
        res: dict[str, np.ndarray] = {x: np.full(n, np.nan) for x in ("wape", "mase", "bias", "mae")}
        for level in LEVELS:
            res[f"coverage_{round(level * 100)}"] = np.full(n, np.nan)
        if K:
            cc = cross_conformal(actual, fc, scale, groups)
            backtest_bounds[m] = cc
            z = (actual - fc) / scale[:, :, None]
            factors, bounds = calibrate(z, np.isfinite(z), groups)
            fut = np.where(candidate[m][:, None], future[m], np.nan)
            future_bounds[m] = {
                level: intervals(fut, final_scale, factors, bounds[level]) for level in LEVELS
            }
            for i in np.flatnonzero(candidate[m]).tolist():
                res["wape"][i], res["mase"][i], res["mae"][i] = origin_scores(actual[i], fc[i], scales[i])
                res["bias"][i] = bias(actual[i].ravel(), fc[i].ravel())
                a = actual[i].ravel()
                for level in LEVELS:
                    lo, hi = cc[level][0][i].ravel(), cc[level][1][i].ravel()
                    if np.isfinite(lo).all() and np.isfinite(hi).all():
                        res[f"coverage_{round(level * 100)}"][i] = float(np.mean((a >= lo) & (a <= hi)))
        else:
            nan = np.full((n, H), np.nan)
            future_bounds[m] = {level: (nan, nan) for level in LEVELS}
        metrics[m] = res

    champion, champion_note = [], []
    for i in range(n):
        names = [m for m in MODELS if candidate[m][i]]
        if not names:  # cannot happen with one period of history (naive), kept as a guard
            names = ["naive"]
        if not K:
            best, note = _no_backtest_champion(names)
        else:
            scores = {
                m: (float(metrics[m]["wape"][i]), float(metrics[m]["mase"][i]), float(metrics[m]["mae"][i]))
                for m in names
            }
            best, note = choose_champion(scores)
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
        lgbm_distinct=final.n_distinct,
        lgbm_candidates=candidate_rows(n, T - 1, H, ctx.frequency),
        lgbm_cap=config.max_train_rows,
        lgbm_sampling=config.sampling,
        final_lightgbm=final,
        lgbm_rounds=lgbm_rounds,
        lgbm_validation_rows=first_fit.n_validation if lgbm_rounds else 0,
        lgbm_max_rounds=config.num_boost_round,
        lgbm_min_rounds=min(config.min_rounds, config.num_boost_round),
    )
